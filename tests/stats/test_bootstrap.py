"""The bootstrap engine: resamples drawn in chunks are the same numbers, and its fast paths
give numpy's own results to the bit (a run scored before them must verify after them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pytest

from moroccan_eval.records import Delta
from moroccan_eval.stats import bootstrap
from moroccan_eval.stats.bootstrap import MetricDef, Resampling, ratio
from moroccan_eval.tasks.classification import MISSING, macro_f1

MULTINOMIAL = Resampling(1000, 0, "multinomial")


def _paired(metric: MetricDef, rows: np.ndarray, reference: np.ndarray,
            stream: bootstrap.RandomStream, resampling: Resampling = MULTINOMIAL) -> Delta | None:
    cells, point = bootstrap._layout(metric, np.hstack([rows, reference]))
    return bootstrap._paired_delta(metric, rows.shape[1], cells, point, resampling, stream)


@pytest.mark.parametrize("resample", ["items", "cells"])
def test_chunked_draws_give_the_same_intervals(monkeypatch: pytest.MonkeyPatch,
                                               resample: str) -> None:
    rows = np.random.default_rng(1).integers(0, 3, size=(500, 2)).astype(float)
    reference = np.random.default_rng(2).integers(0, 3, size=(500, 2)).astype(float)
    metric = MetricDef("rate", lambda record: (0.0, 0.0), ratio,
                       resample=resample)  # type: ignore[arg-type]

    def both() -> tuple[object, object]:
        return (bootstrap._estimate(metric, bootstrap._layout(metric, rows), MULTINOMIAL,
                                    bootstrap.RandomStream((7,))),
                _paired(metric, rows, reference, bootstrap.RandomStream((7,))))

    whole = both()
    monkeypatch.setattr(bootstrap, "_DRAW_CELLS", 3)  # one resample row at a time
    assert both() == whole
    estimate, delta = whole
    assert estimate.ci is not None and delta is not None and delta.ci is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("draws", ["multinomial", "indices", "indices2"])
@pytest.mark.parametrize("items", [12, 84, 3000])
def test_a_whole_count_metrics_point_scored_with_its_resamples_is_the_same(
        monkeypatch: pytest.MonkeyPatch, draws: str, items: int) -> None:
    """Classification's metrics score the point in the resamples' call (whole counts): the
    same value, interval and delta as scoring it alone, in one call or in chunks."""
    from dataclasses import replace

    from moroccan_eval.tasks.classification import accuracy

    rng = np.random.default_rng(items)
    rows = rng.integers(0, 4, size=(items, 2)).astype(float)
    reference = rng.integers(0, 4, size=(items, 2)).astype(float)
    resampling = Resampling(500, 0, draws)  # type: ignore[arg-type]
    for score in (accuracy, macro_f1):
        fused = MetricDef("m", lambda record: (0.0, 0.0), score, resample="cells",
                          whole_counts=True)
        alone = replace(fused, whole_counts=False)

        def both(metric: MetricDef) -> tuple[object, object]:
            return (bootstrap._estimate(metric, bootstrap._layout(metric, rows), resampling,
                                        bootstrap.RandomStream((7,))),
                    _paired(metric, rows, reference, bootstrap.RandomStream((8,)), resampling))

        assert both(fused) == both(alone)
        with monkeypatch.context() as patched:
            patched.setattr(bootstrap, "_DRAW_CELLS", 40)  # the multinomial in chunks
            assert both(fused) == both(alone)


def _weights(draws: str, point: np.ndarray, seed: int, n_boot: int = 20_000) -> np.ndarray:
    """The weights of ``n_boot`` resamples, as the draws give them to a score function."""
    return bootstrap._resampled(lambda weights: weights, point,
                                Resampling(n_boot, 0, draws),  # type: ignore[arg-type]
                                bootstrap.RandomStream((seed,))).reshape(n_boot, -1)


@pytest.mark.parametrize("frequencies", [[1] * 12, [5, 1, 3, 2], [20, 2, 7, 1]])
def test_index_draws_are_the_multinomial_of_the_cells(frequencies: list[int]) -> None:
    point = np.array([frequencies], dtype=float)
    n, cells = int(point.sum()), point.shape[1]
    by_indices, by_binomials = _weights("indices", point, 1), _weights("multinomial", point, 1)
    assert not np.array_equal(by_indices[:100], by_binomials[:100])  # other numbers ...
    assert np.all(by_indices.sum(axis=1) == n)  # ... each resample n items
    expected_mean = point[0]  # ... the same mean and covariance: multinomial(n, p)
    p = point[0] / n
    expected_cov = n * (np.diag(p) - np.outer(p, p))
    for weights in (by_indices, by_binomials):
        assert np.allclose(weights.mean(axis=0), expected_mean, atol=0.05 * np.sqrt(n))
        assert np.allclose(np.cov(weights.T), expected_cov, atol=0.06 * n / cells + 0.05)


def test_index_draws_stop_where_the_multinomial_is_cheaper() -> None:
    few_cells = np.array([[300.0, 200.0]])  # 500 items in 2 cells: binomials are cheaper
    assert np.array_equal(_weights("indices", few_cells, 3, 200),
                          _weights("multinomial", few_cells, 3, 200))
    within = np.array([[9.0, 7.0]])  # 16 items in 2 cells: indices
    assert not np.array_equal(_weights("indices", within, 3, 200),
                              _weights("multinomial", within, 3, 200))


def test_indices2_draws_small_views_as_indices_however_few_their_cells() -> None:
    """``indices2`` is ``indices`` but for views of at most 2,048 items, which it draws as
    indices even in two cells (a leaderboard's pooled views), and remembers."""
    small = np.array([[60.0, 24.0]])  # 84 items, 2 cells: indices2 only
    assert np.array_equal(_weights("indices", small, 3, 200),
                          _weights("multinomial", small, 3, 200))
    assert not np.array_equal(_weights("indices2", small, 3, 200),
                              _weights("multinomial", small, 3, 200))
    rng = np.random.default_rng([3])
    assert np.array_equal(_weights("indices2", small, 3, 200),
                          _drawn_per_cell(rng, [60, 24], 200))
    large = np.array([[2000.0, 49.0]])  # 2,049 items: the multinomial, as indices
    assert np.array_equal(_weights("indices2", large, 3, 200),
                          _weights("multinomial", large, 3, 200))
    many = np.array([[1.0] * 40 + [2.0] * 3])  # the items within 8 times the cells: alike
    assert np.array_equal(_weights("indices2", many, 3, 200), _weights("indices", many, 3, 200))


def test_index_draws_give_intervals_like_the_multinomials() -> None:
    """The same statistic, both draws: intervals agree to within the bootstrap's own noise,
    and each draws' numbers are reproducible."""
    rng = np.random.default_rng(8)
    rows = np.stack([rng.integers(0, 2, 300), np.ones(300)], axis=1).astype(float)
    reference = np.stack([rng.integers(0, 2, 300), np.ones(300)], axis=1).astype(float)
    metric = MetricDef("rate", lambda record: (0.0, 0.0), ratio)  # type: ignore[arg-type]
    layout = bootstrap._layout(metric, rows)
    indices = Resampling(2000, 0, "indices")
    ours = bootstrap._estimate(metric, layout, indices, bootstrap.RandomStream((9,)))
    theirs = bootstrap._estimate(metric, layout, Resampling(2000, 0, "multinomial"),
                                 bootstrap.RandomStream((9,)))
    assert ours.value == theirs.value and ours.ci != theirs.ci
    assert ours.ci is not None and theirs.ci is not None
    assert np.allclose(ours.ci, theirs.ci, atol=0.01)
    assert ours == bootstrap._estimate(metric, layout, indices, bootstrap.RandomStream((9,)))
    delta = _paired(metric, rows, reference, bootstrap.RandomStream((9,)), indices)
    legacy = _paired(metric, rows, reference, bootstrap.RandomStream((9,)),
                     Resampling(2000, 0, "multinomial"))
    assert delta is not None and legacy is not None and delta.ci and legacy.ci
    assert delta.value == legacy.value and np.allclose(delta.ci, legacy.ci, atol=0.015)


def _drawn_per_cell(rng: np.random.Generator, frequencies: list[int],
                    n_boot: int) -> np.ndarray:
    """The ``indices`` scheme written out: each resample's n items as n uniform 16-bit
    indices, counted per cell."""
    n = sum(frequencies)
    cell_of_item = np.repeat(np.arange(len(frequencies)), frequencies)
    drawn = cell_of_item[rng.integers(0, n, size=(n_boot, n), dtype=np.uint16)]
    return np.stack([np.bincount(row, minlength=len(frequencies)) for row in drawn]).astype(float)


@pytest.mark.parametrize("frequencies", [[1] * 12, [5, 1, 3, 2], [1] * 40 + [2] * 3])
def test_remembered_index_draws_are_the_drawn_ones(monkeypatch: pytest.MonkeyPatch,
                                                   frequencies: list[int]) -> None:
    """Runs of one suite share their index draws: a stream that finds its draws remembered
    gives the numbers of drawing them, and so does a data-dependent draw after them."""
    monkeypatch.setattr(bootstrap, "_INDEX_DRAWS", bootstrap._RememberedDraws(64 << 20))
    point = np.array([frequencies], dtype=float)
    resampling = Resampling(300, 0, "indices")
    rng = np.random.default_rng([11, 12])  # the scheme by hand, one draw after another
    expected = [_drawn_per_cell(rng, frequencies, 300), _drawn_per_cell(rng, frequencies, 300),
                rng.multinomial(10, [0.5, 0.5], size=3)]
    for _ in range(2):  # drawn, then remembered
        stream = bootstrap.RandomStream((11, 12))
        first = bootstrap._resampled(np.array, point, resampling, stream)
        second = bootstrap._resampled(np.array, point, resampling, stream)
        after = stream.generator().multinomial(10, [0.5, 0.5], size=3)
        assert [first.tolist(), second.tolist(), after.tolist()] == [
            e.tolist() for e in expected]
    remembered = len(frequencies) <= bootstrap._REMEMBERED_CELLS or max(frequencies) == 1
    assert (bootstrap._INDEX_DRAWS.size > 0) == remembered  # else drawn each time


def test_remembered_index_draws_are_read_only_and_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    one_draw = 100 * 12 * 8  # 100 resamples of 12 items, float counts
    monkeypatch.setattr(bootstrap, "_INDEX_DRAWS", bootstrap._RememberedDraws(2 * one_draw))
    counts = [bootstrap.RandomStream((seed,)).item_counts(12, 100) for seed in range(3)]
    with pytest.raises(ValueError, match="read-only"):
        counts[0][0, 0] = 5
    assert bootstrap._INDEX_DRAWS.size == 2 * one_draw  # the oldest was dropped
    again = bootstrap.RandomStream((0,)).item_counts(12, 100)  # drawn again, the same
    assert np.array_equal(again, counts[0]) and again is not counts[0]
    assert bootstrap.RandomStream((2,)).item_counts(12, 100) is counts[2]


def test_remembered_index_draws_are_shared_between_threads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    budget = 18 * 50 * 12 * 8  # 18 draws of 50 resamples of 12 items: 9 of 13 streams
    monkeypatch.setattr(bootstrap, "_INDEX_DRAWS", bootstrap._RememberedDraws(budget))

    def draws(seed: int) -> list[float]:
        stream = bootstrap.RandomStream((seed % 13,))
        return [*stream.item_counts(12, 50).ravel(), *stream.item_counts(12, 50).ravel()]

    expected = [draws(seed) for seed in range(13)]  # some dropped, drawn again
    with ThreadPoolExecutor(8) as pool:
        for seed, got in enumerate(pool.map(draws, range(200))):
            assert got == expected[seed % 13]
    assert 0 < bootstrap._INDEX_DRAWS.size <= budget


def test_the_interval_is_numpys_percentile_to_the_bit() -> None:
    rng = np.random.default_rng(3)
    for size in [*range(1, 60), 999, 1000, 1001]:
        for samples in (rng.random(size), rng.integers(0, 4, size) / 3,
                        np.where(rng.random(size) < 0.1, np.nan, rng.normal(size=size))):
            finite = samples[np.isfinite(samples)]
            expected = (None if finite.size == 0 else
                        tuple(round(float(v), 6) for v in np.percentile(finite, [2.5, 97.5])))
            assert bootstrap._interval(samples) == expected, (size, samples)


@pytest.mark.parametrize("block", [65_536, 64, 1])  # large runs are sorted block by block
def test_distinct_rows_are_numpys_unique_rows(monkeypatch: pytest.MonkeyPatch,
                                              block: int) -> None:
    monkeypatch.setattr(bootstrap, "_DISTINCT_BLOCK", block)
    rng = np.random.default_rng(4)
    for size in (1, 2, 7, 64, 65, 84, 500):
        for width in (1, 2, 5):
            rows = rng.integers(-1, 3, size=(size, width)).astype(float)
            cells, freq = bootstrap._distinct_rows(rows, (np.arange(size),))
            expected_cells, expected_freq = np.unique(rows, axis=0, return_counts=True)
            assert np.array_equal(cells, expected_cells)
            assert np.array_equal(freq, expected_freq)


@pytest.mark.parametrize("block", [65_536, 64, 1])
@pytest.mark.parametrize("nan", [False, True])
def test_paired_cells_are_gathered_block_by_block(monkeypatch: pytest.MonkeyPatch, block: int,
                                                  nan: bool) -> None:
    """A variety's rows beside its pairs' are gathered a block at a time (a million items
    are never copied whole): the cells and their counts are those of the whole matrix."""
    monkeypatch.setattr(bootstrap, "_DISTINCT_BLOCK", block)
    rng = np.random.default_rng(5)
    matrix = rng.integers(-1, 3, size=(500, 2)).astype(float)
    if nan:
        matrix[rng.integers(0, 500, size=5), 1] = np.nan
    own, theirs = rng.permutation(500)[:200], rng.permutation(500)[:200]
    metric = MetricDef("rate", lambda record: (0.0, 0.0), ratio, resample="cells",
                       counts_items=True)  # type: ignore[arg-type]
    cells, point = bootstrap._layout(metric, matrix, own, theirs)
    whole = np.hstack([matrix[own], matrix[theirs]])
    expected_cells, expected_freq = np.unique(whole, axis=0, return_counts=True)
    assert np.array_equal(cells, expected_cells, equal_nan=True)
    assert np.array_equal(point[0], expected_freq)
    # an interval's count of items with a denominator reads the cells, not the rows
    alone = bootstrap._layout(metric, matrix, own)
    estimate = bootstrap._estimate(metric, alone, MULTINOMIAL, bootstrap.RandomStream((3,)))
    assert estimate.n == int((matrix[own][:, -1] > 0).sum())


def test_a_labelling_of_more_than_256_values_keeps_every_code() -> None:
    """Label codes take a byte per record until a labelling has a 257th value."""
    records = [{"id": str(i), "group": str(i), "task": "t", "variety": "ary_Arab",
                "reference": "a", "parsed": "a", "meta": {"k": i % 300}} for i in range(900)]
    grouped = bootstrap.Grouped.of(records, [_row],  # type: ignore[arg-type]
                                   lambda record: str(record["meta"]["k"]))  # type: ignore[index]
    assert len(grouped.varieties) == 300
    assert [grouped.items(str(k)).tolist() for k in (0, 255, 256, 299)] == [
        list(range(k, 900, 300)) for k in (0, 255, 256, 299)]


def test_statistics_rows_of_another_width_are_refused() -> None:
    builder = bootstrap.GroupedBuilder([lambda record: (1.0, 2.0) if record["group"] == "a"
                                        else (1.0,)])  # type: ignore[list-item, arg-type]
    builder.add({"variety": "ary_Arab", "group": "a", "parsed": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="row of 1 numbers after rows of 2"):
        builder.add({"variety": "ary_Arab", "group": "b", "parsed": "x"})  # type: ignore[arg-type]


def test_macro_f1_is_the_label_by_label_sum() -> None:
    rng = np.random.default_rng(5)
    rows = np.stack([rng.integers(0, 6, 84), rng.integers(-1, 6, 84)], axis=1).astype(float)
    weights = rng.multinomial(84, np.full(84, 1 / 84), size=200)
    true, pred = rows[:, 0], rows[:, 1]
    expected = np.zeros(200)
    labels = np.unique(np.concatenate([true, pred[pred != MISSING]]))
    for label in labels:
        is_true, is_pred = true == label, pred == label
        tp = weights @ (is_true & is_pred)
        denom = weights @ is_true + weights @ is_pred
        expected += np.divide(2 * tp, denom, out=np.zeros(200), where=denom > 0)
    assert np.array_equal(macro_f1(rows, weights), expected / labels.size)


def _records(seed: int) -> list[dict[str, object]]:
    """Records of three varieties with items missing, replaced by a later record, failed,
    unparsed or skipped, in a shuffled order."""
    import random

    rng = random.Random(seed)
    records: list[dict[str, object]] = []
    for group in range(40):
        for variety in ("ary_Arab", "ary_Latn", "fra_Latn"):
            if rng.random() < 0.2:
                continue
            record: dict[str, object] = {"group": f"g{group}", "variety": variety,
                                         "parsed": rng.choice(["a", "b", None]),
                                         "reference": rng.choice(["a", "b"])}
            if rng.random() < 0.1:
                record["error"] = "timeout"
            if rng.random() < 0.05:
                record["skipped"] = True
            records.append(record)
    records += [{**r, "parsed": "a"} for r in rng.sample(records, 8)]  # later records
    rng.shuffle(records)
    return records


def _row(record: dict[str, object]) -> tuple[float, float]:
    return (float(record["reference"] == "a"), float(record.get("parsed") == "a"))


@pytest.mark.parametrize("seed", range(5))
def test_the_grouping_keeps_each_items_last_record_where_it_first_appeared(seed: int) -> None:
    records = _records(seed)
    # what the grouping must be, written the plain way: a dict per variety
    expected: dict[str, dict[str, dict[str, object]]] = {}
    errors: dict[str, int] = {}
    unparsed: dict[str, int] = {}
    for record in records:
        if record.get("skipped"):
            continue
        variety = str(record["variety"])
        if record.get("error"):
            errors[variety] = errors.get(variety, 0) + 1
        elif record.get("parsed") is None:
            unparsed[variety] = unparsed.get(variety, 0) + 1
        expected.setdefault(variety, {})[str(record["group"])] = record

    grouped = bootstrap.Grouped.of(records, [_row])  # type: ignore[arg-type]
    assert sorted(grouped.varieties) == sorted(expected)
    matrix = grouped.matrices[_row]  # type: ignore[index]
    for variety, by_group in expected.items():
        items = grouped.items(variety)
        assert [tuple(row) for row in matrix[items]] == [_row(r) for r in by_group.values()]
        assert grouped.failures_of(variety) == (errors.get(variety, 0),
                                                unparsed.get(variety, 0))
    # groups pair across varieties: same number, same group name
    own, reference = bootstrap._Rows(grouped, grouped.items("ary_Latn")), bootstrap._Rows(
        grouped, grouped.items("ary_Arab"))
    mine, theirs = own.shared_with(reference)
    shared = [g for g in expected["ary_Latn"] if g in expected["ary_Arab"]]
    assert [tuple(row) for row in matrix[mine]] == [_row(expected["ary_Latn"][g]) for g in shared]
    assert [tuple(row) for row in matrix[theirs]] == [_row(expected["ary_Arab"][g])
                                                      for g in shared]

    # pooled: every item on its own, failures counted under the pool
    pooled = bootstrap.Grouped.of(records, [_row], lambda _: "all")  # type: ignore[arg-type]
    assert pooled.varieties == ["all"] and pooled.groups is None
    assert pooled.items("all").size == sum(len(v) for v in expected.values())
    assert pooled.failures_of("all") == (sum(errors.values()), sum(unparsed.values()))


def _sums(records: Iterable[dict[str, object]], values: Callable[[dict[str, object]],
          dict[str, float]]) -> dict[str, tuple[float, int]]:
    sums: dict[str, tuple[float, int]] = {}
    for record in records:
        for name, value in values(record).items():
            total, count = sums.get(name, (0.0, 0))
            sums[name] = (total + value, count + 1)
    return sums


@pytest.mark.parametrize("seed", range(3))
def test_detail_sums_read_each_items_last_record(seed: int) -> None:
    """A type's details sum named numbers over a variety's items: the last record of each
    item counts (a replaced one does not), a skipped one never, and a name only where a
    record gives it."""
    records = _records(seed)

    def values(record: dict[str, object]) -> dict[str, float]:
        found = {"answered": float(record.get("parsed") is not None)}
        if record["reference"] == "a":
            found["a_right"] = float(record.get("parsed") == "a")
        return found

    last: dict[str, dict[str, dict[str, object]]] = {}
    for record in records:
        if not record.get("skipped"):
            last.setdefault(str(record["variety"]), {})[str(record["group"])] = record
    grouped = bootstrap.Grouped.of(records, [_row], details=values)  # type: ignore[arg-type]
    for variety, by_group in last.items():
        assert grouped.detail_sums(variety) == _sums(by_group.values(), values)
    # an inner join keeps the details of the groups every variety holds, renumbered
    builder = bootstrap.GroupedBuilder([_row], details=values)  # type: ignore[list-item]
    for record in records:
        builder.add(record)  # type: ignore[arg-type]
    joined = builder.build(complete=True)
    whole = set.intersection(*(set(by_group) for by_group in last.values()))
    assert whole and any(set(by_group) - whole for by_group in last.values())
    for variety, by_group in last.items():
        assert joined.detail_sums(variety) == _sums(
            (r for group, r in by_group.items() if group in whole), values)
    assert bootstrap.Grouped.of(records, [_row]).detail_sums("ary_Arab") == {}  # type: ignore[arg-type]
