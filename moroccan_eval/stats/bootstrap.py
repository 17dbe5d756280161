"""The bootstrap engine: records → per-item statistics → score, with 95% percentile
intervals and paired deltas, for every metric of every task type.

A metric (:class:`MetricDef`) says how one record contributes a row of numbers
(``statistics``) and how weighted rows become a score (``score``). A bootstrap resample of
n items with replacement is a multinomial draw of n over the items, so scores are computed
from (B, n) weight matrices in one vectorised call: ``score(rows, weights)``.

Two resampling layouts, identical in distribution:

- ``items``: one row per item, uniform multinomial over items;
- ``cells``: identical rows merged into distinct cells with their frequencies, multinomial
  over cells. For labels (classification, yes/no outcomes) there are few cells, so 1,000
  resamples cost the same for 100 items as for 1,000,000.

Seeding: each (variety, metric) has its own stream,
``default_rng([seed + seed_offset, stable_id(variety), stable_id(stream)])``, drawn first for
the metric's interval, then for its paired delta; a number is therefore reproducible
whatever else is in the run. This convention is the toolkit 0.1.0 one: runs scored before
the engine existed rescore to the same numbers.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

from .. import varieties
from ..records import Delta, MetricScore, PredictionRecord, VarietyScore

if TYPE_CHECKING:  # numpy is imported where scores are computed, not at start-up
    import numpy as np

DEFAULT_BOOTSTRAP = 1000

#: (rows (m, k), weights (B, m)) → one score per row of weights.
ScoreFunction: TypeAlias = "Callable[[np.ndarray, np.ndarray], np.ndarray]"
Statistics = Callable[[PredictionRecord], Sequence[float]]
#: The "variety" a record is pooled under (see :meth:`Grouped.of`).
PoolBy = Callable[[PredictionRecord], str]


def ratio(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Summed first column over summed second column (a rate, WER, accuracy); undefined
    (NaN) where the denominator is empty."""
    import numpy as np
    num, den = (weights @ rows[:, :2]).T
    return np.asarray(np.divide(num, den, out=np.full_like(num, np.nan, dtype=float),
                                where=den > 0))


@dataclass(frozen=True)
class MetricDef:
    """One metric of a task type.

    ``statistics`` maps a record to its row of numbers (a failed or unparsed answer must
    still give one: it is scored, never dropped); ``score`` turns weighted rows into values.
    ``counts_items`` reports, beside a rate, how many items have a non-zero last statistic
    (its denominator). ``signature`` gives an external metric's own reproducibility string.
    ``stream`` and ``seed_offset`` name the metric's random stream (default: its name).
    """

    name: str
    statistics: Statistics
    score: ScoreFunction = ratio
    higher_is_better: bool = True
    resample: Literal["items", "cells"] = "items"
    counts_items: bool = False
    signature: Callable[[], str] | None = None
    stream: str | None = None
    seed_offset: int = 0

    def rng(self, seed: int, variety: str) -> np.random.Generator:
        import numpy as np
        return np.random.default_rng(
            [seed + self.seed_offset, stable_id(variety), stable_id(self.stream or self.name)])


@functools.lru_cache(maxsize=4096)
def stable_id(name: str) -> int:
    """A process-independent integer for seeding (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


@dataclass
class Grouped:
    """Records by variety and group (a later record of a group replaces an earlier one),
    with the failures counted per variety; records a spend cap skipped are left out."""

    by_variety: dict[str, dict[str, PredictionRecord]] = field(
        default_factory=lambda: defaultdict(dict))
    errors: Counter[str] = field(default_factory=Counter)
    unparsed: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, records: Iterable[PredictionRecord], pool_by: PoolBy | None = None) -> Grouped:
        """With ``pool_by``, each record is scored under the "variety" it names (all
        pooled, a kind of item, a breakdown value) and under a group of its own, as
        :func:`relabel` does, without copying the records."""
        grouped = cls()
        for record in records:
            if record.get("skipped"):
                continue
            variety, group = record["variety"], record["group"]
            if pool_by is not None:
                variety, group = pool_by(record), f"{group}/{variety}"
            if record.get("error"):
                grouped.errors[variety] += 1
            elif record.get("parsed") is None:
                grouped.unparsed[variety] += 1
            grouped.by_variety[variety][group] = record
        return grouped


def relabel(records: Iterable[PredictionRecord],
            label: Callable[[PredictionRecord], str]) -> list[PredictionRecord]:
    """Records scored under other "varieties" (all pooled, kinds of item, the two runs of a
    comparison): each keeps a group unique to its item, so items are paired and resampled
    one by one."""
    return [{**r, "variety": label(r), "group": f"{r['group']}/{r['variety']}"} for r in records]


def score_varieties(grouped: Grouped, metrics: Sequence[MetricDef], reference_variety: str,
                    *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict[str, VarietyScore]:
    """Per variety: n, failures, each metric with its interval, and the paired delta to
    ``reference_variety`` over the groups both hold."""
    import numpy as np

    order = {code: i for i, code in enumerate(varieties.registry())}
    reference = grouped.by_variety.get(reference_variety, {})
    reference_rows = _Rows(reference)
    result: dict[str, VarietyScore] = {}
    for variety in sorted(grouped.by_variety, key=lambda code: (order.get(code, len(order)), code)):
        records = grouped.by_variety[variety]
        rows = _Rows(records)
        shared = [g for g in records if g in reference] if variety != reference_variety else []
        entry = VarietyScore(n=len(records), errors=grouped.errors[variety],
                             unparsed=grouped.unparsed[variety])
        pairs: dict[tuple[Statistics, str], tuple[int, np.ndarray, np.ndarray]] = {}
        for metric in metrics:
            rng = metric.rng(seed, variety)
            entry.metrics[metric.name] = _estimate(metric, rows.of(metric), rows.layout(metric),
                                                   n_boot, rng)
            if shared:
                key = (metric.statistics, metric.resample)
                if key not in pairs:  # metrics sharing statistics share the paired cells
                    own = rows.of(metric, shared)
                    pairs[key] = (own.shape[1], *_layout(
                        metric, np.hstack([own, reference_rows.of(metric, shared)])))
                delta = _paired_delta(metric, *pairs[key], n_boot, rng)
                if delta is not None:
                    entry.deltas[metric.name] = delta
        result[variety] = entry
    return result


class _Rows:
    """The statistics of a set of records, computed once per statistics function (metrics
    that share one, such as accuracy and macro-F1, share the matrix)."""

    def __init__(self, records: dict[str, PredictionRecord]):
        self.records = records
        self._index: dict[str, int] | None = None  # built for paired deltas only
        self._matrices: dict[Statistics, np.ndarray] = {}
        self._layouts: dict[tuple[Statistics, str], tuple[np.ndarray, np.ndarray]] = {}

    def layout(self, metric: MetricDef) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_layout` of all the records, shared by metrics with the same statistics."""
        key = (metric.statistics, metric.resample)
        if key not in self._layouts:
            self._layouts[key] = _layout(metric, self.of(metric))
        return self._layouts[key]

    def of(self, metric: MetricDef, groups: Sequence[str] | None = None) -> np.ndarray:
        import numpy as np
        matrix = self._matrices.get(metric.statistics)
        if matrix is None:
            matrix = self._matrices[metric.statistics] = _matrix(
                metric.statistics(record) for record in self.records.values())
        if groups is None:
            return matrix
        if self._index is None:
            self._index = {group: i for i, group in enumerate(self.records)}
        return matrix[np.array([self._index[g] for g in groups], dtype=np.intp)]


def _matrix(rows: Iterable[Sequence[float]]) -> np.ndarray:
    """Rows of statistics as an (n, k) float matrix, converted 65,536 rows at a time (a
    list of a million row tuples would hold hundreds of MB)."""
    import numpy as np

    it = iter(rows)
    first = next(it, None)
    if first is None:
        return np.empty((0, 1))
    width = len(first)
    chunks, chunk = [], [first]
    for row in it:
        chunk.append(row)
        if len(chunk) == 65_536:
            chunks.append(np.array(chunk, dtype=float).reshape(len(chunk), width))
            chunk = []
    if chunk:
        chunks.append(np.array(chunk, dtype=float).reshape(len(chunk), width))
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


#: Bootstrap weights are drawn this many cells at a time (B x cells), so scoring a
#: million items holds tens of MB, not gigabytes; the draws are the same numbers as one
#: ``multinomial(size=B)`` call (the generator advances row by row).
_DRAW_CELLS = 2_000_000


def _layout(metric: MetricDef, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows or distinct cells, their point-estimate weights)."""
    import numpy as np

    if metric.resample == "cells":
        cells, freq = _distinct_rows(rows)
        return cells, freq[None, :]
    return rows, np.ones((1, rows.shape[0]))


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(rows, axis=0, return_counts=True)``: the same cells in the same
    (lexicographic) order, a few times faster on the small matrices of one variety."""
    import numpy as np

    if rows.shape[0] == 0 or np.isnan(rows).any():  # NaN: let numpy decide equality
        cells, freq = np.unique(rows, axis=0, return_counts=True)
        return cells, freq
    ordered = rows[np.lexsort(rows.T[::-1])]
    starts = np.empty(ordered.shape[0], dtype=bool)
    starts[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=starts[1:])
    first = np.flatnonzero(starts)
    return ordered[first], np.diff(np.append(first, ordered.shape[0]))


def _resampled(score: Callable[[np.ndarray], np.ndarray], point: np.ndarray, n_boot: int,
               rng: np.random.Generator) -> np.ndarray:
    """``score(weights)`` for ``n_boot`` multinomial resamples of the point weights."""
    import numpy as np

    if n_boot <= 0:
        return np.empty(0)
    n = int(point.sum())
    probabilities = point[0] / max(n, 1)
    chunk = max(1, _DRAW_CELLS // max(1, probabilities.size))
    # float weights: BLAS products, and the same sums (whole counts are exact in float64)
    return np.concatenate([score(rng.multinomial(n, probabilities, size=min(chunk, n_boot - i))
                                 .astype(float)) for i in range(0, n_boot, chunk)])


def _estimate(metric: MetricDef, rows: np.ndarray, layout: tuple[np.ndarray, np.ndarray],
              n_boot: int, rng: np.random.Generator) -> MetricScore:
    cells, point = layout
    counted = int((rows[:, -1] > 0).sum()) if metric.counts_items else None
    samples = _resampled(lambda weights: metric.score(cells, weights), point, n_boot, rng)
    return MetricScore(value=_point(metric.score(cells, point)[0]), ci=_interval(samples),
                       n=counted)


def _paired_delta(metric: MetricDef, width: int, cells: np.ndarray, point: np.ndarray,
                  n_boot: int, rng: np.random.Generator) -> Delta | None:
    """metric(own) − metric(reference) with a paired bootstrap interval: the groups are
    resampled once and both sides are scored on the same resample. ``cells`` are the
    :func:`_layout` of the own rows (``width`` columns) beside the reference rows."""
    own_cells, reference_cells = cells[:, :width], cells[:, width:]
    value = _point(metric.score(own_cells, point)[0] - metric.score(reference_cells, point)[0])
    if value is None:
        return None
    ci = _interval(_resampled(lambda weights: metric.score(own_cells, weights)
                              - metric.score(reference_cells, weights), point, n_boot, rng))
    return Delta(value=value, ci=ci, n_pairs=int(point.sum()), significant=_excludes_zero(ci))


def _interval(samples: np.ndarray) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles of the finite samples, computed as
    ``np.percentile(finite, [2.5, 97.5])`` does (its default linear method, to the bit)
    without its per-call overhead, which dominated small runs."""
    import numpy as np

    finite = np.sort(samples[np.isfinite(samples)])  # a resample may leave a rate undefined
    count = finite.size
    if count == 0:
        return None
    virtual = (count - 1) * (np.array([2.5, 97.5]) / 100)
    below = np.floor(virtual)
    above = below + 1
    below[virtual >= count - 1] = above[virtual >= count - 1] = -1
    low, high = finite[below.astype(np.intp)], finite[above.astype(np.intp)]
    gamma = virtual - below.astype(np.intp)
    spread = high - low
    bounds = np.where(gamma >= 0.5, high - spread * (1 - gamma), low + spread * gamma)
    return (round(float(bounds[0]), 6), round(float(bounds[1]), 6))


def _excludes_zero(ci: tuple[float, float] | None) -> bool:
    return ci is not None and (ci[0] > 0 or ci[1] < 0)


def _point(value: float) -> float | None:
    import numpy as np
    return round(float(value), 6) if np.isfinite(value) else None
