"""Scoring a run: label tasks counted on disk score what they score in memory."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from moroccan_eval.adapters import load_model
from moroccan_eval.records import PredictionRecord
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.runs.scoring import RunTally, compute_scores
from moroccan_eval.stats import counted, spill
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.schema import TaskSpec


def _records(tmp_path: Path, mini_suite: Path) -> tuple[RunTally, list[PredictionRecord]]:
    """A run's records, with later records replacing some items' answers, a skipped one,
    and latencies of many values."""
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              progress=False), [load_model("majority")])
    stored = load_run(result.path)
    rng = random.Random(4)
    records = [{**r, "latency_ms": round(rng.lognormvariate(5, 1), 3)}
               for r in stored.predictions()]
    records += [{**r, "parsed": None, "correct": False} for r in rng.sample(records, 5)]
    records.append({**records[0], "skipped": True})
    rng.shuffle(records)
    return RunTally(stored.manifest, trivial=True), records


def test_a_run_spilled_to_disk_scores_what_it_scores_in_memory(
        tmp_path: Path, mini_suite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tally, records = _records(tmp_path, mini_suite)
    manifest = tally.manifest
    assert any(task.task_type.counted for task in tally.tasks.values())
    in_memory: dict[str, float | None] = {}
    expected = compute_scores(manifest, records, 12.5, trivial=in_memory).to_json()
    assert expected["tasks"]["intents"]["usage"]["p95_ms"] is not None  # type: ignore[index]

    monkeypatch.setattr(counted, "SPILL_RECORDS", 4)
    monkeypatch.setattr(counted, "PARTITION_RECORDS", 3)
    monkeypatch.setattr(spill, "SPILL_VALUES", 5)
    monkeypatch.setattr(spill, "_READ_BLOCK", 8)
    on_disk: dict[str, float | None] = {}
    assert compute_scores(manifest, records, 12.5, trivial=on_disk).to_json() == expected
    assert on_disk == in_memory and set(on_disk) == set(manifest.tasks)


def test_the_references_kept_for_a_trivial_baseline_are_each_items_last() -> None:
    from moroccan_eval.runs.scoring import ReferenceTally
    from moroccan_eval.tasks.classification import Classification

    references: list[object] = ["a", {"fields": {"total": 12}}, "a", ["x", 1], "j", "a"]
    tally = ReferenceTally(Classification(TaskSpec.model_validate({
        "name": "t", "type": "classification", "description": "d", "data": "data/t.jsonl",
        "input_fields": ["text"], "prompt": {"user": "{{ text }}"},
        "labels": {"a": {}, "j": {}}})))
    for i, reference in enumerate(references):
        tally.add({"id": str(i), "group": str(i), "task": "t", "variety": "ary_Arab",
                   "reference": reference, "parsed": "a"})  # type: ignore[typeddict-item]
    tally.add({"id": "0", "group": "0", "task": "t", "variety": "ary_Arab",  # replaces 0
               "reference": "j", "parsed": "a"})  # type: ignore[typeddict-item]
    # each distinct reference once, in the order first taken, with its items
    assert tally.references == [("a", 2), ({"fields": {"total": 12}}, 1), (["x", 1], 1),
                                ("j", 2)]
    assert tally.trivial_score("accuracy") == pytest.approx(2 / 6)  # "a" (tie, first label)
