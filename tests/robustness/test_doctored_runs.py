"""A doctored run never verifies: duplicated lines, edited latency or cost, forged or
corrupted files. Each case was measured to pass `verify` before (issue "Trust", item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_model

from moroccan_eval.adapters import load_model
from moroccan_eval.cli import main
from moroccan_eval.mockserver import MockServer
from moroccan_eval.runs.rundir import PREDICTIONS, SCORES, load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.verify import detection_probability, verify_run


def _run(suite: Path, out: Path, spec_name: str = "char-ngram") -> Path:
    [result] = run(RunOptions(suite=load_suite(suite), out_dir=out, progress=False),
                   [load_model(spec_name)])
    return result.path


def _records(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in (path / PREDICTIONS).read_text("utf-8").splitlines()]


def _write_records(path: Path, records: list[dict]) -> None:  # type: ignore[type-arg]
    (path / PREDICTIONS).write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _verify(path: Path, suite: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verify", str(path), "--suite", str(suite)])
    return result.exit_code, result.output


def test_a_second_line_per_wrong_item_is_a_duplicate_not_a_better_score(
        tmp_path: Path, mini_suite: Path) -> None:
    path = _run(mini_suite, tmp_path, "majority")
    records = _records(path)
    wrong = [r for r in records if not r["correct"]]
    assert wrong, "the majority baseline must get some items wrong"
    _write_records(path, records + [{**r, "output": r["reference"]} for r in wrong])
    assert CliRunner().invoke(main, ["rescore", str(path)]).exit_code == 0
    accuracy = load_run(path).scores.tasks["intents"].overall.metrics["accuracy"].value
    assert accuracy == 1.0  # the doctored run claims a perfect score ...
    code, output = _verify(path, mini_suite)
    assert code == 1 and "FAILED" in output  # ... and does not verify
    assert f"{len(wrong)} item(s) predicted more than once" in output


def test_edited_latency_in_scores_is_caught(tmp_path: Path, mini_suite: Path) -> None:
    path = _run(mini_suite, tmp_path)
    scores = json.loads((path / SCORES).read_text("utf-8"))
    scores["tasks"]["intents"]["usage"]["p95_ms"] = 1.0
    scores["tasks"]["intents"]["usage"]["cost_per_1k"]["MAD"] = 0.0001
    (path / SCORES).write_text(json.dumps(scores), encoding="utf-8")
    checks = {c.name: c for c in verify_run(load_run(path), suite_ref=str(mini_suite)).checks}
    assert not checks["scores"].ok
    assert "intents/usage/p95_ms: claimed 1.0" in checks["scores"].detail
    assert "intents/usage/cost_per_1k/MAD" in checks["scores"].detail


def test_costs_that_do_not_follow_from_the_tokens_are_caught(
        tmp_path: Path, server: MockServer, mini_suite: Path) -> None:
    spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url,
                                      pricing={"input_per_mtok": 1000, "currency": "MAD"})))
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              progress=False), [spec])
    records = _records(result.path)
    for record in records:  # a cheaper bill, consistently in records and scores
        record["cost"] = 0.0
    _write_records(result.path, records)
    assert CliRunner().invoke(main, ["rescore", str(result.path)]).exit_code == 0
    checks = {c.name: c for c in verify_run(load_run(result.path),
                                            suite_ref=str(mini_suite)).checks}
    assert not checks["usage"].ok
    assert "cost 0.0 does not follow from its tokens" in checks["usage"].detail


def test_a_record_for_another_task_or_a_missing_item_fails(tmp_path: Path,
                                                           mini_suite: Path) -> None:
    path = _run(mini_suite, tmp_path)
    records = _records(path)
    _write_records(path, [*records[1:], {**records[0], "task": "ghost"}])
    code, output = _verify(path, mini_suite)
    assert code == 1
    assert "not an item of the claimed selection" in output
    assert "have no prediction" in output


def test_a_corrupted_scores_file_is_one_clear_error(tmp_path: Path, mini_suite: Path) -> None:
    path = _run(mini_suite, tmp_path)
    (path / SCORES).write_text('{"run_id": 3, "tasks": {"intents": {"varieties": []}}}')
    code, output = _verify(path, mini_suite)
    assert code == 1 and "Traceback" not in output
    assert "scores.json: not a moroccan-eval scores.json" in output


def test_the_endpoint_sample_says_how_likely_it_catches_doctoring(
        tmp_path: Path, mini_suite: Path) -> None:
    path = _run(mini_suite, tmp_path)
    result = CliRunner().invoke(main, ["verify", str(path), "--suite", str(mini_suite),
                                       "--endpoint", "char-ngram", "--sample", "4"])
    assert result.exit_code == 0, result.output
    assert "a sample of 4 of 12 answers catches" in result.output
    assert "10% of answers doctored with probability" in result.output


@pytest.mark.parametrize(("population", "sample", "doctored", "expected"), [
    (100, 10, 10, 1 - 0.3304762),  # 1 - C(90,10)/C(100,10)
    (100, 100, 1, 1.0),
    (100, 0, 50, 0.0),
    (420, 21, 0, 0.0),
])
def test_detection_probability_is_hypergeometric(population: int, sample: int, doctored: int,
                                                 expected: float) -> None:
    assert detection_probability(population, sample, doctored) == pytest.approx(expected,
                                                                                 abs=1e-6)
