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
  resamples cost the same for 100 items as for 1,000,000. A task whose metrics all
  resample cells need not keep its items at all: :mod:`moroccan_eval.stats.counted`
  counts its cells (a :class:`Grouping` as :class:`Grouped` is, scored the same).

Draws (the run's ``bootstrap_draws``, printed in its signature as ``boot:1000+indices2``):

- ``multinomial``: numpy's ``multinomial`` over the cells, a binomial per cell and resample
  (runs whose manifest names no draws: toolkit 0.1.0's first scheme);
- ``indices``: the n items of a resample drawn as n uniform indices and counted per cell,
  where that is cheaper (n at most :data:`INDICES_PER_CELL` times the cells: one index
  costs about an eighth of a binomial); the multinomial otherwise (few cells of many items,
  as classification at scale);
- ``indices2`` (new runs): as ``indices``, and index draws for every view of at most
  :data:`INDICES2_ITEMS` items however few its cells (a leaderboard's pooled views: their
  draws are then remembered, as below, instead of drawn per run).

The same distribution, other numbers: a run is always rescored with the draws it names.
Index draws do not read the data, so a process remembers small ones
(:class:`RandomStream`): the runs of one suite draw them once.

Seeding: each (variety, metric) has its own stream,
``default_rng([seed + seed_offset, stable_id(variety), stable_id(stream)])``, drawn first for
the metric's interval, then for its paired delta; a number is therefore reproducible
whatever else is in the run. This convention is the toolkit 0.1.0 one: runs scored before
the engine existed rescore to the same numbers.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypeAlias

from .. import varieties
from ..records import Delta, Draws, Manifest, MetricScore, PredictionRecord, VarietyScore
from .spill import lerp, percentile_reads

if TYPE_CHECKING:  # numpy is imported where scores are computed, not at start-up
    import numpy as np

DEFAULT_BOOTSTRAP = 1000

#: The draws of new runs.
DRAWS: Draws = "indices2"
#: ``indices`` draws indices while the items are at most this many times the cells. Part of
#: the scheme: changing it changes numbers.
INDICES_PER_CELL = 8
#: ``indices2`` draws indices for a view of at most this many items too. Part of the scheme.
INDICES2_ITEMS = 2048
#: ``indices`` draws at most this many indices at a time (whole resamples). Part of the
#: scheme too: numpy's bounded integers are not the same numbers in other blocks.
_INDEX_BLOCK = 1 << 21


@dataclass(frozen=True)
class Resampling:
    """How intervals are computed: ``n_boot`` resamples (0: point values only), seeded from
    ``seed``, their weights drawn by ``draws``."""

    n_boot: int = DEFAULT_BOOTSTRAP
    seed: int = 0
    draws: Draws = DRAWS

    @classmethod
    def of(cls, manifest: Manifest) -> Resampling:
        """A run's resampling, as its manifest records it."""
        return cls(manifest.bootstrap, manifest.seed, manifest.bootstrap_draws or "multinomial")


#: What a new run uses: 1,000 resamples, seed 0, :data:`DRAWS`.
DEFAULT_RESAMPLING = Resampling()

#: (rows (m, k), weights (B, m)) → one score per row of weights.
ScoreFunction: TypeAlias = "Callable[[np.ndarray, np.ndarray], np.ndarray]"
Statistics = Callable[[PredictionRecord], Sequence[float]]
#: The "variety" a record is pooled under (see :meth:`Grouped.of`).
PoolBy = Callable[[PredictionRecord], str]
#: Named numbers of a record that a task type's details sum per variety.
DetailValues = Callable[[PredictionRecord], Mapping[str, float]]


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
    ``whole_counts``: ``score`` sums only whole numbers weighted by whole counts (labels
    compared, items counted), so its products are exact in any order of summation and a
    row of weights scores the same beside others as alone: the point estimate is then
    scored in the resamples' call instead of one of its own.
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
    whole_counts: bool = False

    def stream_of(self, seed: int, variety: str) -> RandomStream:
        """The metric's random stream for ``variety``."""
        return RandomStream((seed + self.seed_offset, stable_id(variety),
                             stable_id(self.stream or self.name)))


@functools.lru_cache(maxsize=4096)
def stable_id(name: str) -> int:
    """A process-independent integer for seeding (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


class GroupedBuilder:
    """Takes records one at a time and keeps numbers, not records: per record its variety,
    a digest of its group, its failure flags, the value each labelling gives it and a row
    of each statistics function (about 35 bytes a record, where a record object costs
    hundreds). :meth:`build` makes the :class:`Grouped` the bootstrap reads. Statistics
    read only as cells are better counted (:mod:`moroccan_eval.stats.counted`: nothing
    kept per record).

    ``labels`` name other ways of pooling the records (all of them, a breakdown value, a
    kind of item): :meth:`Grouped.view` scores each record under the value its labelling
    gives it, every item on its own. With ``details``, the named numbers it gives each
    record are kept too (a code and a value each), for the details a task type sums per
    variety (extraction: whether each field is right)."""

    def __init__(self, statistics: Sequence[Statistics],
                 labels: Mapping[str, PoolBy] | None = None, *,
                 details: DetailValues | None = None):
        self.statistics = list(dict.fromkeys(statistics))  # metrics may share one
        self.labels = dict(labels or {})
        self._codes: dict[str, dict[str, int]] = {name: {} for name in ("", *self.labels)}
        # a byte per record while a labelling has at most 256 values (varieties, "all")
        self._pools: dict[str, array[int]] = {name: array("B") for name in self._codes}
        self._digests = bytearray()
        self._failures = bytearray()  # 1: error, 2: unparsed
        self._rows: list[_RowBuffer] = [_RowBuffer() for _ in self.statistics]
        self._details = details
        self._detail_names: dict[str, int] = {}
        self._detail_codes = array("i")
        self._detail_values = array("d")
        self._detail_ends = array("q")  # per record: where its entries end

    def add(self, record: PredictionRecord) -> None:
        """Take one record (a record a spend cap skipped is left out, as unscored)."""
        if record.get("skipped"):
            return
        variety = record["variety"]
        self._code("", variety)
        for name, label in self.labels.items():
            self._code(name, label(record))
        self._digests += hashlib.blake2b(record["group"].encode("utf-8"),
                                         digest_size=_DIGEST).digest()
        self._failures.append(1 if record.get("error") else
                              2 if record.get("parsed") is None else 0)
        for chunks, statistics in zip(self._rows, self.statistics, strict=True):
            chunks.append(statistics(record))
        if self._details is not None:
            names = self._detail_names
            for name, value in self._details(record).items():
                code = names.get(name)
                if code is None:
                    code = names[name] = len(names)
                self._detail_codes.append(code)
                self._detail_values.append(value)
            self._detail_ends.append(len(self._detail_codes))

    def _code(self, labelling: str, value: str) -> None:
        codes = self._codes[labelling]
        code = codes.get(value)
        if code is None:
            code = codes[value] = len(codes)
            if code == 256:
                self._pools[labelling] = array("i", self._pools[labelling])
        self._pools[labelling].append(code)

    def build(self, *, complete: bool = False) -> Grouped:
        """Per variety and group, the last record's rows, in the order the items first
        appear (a later record of a group replaces an earlier one). With ``complete``, only
        the groups that hold a record of every variety taken (the items two runs both
        answered, when the runs are the varieties). The builder takes no record after it
        (its buffers become the grouping's arrays, without a copy)."""
        import numpy as np

        pools = {name: np.frombuffer(pool, dtype=np.uint8 if pool.typecode == "B" else np.int32)
                 for name, pool in self._pools.items()}
        digests = np.frombuffer(self._digests, dtype=">u8").reshape(-1, 2)
        failures = np.frombuffer(self._failures, dtype=np.uint8)
        matrices = [chunks.matrix() for chunks in self._rows]
        details = None if self._details is None else Details(
            names=list(self._detail_names),
            codes=np.frombuffer(self._detail_codes, dtype=np.int32),
            values=np.frombuffer(self._detail_values, dtype=float),
            ends=np.frombuffer(self._detail_ends, dtype=np.int64))
        if complete:
            whole = _in_whole_groups(digests, pools[""], len(self._codes[""]))
            if whole is not None:
                pools = {name: pool[whole] for name, pool in pools.items()}
                digests, failures = digests[whole], failures[whole]
                matrices = [matrix[whole] for matrix in matrices]
                details = details and details.of(whole)
        groups, kept = _groups_and_last(digests, pools[""])
        in_order = kept is None  # no record replaced: every position is an item
        if kept is None:
            kept = np.arange(groups.size, dtype=np.int32 if groups.size < 1 << 31 else np.int64)
        else:
            groups = groups[kept]
        return Grouped(
            names={name: list(codes) for name, codes in self._codes.items()},
            pools=pools, failures=failures, kept=kept, groups=groups,
            matrices={statistics: matrix if in_order else matrix[kept]
                      for statistics, matrix in zip(self.statistics, matrices, strict=True)},
            details=details)


def _in_whole_groups(digests: np.ndarray, varieties: np.ndarray,
                     count: int) -> np.ndarray | None:
    """Which records belong to a group that holds a record of each of ``count``
    varieties; None when all of them do."""
    import numpy as np

    groups, _ = _groups_and_last(digests, varieties)
    held = np.unique(groups.astype(np.int64) * count + varieties)
    whole = np.bincount(held // count, minlength=groups.size and int(groups.max()) + 1) == count
    kept: np.ndarray = whole[groups]
    return None if kept.all() else kept


@dataclass(frozen=True)
class Details:
    """The named numbers of each record (:class:`GroupedBuilder`'s ``details``): record r's
    are the entries ``ends[r - 1]:ends[r]``, each a name's code and a value."""

    names: list[str]
    codes: np.ndarray
    values: np.ndarray
    ends: np.ndarray

    @functools.cached_property
    def _owner(self) -> np.ndarray:
        """The record of each entry (the same for every variety's sums)."""
        import numpy as np
        return np.repeat(np.arange(self.ends.size), np.diff(self.ends, prepend=0))

    def of(self, records: np.ndarray) -> Details:
        """The details of the records a boolean mask keeps, numbered anew."""
        import numpy as np
        entries = records[self._owner]
        return Details(names=self.names, codes=self.codes[entries], values=self.values[entries],
                       ends=np.cumsum(np.diff(self.ends, prepend=0)[records]))

    def sums(self, records: np.ndarray) -> dict[str, tuple[float, int]]:
        """Per name, the sum of its values over ``records`` and how many there are."""
        import numpy as np

        chosen = np.zeros(self.ends.size, dtype=bool)
        chosen[records] = True
        entries = chosen[self._owner]
        codes = self.codes[entries]
        totals = np.bincount(codes, weights=self.values[entries], minlength=len(self.names))
        counts = np.bincount(codes, minlength=len(self.names))
        return {name: (float(totals[i]), int(counts[i])) for i, name in enumerate(self.names)
                if counts[i]}


def _groups_and_last(digests: np.ndarray,
                     varieties: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Per record, its group's number (a group pairs across varieties); and the position of
    the last record of each (group, variety), in the order they first appear, or None when
    no record was replaced. One stable sort serves both, and the sorted columns are
    compared one at a time: a million records take about 26 bytes each here, not 90."""
    import numpy as np

    count = varieties.size
    order = np.lexsort((varieties, digests[:, 1], digests[:, 0]))
    new_group = np.zeros(count, dtype=bool)
    new_group[:1] = True
    for column in (digests[:, 0], digests[:, 1]):
        ordered = column[order]
        new_group[1:] |= ordered[1:] != ordered[:-1]
    new_key = new_group.copy()
    ordered = varieties[order]
    new_key[1:] |= ordered[1:] != ordered[:-1]
    del ordered
    groups = np.empty(count, dtype=np.int32)
    groups[order] = np.cumsum(new_group, dtype=np.int32) - 1
    if new_key.all():
        return groups, None
    starts = np.flatnonzero(new_key)
    first, last = order[starts], order[np.append(starts[1:], count) - 1]
    kept: np.ndarray = last[np.argsort(first)]
    return groups, kept


#: Bytes of a group's digest: groups are told apart by it without keeping their names
#: (a collision among a million groups has a chance of about 1e-27).
_DIGEST = 16


class _RowBuffer:
    """Rows of statistics appended one at a time into one flat float buffer: no object per
    row (a list of a million row tuples would hold hundreds of MB, and long-lived small
    objects interleaved with each record's short-lived ones keep the allocator's arenas
    from being reused, so the process grows faster than the rows it keeps)."""

    def __init__(self) -> None:
        self.values = array("d")
        self.width = 0

    def append(self, row: Sequence[float]) -> None:
        if len(row) != self.width:
            if self.values:
                raise ValueError(f"a statistics row of {len(row)} numbers after rows of "
                                 f"{self.width}")
            self.width = len(row)
        self.values.extend(row)

    def matrix(self) -> np.ndarray:
        import numpy as np
        if not self.width:
            return np.empty((0, 1))
        return np.frombuffer(self.values, dtype=float).reshape(-1, self.width)


@dataclass
class Grouped:
    """What the bootstrap reads of a set of records: per item (the last record of each
    variety and group, in the order the items first appear) its rows of statistics, the
    "variety" it is scored under and its group (paired deltas pair items of one group);
    the failures counted per variety, every record counted."""

    names: dict[str, list[str]]
    pools: dict[str, np.ndarray]  # per record: the code of its value in each labelling
    failures: np.ndarray  # per record: 1 error, 2 unparsed
    kept: np.ndarray  # the record behind each item
    groups: np.ndarray | None  # per item; None: every item is a group of its own
    matrices: dict[Statistics, np.ndarray]  # per item
    details: Details | None = None
    labelling: str = ""

    @classmethod
    def of(cls, records: Iterable[PredictionRecord], statistics: Sequence[Statistics],
           pool_by: PoolBy | None = None, *,
           details: DetailValues | None = None) -> Grouped:
        """The records grouped by variety; with ``pool_by``, each record scored under the
        "variety" it names (all pooled, a kind of item, a breakdown value) and under a
        group of its own (no two of its items paired), without copying the records."""
        builder = GroupedBuilder(statistics, {"pool": pool_by} if pool_by else None,
                                 details=details)
        for record in records:
            builder.add(record)
        grouped = builder.build()
        return grouped.view("pool") if pool_by else grouped

    def view(self, labelling: str) -> Grouped:
        """The same items under the values of a labelling of the builder, each a group of
        its own (no two items of a value are paired)."""
        return replace(self, labelling=labelling, groups=None)

    @functools.cached_property
    def _item_codes(self) -> np.ndarray:
        """Per item, the code of its value in the labelling."""
        codes: np.ndarray = self.pools[self.labelling]
        # as many items as records: none was replaced, the items are the records in order
        return codes if self.kept.size == codes.size else codes[self.kept]

    @property
    def varieties(self) -> list[str]:
        """The values with at least one item."""
        import numpy as np
        names = self.names[self.labelling]
        return [names[code] for code in np.flatnonzero(np.bincount(self._item_codes))]

    def items(self, variety: str) -> np.ndarray:
        """The items of a variety, in order."""
        import numpy as np
        code = self.names[self.labelling].index(variety)
        return np.flatnonzero(self._item_codes == code)

    def failures_of(self, variety: str) -> tuple[int, int]:
        """Errors and unparsed answers among the variety's records (replaced ones too)."""
        import numpy as np
        code = self.names[self.labelling].index(variety)
        failures = self.failures[self.pools[self.labelling] == code]
        return int(np.count_nonzero(failures == 1)), int(np.count_nonzero(failures == 2))

    def detail_sums(self, variety: str) -> dict[str, tuple[float, int]]:
        """Per name of the builder's ``details``, the sum of the values the variety's items
        give it and how many give one (empty if the builder was given no ``details``)."""
        if self.details is None:
            return {}
        return self.details.sums(self.kept[self.items(variety)])

    def rows(self, variety: str) -> _Rows:
        """The items of a variety, as the bootstrap scores them."""
        return _Rows(self, self.items(variety))


class VarietyRows(Protocol):
    """The items of one variety as the bootstrap scores them."""

    @property
    def n(self) -> int:
        """How many items."""

    def layout(self, metric: MetricDef) -> tuple[np.ndarray, np.ndarray]:
        """The items' rows (or distinct cells) and their point-estimate weights (1, m)."""

    def paired(self, reference: Self,
               metric: MetricDef) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The layout of the items beside the reference's items of the same groups, with
        the width of one side's rows; None when no group is shared or nothing is paired."""


class Grouping(Protocol):
    """What :func:`score_varieties` reads: a :class:`Grouped`, or a
    :class:`~moroccan_eval.stats.counted.Counted`."""

    @property
    def varieties(self) -> list[str]:
        """The values with at least one item."""

    def rows(self, variety: str) -> VarietyRows:
        """The items of a variety."""

    def failures_of(self, variety: str) -> tuple[int, int]:
        """Errors and unparsed answers among the variety's records."""


def score_varieties(grouped: Grouping, metrics: Sequence[MetricDef],
                    reference_variety: str,
                    resampling: Resampling = DEFAULT_RESAMPLING) -> dict[str, VarietyScore]:
    """Per variety: n, failures, each metric with its interval, and the paired delta to
    ``reference_variety`` over the groups both hold."""

    order = {code: i for i, code in enumerate(varieties.registry())}
    present = grouped.varieties
    reference = grouped.rows(reference_variety) if reference_variety in present else None
    result: dict[str, VarietyScore] = {}
    for variety in sorted(present, key=lambda code: (order.get(code, len(order)), code)):
        rows = grouped.rows(variety)
        errors, unparsed = grouped.failures_of(variety)
        entry = VarietyScore(n=rows.n, errors=errors, unparsed=unparsed)
        for metric in metrics:
            stream = metric.stream_of(resampling.seed, variety)
            entry.metrics[metric.name] = _estimate(metric, rows.layout(metric), resampling,
                                                   stream)
            paired = (rows.paired(reference, metric)
                      if reference is not None and variety != reference_variety else None)
            if paired is not None:
                delta = _paired_delta(metric, *paired, resampling, stream)
                if delta is not None:
                    entry.deltas[metric.name] = delta
        result[variety] = entry
    return result


class _Rows:
    """The items of one variety: their statistics, and layouts computed once per
    statistics function (metrics that share one, such as accuracy and macro-F1, share
    them)."""

    def __init__(self, grouped: Grouped, items: np.ndarray):
        self.grouped = grouped
        self.items = items
        self._layouts: dict[tuple[Statistics, str], tuple[np.ndarray, np.ndarray]] = {}
        self._shared: tuple[np.ndarray, np.ndarray] | None = None
        self._pairs: dict[tuple[Statistics, str], tuple[int, np.ndarray, np.ndarray]] = {}

    @property
    def n(self) -> int:
        return int(self.items.size)

    def layout(self, metric: MetricDef) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_layout` of all the items, shared by metrics with the same statistics."""
        key = (metric.statistics, metric.resample)
        if key not in self._layouts:
            self._layouts[key] = _layout(metric, self.grouped.matrices[metric.statistics],
                                         self.items)
        return self._layouts[key]

    def paired(self, reference: _Rows,
               metric: MetricDef) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The :func:`_layout` of this variety's items beside the reference's items of the
        same groups (with the rows' width); None when no group is shared or the grouping
        pairs nothing."""
        if self.grouped.groups is None:
            return None
        if self._shared is None:
            self._shared = self.shared_with(reference)
        own, theirs = self._shared
        if not own.size:
            return None
        key = (metric.statistics, metric.resample)
        if key not in self._pairs:  # metrics sharing statistics share the paired cells
            matrix = self.grouped.matrices[metric.statistics]
            self._pairs[key] = (matrix.shape[1], *_layout(metric, matrix, own, theirs))
        return self._pairs[key]

    def shared_with(self, reference: _Rows) -> tuple[np.ndarray, np.ndarray]:
        """The items of this variety whose group the reference holds (in this variety's
        order), and the reference's items of the same groups."""
        import numpy as np
        groups = self.grouped.groups
        assert groups is not None
        position = np.full(groups.size and int(groups.max()) + 1, -1, dtype=np.intp)
        position[groups[reference.items]] = reference.items
        theirs = position[groups[self.items]]
        paired = theirs >= 0
        return self.items[paired], theirs[paired]


#: Bootstrap weights are drawn this many cells at a time (B x cells), so scoring a
#: million items holds tens of MB, not gigabytes; the draws are the same numbers as one
#: ``multinomial(size=B)`` call (the generator advances row by row).
_DRAW_CELLS = 2_000_000


def _layout(metric: MetricDef, matrix: np.ndarray,
            *items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows or distinct cells, their point-estimate weights) of the rows of ``matrix``
    that ``items`` index (every row without one); with two index arrays (paired items),
    each row is the first item's beside the second's."""
    import numpy as np

    items = items or (np.arange(matrix.shape[0]),)
    if metric.resample == "cells":
        cells, freq = _distinct_rows(matrix, items)
        return cells, freq[None, :]
    rows = _gathered(matrix, items, 0, items[0].size)
    return rows, np.ones((1, rows.shape[0]))


def _gathered(matrix: np.ndarray, items: Sequence[np.ndarray], start: int,
              stop: int) -> np.ndarray:
    """The rows of ``items[start:stop]`` (side by side when several arrays index them); a
    view of ``matrix`` when one array indexes every row in order."""
    import numpy as np

    if len(items) == 1:
        if items[0].size == matrix.shape[0]:  # every row, in order: nothing to copy
            return matrix[start:stop]
        chosen: np.ndarray = matrix[items[0][start:stop]]
        return chosen
    return np.hstack([matrix[part[start:stop]] for part in items])


def _distinct_rows(matrix: np.ndarray,
                   items: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(rows, axis=0, return_counts=True)`` of the :func:`_gathered` rows: the
    same cells in the same (lexicographic) order, a few times faster on the small matrices
    of one variety, and gathered and sorted a block of rows at a time on large ones, so
    that a million rows are never copied whole."""
    import numpy as np

    count = items[0].size
    blocks = []
    for start in range(0, count, _DISTINCT_BLOCK):
        rows = _gathered(matrix, items, start, start + _DISTINCT_BLOCK)
        if np.isnan(rows).any():  # NaN: let numpy decide equality, over all the rows
            break
        blocks.append(_sorted_cells(rows, np.ones(rows.shape[0], dtype=np.intp)))
    else:
        if len(blocks) == 1:
            return blocks[0]
        if blocks:
            return _sorted_cells(np.concatenate([cells for cells, _ in blocks]),
                                 np.concatenate([freq for _, freq in blocks]))
    cells, freq = np.unique(_gathered(matrix, items, 0, count), axis=0, return_counts=True)
    return cells, freq


#: Rows sorted at a time by :func:`_distinct_rows`.
_DISTINCT_BLOCK = 65_536


def _sorted_cells(rows: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows in lexicographic order, each with the sum of its rows' weights."""
    import numpy as np

    order = np.lexsort(rows.T[::-1])
    ordered = rows[order]
    starts = np.empty(ordered.shape[0], dtype=bool)
    starts[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=starts[1:])
    first = np.flatnonzero(starts)
    return ordered[first], np.add.reduceat(weights[order], first)


class RandomStream:
    """The generator ``default_rng(entropy)`` of one (variety, metric), drawn from in order.

    Index draws do not depend on the data, only on the stream's position, n and the
    resamples: while a stream has made only such draws, small ones are remembered for the
    process (:data:`_INDEX_DRAWS`, with the generator's state after them), so the runs of a
    suite, which share its layout and seed (a leaderboard's submissions, a report's
    models), draw them once. The generator is made only when a draw is not remembered, and
    set to the state the remembered draws left: the numbers are those of drawing each time."""

    def __init__(self, entropy: tuple[int, ...]):
        self.entropy = entropy
        self._generator: np.random.Generator | None = None
        self._state: Mapping[str, Any] | None = None  # after remembered draws
        self._drawn: tuple[tuple[int, int], ...] | None = ()  # None: a draw read the data

    def generator(self) -> np.random.Generator:
        """The generator at the stream's position, for a draw that depends on the data."""
        self._drawn = None
        return self._live()

    def index_generator(self, n: int, n_boot: int) -> np.random.Generator:
        """The generator at the stream's position, for n_boot resamples of n indices."""
        if self._drawn is not None:
            self._drawn += ((n, n_boot),)
        return self._live()

    def item_counts(self, n: int, n_boot: int) -> np.ndarray:
        """(n_boot, n) float: how many times each of n items is drawn in each of n_boot
        resamples of n uniform indices (at most :data:`_INDEX_BLOCK` indices)."""
        if self._drawn is None:
            return _draw_item_counts(self._live(), n, n_boot)
        key = (self.entropy, self._drawn, n, n_boot)
        remembered = _INDEX_DRAWS.get(key)
        if remembered is None:
            generator = self.index_generator(n, n_boot)
            counts = _draw_item_counts(generator, n, n_boot)
            counts.flags.writeable = False  # shared: a score must not change its weights
            _INDEX_DRAWS.put(key, counts, generator.bit_generator.state)
            return counts
        self._drawn += ((n, n_boot),)
        counts, state = remembered
        if self._generator is not None:
            self._generator.bit_generator.state = state
        else:
            self._state = state
        return counts

    def _live(self) -> np.random.Generator:
        if self._generator is None:
            import numpy as np
            self._generator = np.random.default_rng(list(self.entropy))
            if self._state is not None:
                self._generator.bit_generator.state = self._state
        return self._generator


def _index_type(n: int) -> type:
    import numpy as np
    return np.uint16 if n <= 1 << 16 else np.int64  # 16 bits: the fastest numpy draws


def _draw_item_counts(generator: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """:meth:`RandomStream.item_counts` drawn from ``generator``."""
    import numpy as np

    drawn = generator.integers(0, n, size=(n_boot, n), dtype=_index_type(n))
    drawn = drawn + np.arange(0, n_boot * n, n)[:, None]  # each resample its own items
    return np.bincount(drawn.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


class _RememberedDraws:
    """Item counts of index draws with the generator's state after them, the least
    recently used dropped beyond a budget of bytes (safe to share between threads)."""

    def __init__(self, budget: int):
        self.budget = budget
        self.size = 0
        self._draws: OrderedDict[object, tuple[np.ndarray, Mapping[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object) -> tuple[np.ndarray, Mapping[str, Any]] | None:
        with self._lock:
            found = self._draws.get(key)
            if found is not None:
                self._draws.move_to_end(key)
            return found

    def put(self, key: object, counts: np.ndarray, state: Mapping[str, Any]) -> None:
        with self._lock:
            if key in self._draws:  # drawn by two threads at once: the same numbers
                return
            self._draws[key] = (counts, state)
            self.size += counts.nbytes
            while self.size > self.budget:
                dropped, _ = self._draws.popitem(last=False)[1]
                self.size -= dropped.nbytes


#: The index draws remembered in a process (a suite's varieties and metrics, twice: the
#: interval's and the paired delta's; 1,000 resamples of 12 items are 96 kB).
_INDEX_DRAWS = _RememberedDraws(64 << 20)
#: Draws are remembered up to this many items, and up to this many cells (their item
#: counts are summed per cell by a product with a membership matrix, cheaper than drawing
#: only for a few cells) or when every item is a cell.
_REMEMBERED_ITEMS, _REMEMBERED_CELLS = 2048, 32


def _resampled(score: Callable[[np.ndarray], np.ndarray], point: np.ndarray,
               resampling: Resampling, stream: RandomStream) -> np.ndarray:
    """``score(weights)`` for ``n_boot`` multinomial resamples of the point weights."""
    import numpy as np

    n_boot = resampling.n_boot
    if n_boot <= 0:
        return np.empty(0)
    n, cells = int(point.sum()), point.shape[1]
    if _draws_indices(resampling.draws, n, cells):
        if n <= _REMEMBERED_ITEMS and n * n_boot <= _INDEX_BLOCK and (
                cells == n or cells <= _REMEMBERED_CELLS):
            return score(_cell_counts(stream.item_counts(n, n_boot), point[0]))
        return _resampled_by_indices(score, point[0], n, n_boot,
                                     stream.index_generator(n, n_boot))
    rng = stream.generator()
    probabilities = point[0] / max(n, 1)
    chunk = max(1, _DRAW_CELLS // max(1, probabilities.size))
    # float weights: BLAS products, and the same sums (whole counts are exact in float64)
    return np.concatenate([score(rng.multinomial(n, probabilities, size=min(chunk, n_boot - i))
                                 .astype(float)) for i in range(0, n_boot, chunk)])


def _draws_indices(draws: Draws, n: int, cells: int) -> bool:
    """Whether ``draws`` draws n items of ``cells`` cells as indices (the multinomial
    otherwise)."""
    if draws == "multinomial" or n <= 0:
        return False
    return n <= INDICES_PER_CELL * cells or (draws == "indices2" and n <= INDICES2_ITEMS)


def _cell_counts(item_counts: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """Item counts summed per cell, the items numbered cell by cell (``frequencies[c]``
    items of cell c)."""
    import numpy as np

    if frequencies.size == item_counts.shape[1]:
        return item_counts
    return np.asarray(item_counts @ _membership(frequencies.astype(np.intp).tobytes()))


@functools.lru_cache(maxsize=32)  # at most 512 kB each
def _membership(frequencies: bytes) -> np.ndarray:
    """(items, cells): 1 where the item is of the cell, the items numbered cell by cell."""
    import numpy as np

    counts = np.frombuffer(frequencies, dtype=np.intp)
    items, cells = int(counts.sum()), counts.size
    membership = np.zeros((items, cells))
    membership[np.arange(items), np.repeat(np.arange(cells), counts)] = 1
    membership.flags.writeable = False
    return membership


def _resampled_by_indices(score: Callable[[np.ndarray], np.ndarray], frequencies: np.ndarray,
                          n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`_resampled` drawing each resample's n items as uniform indices, counted per
    cell (the weights of whole resamples, in blocks of :data:`_INDEX_BLOCK` indices)."""
    import numpy as np

    cells = frequencies.size
    cell_of_item = np.repeat(np.arange(cells), frequencies.astype(np.intp))
    block = max(1, _INDEX_BLOCK // n)
    scores = []
    for start in range(0, n_boot, block):
        rows = min(block, n_boot - start)
        drawn = cell_of_item[rng.integers(0, n, size=(rows, n), dtype=_index_type(n))]
        drawn += np.arange(0, rows * cells, cells)[:, None]  # each resample its own cells
        counts = np.bincount(drawn.ravel(), minlength=rows * cells)
        scores.append(score(counts.reshape(rows, cells).astype(float)))
    return np.concatenate(scores)


def _scored_with_point(score: Callable[[np.ndarray], np.ndarray], point: np.ndarray,
                       resampling: Resampling, stream: RandomStream
                       ) -> tuple[float, np.ndarray]:
    """``score`` of the point weights and of the resamples (:func:`_resampled`), the point's
    row in the resamples' first call: for ``whole_counts`` metrics (see
    :class:`MetricDef`), the same number as scored alone, for one call less."""
    import numpy as np

    found: list[float] = []

    def with_point(weights: np.ndarray) -> np.ndarray:
        if found:
            return score(weights)
        values = score(np.vstack([point, weights]))
        found.append(float(values[0]))
        return values[1:]

    samples = _resampled(with_point, point, resampling, stream)
    return found[0], samples


def _estimate(metric: MetricDef, layout: tuple[np.ndarray, np.ndarray],
              resampling: Resampling, stream: RandomStream) -> MetricScore:
    cells, point = layout
    counted = int(point[0, cells[:, -1] > 0].sum()) if metric.counts_items else None

    def score(weights: np.ndarray) -> np.ndarray:
        return metric.score(cells, weights)

    if metric.whole_counts and resampling.n_boot > 0:
        value, samples = _scored_with_point(score, point, resampling, stream)
    else:
        value, samples = score(point)[0], _resampled(score, point, resampling, stream)
    return MetricScore(value=_point(value), ci=_interval(samples), n=counted)


def _paired_delta(metric: MetricDef, width: int, cells: np.ndarray, point: np.ndarray,
                  resampling: Resampling, stream: RandomStream) -> Delta | None:
    """metric(own) − metric(reference) with a paired bootstrap interval: the groups are
    resampled once and both sides are scored on the same resample. ``cells`` are the
    :func:`_layout` of the own rows (``width`` columns) beside the reference rows."""
    own_cells, reference_cells = cells[:, :width], cells[:, width:]

    def delta(weights: np.ndarray) -> np.ndarray:
        return metric.score(own_cells, weights) - metric.score(reference_cells, weights)

    if metric.whole_counts and resampling.n_boot > 0:
        # A count metric's delta is defined wherever it has pairs: draw with the point.
        point_delta, samples = _scored_with_point(delta, point, resampling, stream)
    else:
        point_delta, samples = delta(point)[0], None
    value = _point(point_delta)
    if value is None:
        return None
    ci = _interval(samples if samples is not None
                   else _resampled(delta, point, resampling, stream))
    return Delta(value=value, ci=ci, n_pairs=int(point.sum()), significant=_excludes_zero(ci))


def _interval(samples: np.ndarray) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles of the finite samples, computed as
    ``np.percentile(finite, [2.5, 97.5])`` does (its default linear method, to the bit:
    the same float operations in the same order) without its per-call overhead, which
    dominated small runs: the four order statistics it reads are partitioned into place,
    not sorted."""
    import numpy as np

    finite = np.isfinite(samples)  # a resample may leave a rate undefined
    if not finite.all():
        samples = samples[finite]
    reads, kth = _percentile_reads(samples.size)
    if not reads:
        return None
    ordered = np.partition(samples, kth)
    low, high = (lerp(float(ordered[below]), float(ordered[above]), gamma)
                 for below, above, gamma in reads)
    return (round(low, 6), round(high, 6))


@functools.lru_cache(maxsize=64)
def _percentile_reads(count: int) -> tuple[tuple[tuple[int, int, float], ...], tuple[int, ...]]:
    """Where ``np.percentile`` reads the 2.5th and 97.5th percentiles of ``count`` values
    (:func:`~moroccan_eval.stats.spill.percentile_reads`), and the order statistics to
    partition. The same for every interval of a run: worked out once."""
    reads = tuple(percentile_reads(count, (2.5, 97.5)))
    return reads, tuple(sorted({i for read in reads for i in read[:2]}))


def _excludes_zero(ci: tuple[float, float] | None) -> bool:
    return ci is not None and (ci[0] > 0 or ci[1] < 0)


def _point(value: float) -> float | None:
    import numpy as np
    return round(float(value), 6) if np.isfinite(value) else None
