"""Grouping by counts: records counted (in memory, or spilled to disk and counted a
partition of groups at a time) score to the bit what the per-item grouping scores."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from moroccan_eval.records import PredictionRecord, VarietyScore
from moroccan_eval.stats import counted
from moroccan_eval.stats.bootstrap import Grouped, MetricDef, Resampling, score_varieties
from moroccan_eval.stats.counted import CountedBuilder
from moroccan_eval.tasks.classification import accuracy, macro_f1

LABELS = ["billing", "delivery", "refund", "other"]
VARIETIES = ["ary_Arab", "ary_Latn", "fra_Latn", "ary_Tfng"]


def _labels(record: PredictionRecord) -> Sequence[float]:
    parsed = record.get("parsed")
    return (float(LABELS.index(str(record["reference"]))),
            float(LABELS.index(str(parsed))) if parsed in LABELS else -1.0)


def _right(record: PredictionRecord) -> Sequence[float]:
    return (float(record.get("parsed") == record["reference"]), 1.0)


METRICS = [MetricDef("accuracy", _labels, accuracy, resample="cells", whole_counts=True),
           MetricDef("macro_f1", _labels, macro_f1, resample="cells", whole_counts=True),
           MetricDef("rate", _right, resample="cells")]


def _records(seed: int, groups: int) -> list[PredictionRecord]:
    """Records of four varieties with items missing, replaced by a later record (some with
    another variety's answer), failed, unparsed or skipped, in a shuffled order."""
    rng = random.Random(seed)
    records: list[PredictionRecord] = []
    for group in range(groups):
        reference = rng.choice(LABELS)
        for variety in VARIETIES:
            if rng.random() < 0.25:
                continue
            record: PredictionRecord = {
                "id": f"{group}-{variety}", "group": f"g{group}", "task": "t",
                "variety": variety, "reference": reference,
                "parsed": rng.choice([reference, reference, *LABELS, None]),
                "meta": {"channel": rng.choice(["app", "web", "phone"])}}
            if rng.random() < 0.08:
                record["error"] = "timeout"
            if rng.random() < 0.04:
                record["skipped"] = True
            records.append(record)
    records += [{**r, "parsed": rng.choice(LABELS)} for r in rng.sample(records, groups // 5)]
    rng.shuffle(records)
    return records


def _scored(grouped: Grouped | counted.Counted, resampling: Resampling
            ) -> list[dict[str, VarietyScore]]:
    return [score_varieties(grouped, METRICS, "ary_Arab", resampling),
            score_varieties(grouped.view("all"), METRICS, "", resampling),
            score_varieties(grouped.view("channel"), METRICS, "", resampling)]


LABELLINGS = {"all": lambda _: "all",
              "channel": lambda record: str(record["meta"]["channel"])}  # type: ignore[index]


@pytest.mark.parametrize("draws", ["multinomial", "indices", "indices2"])
@pytest.mark.parametrize(("groups", "spill", "partition"),
                         [(30, 1 << 15, 1 << 15),  # in memory
                          (400, 97, 128),  # on disk, several partitions
                          (400, 1000, 64)])  # a partial last buffer
def test_counts_score_what_the_items_score(monkeypatch: pytest.MonkeyPatch, draws: str,
                                           groups: int, spill: int, partition: int) -> None:
    records = _records(groups, groups)
    resampling = Resampling(300, 3, draws)  # type: ignore[arg-type]
    statistics = [metric.statistics for metric in METRICS]
    items = Grouped.of(records, statistics)
    builder = _builder(records, statistics, monkeypatch, spill, partition)
    expected = _scored(_with_views(records, statistics), resampling)
    assert _scored(builder.build(), resampling) == expected
    assert expected[0]["ary_Latn"].deltas  # pairs were scored
    assert sorted(items.varieties) == sorted(VARIETIES)


def _with_views(records: list[PredictionRecord], statistics: list) -> Grouped:  # type: ignore[type-arg]
    from moroccan_eval.stats.bootstrap import GroupedBuilder
    builder = GroupedBuilder(statistics, LABELLINGS)
    for record in records:
        builder.add(record)
    return builder.build()


def _builder(records: list[PredictionRecord], statistics: list,  # type: ignore[type-arg]
             monkeypatch: pytest.MonkeyPatch, spill: int, partition: int) -> CountedBuilder:
    monkeypatch.setattr(counted, "SPILL_RECORDS", spill)
    monkeypatch.setattr(counted, "PARTITION_RECORDS", partition)
    builder = CountedBuilder(statistics, LABELLINGS)
    for record in records:
        builder.add(record)
    return builder


def test_records_past_the_memory_go_to_disk_and_are_counted_by_partition(
        monkeypatch: pytest.MonkeyPatch) -> None:
    records = _records(7, 300)
    builder = _builder(records, [_labels], monkeypatch, 100, 64)
    assert builder._disk is not None and builder._disk.count >= 100
    assert len(builder._failures) < 100  # only the last records are in memory
    partitions = list(builder._partitions())
    assert len(partitions) == -(-sum(1 for r in records if not r.get("skipped")) // 64)
    # every record of a group in one partition, each partition in the order taken
    seen: dict[bytes, int] = {}
    for i, partition in enumerate(partitions):
        for group in partition["group"]:
            assert seen.setdefault(group.tobytes(), i) == i


def test_rows_with_nan_are_one_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    """NaN is one value for the counts, as for numpy's unique rows."""
    def nan_rows(record: PredictionRecord) -> Sequence[float]:
        return (float("nan") if record.get("parsed") is None else 1.0, 1.0)

    records = _records(3, 200)
    metric = MetricDef("rate", nan_rows, resample="cells")
    for spill in (1 << 15, 50):
        builder = _builder(records, [nan_rows], monkeypatch, spill, 64)
        assert (score_varieties(builder.build(), [metric], "ary_Arab")
                == score_varieties(Grouped.of(records, [nan_rows]), [metric], "ary_Arab"))
        assert len(builder._rows[0]) == 2


def test_statistics_rows_of_another_width_are_refused() -> None:
    builder = CountedBuilder([lambda record: (1.0, 2.0) if record["group"] == "a"
                              else (1.0,)])  # type: ignore[list-item]
    builder.add({"variety": "ary_Arab", "group": "a", "parsed": "x"})  # type: ignore[typeddict-item]
    with pytest.raises(ValueError, match="row of 1 numbers after rows of 2"):
        builder.add({"variety": "ary_Arab", "group": "b", "parsed": "x"})  # type: ignore[typeddict-item]


def _whole_groups(records: list[PredictionRecord]) -> list[PredictionRecord]:
    """The records of groups that hold a scored record of every variety (what
    ``build(complete=True)`` keeps), found the plain way."""
    scored = [r for r in records if not r.get("skipped")]
    present = {r["variety"] for r in scored}
    held: dict[str, set[str]] = {}
    for record in scored:
        held.setdefault(record["group"], set()).add(record["variety"])
    return [r for r in scored if held[r["group"]] == present]


@pytest.mark.parametrize(("spill", "partition"), [(1 << 15, 1 << 15), (97, 64)])
def test_complete_keeps_the_groups_every_variety_holds(monkeypatch: pytest.MonkeyPatch,
                                                       spill: int, partition: int) -> None:
    """Both builders' inner join (what compare pairs two runs with): the scores, failures
    and pairs of the whole groups only, as if the other records had never been taken."""
    from moroccan_eval.stats.bootstrap import GroupedBuilder

    records = _records(11, 400)
    whole = _whole_groups(records)
    assert 0 < len(whole) < len(records) / 2  # a quarter of items is missing per variety
    statistics = [metric.statistics for metric in METRICS]
    resampling = Resampling(200, 5)
    expected = _scored(_with_views(whole, statistics), resampling)
    assert _scored(_builder(records, statistics, monkeypatch, spill, partition).build(
        complete=True), resampling) == expected
    items = GroupedBuilder(statistics, LABELLINGS)
    for record in records:
        items.add(record)
    assert _scored(items.build(complete=True), resampling) == expected
    assert expected[0]["ary_Latn"].deltas and expected[0]["ary_Latn"].errors


def test_complete_keeps_every_record_when_every_group_is_whole() -> None:
    from moroccan_eval.stats.bootstrap import GroupedBuilder

    whole = _whole_groups(_records(5, 200))
    builder = GroupedBuilder([_labels])
    for record in whole:
        builder.add(record)
    grouped = builder.build(complete=True)
    assert grouped.failures.size == len(whole)
    assert score_varieties(grouped, METRICS[:1], "ary_Arab") == \
        score_varieties(Grouped.of(whole, [_labels]), METRICS[:1], "ary_Arab")
