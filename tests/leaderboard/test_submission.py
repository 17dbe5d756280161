"""`leaderboard submit` and `leaderboard validate`: a valid submission passes; every way
of doctoring one fails with a clear reason."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from moroccan_eval.cli import main
from moroccan_eval.leaderboard.submission import CHECKSUMS, write_checksums
from moroccan_eval.leaderboard.validate import validate_submission

from .conftest import INFO, make_run, write_info


def _run_dir(submission: Path) -> Path:
    [run_dir] = (submission / "runs").iterdir()
    return run_dir


def _failed(submission: Path) -> dict[str, str]:
    report = validate_submission(submission)
    assert not report.ok
    return {c.name: c.detail for c in report.checks if not c.ok}


def test_a_valid_submission_passes(submission: Path) -> None:
    assert sorted(p.name for p in submission.iterdir()) == [CHECKSUMS, "runs", "submission.yaml"]
    result = CliRunner().invoke(main, ["leaderboard", "validate", str(submission)])
    assert result.exit_code == 0, result.output
    assert f"{submission.name}: VALID" in result.output
    listed = (submission / CHECKSUMS).read_text().splitlines()
    assert len(listed) == 4 and all("  " in line for line in listed)  # sha256sum -c format
    as_json = CliRunner().invoke(main, ["leaderboard", "validate", "--json",
                                        str(submission.parent)])
    [report] = json.loads(as_json.output)
    assert report["ok"] and [c["name"] for c in report["checks"]] == [
        "layout", "checksums", "info", "runs", "verify"]


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    data = json.loads(path.read_text("utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _edit_lines(path: Path, edit: Callable[[list[dict]], list[dict]]) -> None:  # type: ignore[type-arg]
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in edit(records)), encoding="utf-8")


def _overall(scores: dict) -> None:  # type: ignore[type-arg]
    scores["tasks"]["intents"]["overall"]["accuracy"]["value"] = 0.99


def _latency(scores: dict) -> None:  # type: ignore[type-arg]
    scores["tasks"]["intents"]["usage"]["p95_ms"] = 0.5


def _version(manifest: dict) -> None:  # type: ignore[type-arg]
    manifest["suite"]["version"] = "9.9.9"


def _latency_as_text(records: list) -> list:  # type: ignore[type-arg]
    records[1]["latency_ms"] = "fast"
    return records


@pytest.mark.parametrize(("file", "doctor", "check", "reason"), [
    ("scores.json", _overall, "verify", "overall/accuracy/value: claimed 0.99"),
    ("scores.json", _latency, "verify", "usage/p95_ms: claimed 0.5"),
    ("predictions.jsonl", lambda rs: rs[2:], "verify", "2 item(s) of the selection have no "
                                                       "prediction"),
    ("predictions.jsonl", lambda rs: rs + rs[:3], "verify", "3 item(s) predicted more than once"),
    ("manifest.json", _version, "verify", "version: run has 9.9.9, installed 0.1.0"),
    ("predictions.jsonl", _latency_as_text, "verify",
     "predictions.jsonl:2: not a prediction record as moroccan-eval writes it: latency_ms: "
     "Input should be a valid number"),
])
def test_doctored_runs_fail_even_with_resealed_checksums(
        submission: Path, file: str, doctor: Callable, check: str, reason: str) -> None:  # type: ignore[type-arg]
    path = _run_dir(submission) / file
    if file.endswith(".jsonl"):
        _edit_lines(path, doctor)
    else:
        _edit_json(path, doctor)
    write_checksums(submission)  # what a careful forger does
    failed = _failed(submission)
    assert reason in failed[check], failed


def test_an_edit_without_resealing_fails_the_checksums(submission: Path) -> None:
    _edit_json(_run_dir(submission) / "scores.json", _overall)
    assert "scores.json: sha256 does not match SHA256SUMS" in _failed(submission)["checksums"]


def test_path_traversal_in_the_checksums_fails(submission: Path) -> None:
    with (submission / CHECKSUMS).open("a") as fh:
        fh.write(f"{'0' * 64}  ../../outside.txt\n")
    assert "../../outside.txt: listed in SHA256SUMS but absent" in \
        _failed(submission)["checksums"]


def test_a_symlink_fails_the_layout(submission: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.jsonl"
    predictions = _run_dir(submission) / "predictions.jsonl"
    outside.write_bytes(predictions.read_bytes())
    predictions.unlink()
    predictions.symlink_to(outside)
    assert "predictions.jsonl: a symlink" in _failed(submission)["layout"]


def test_a_symlinked_folder_and_a_stray_file_fail_the_layout(submission: Path,
                                                             tmp_path: Path) -> None:
    (submission / "runs" / "elsewhere").symlink_to(tmp_path)
    (submission / "notes.html").write_text("<p>hi</p>")
    layout = _failed(submission)["layout"]
    assert "runs/elsewhere: a symlink" in layout and "notes.html: unexpected file" in layout


def test_an_oversized_file_fails_the_layout(submission: Path) -> None:
    with (_run_dir(submission) / "predictions.jsonl").open("r+b") as fh:
        fh.truncate(65 * 1024 * 1024)  # sparse: as large as the cap sees it
    assert "over the 67,108,864-byte cap" in _failed(submission)["layout"]


PAYLOAD = '<script>alert(1)</script>'


@pytest.mark.parametrize("field", ["model", "organisation", "licence", "adapter",
                                   "quantisation", "contact", "notes", "link"])
def test_an_html_payload_in_any_free_text_field_fails(submission: Path, field: str) -> None:
    write_info(submission / "submission.yaml", **{field: f"x {PAYLOAD}"})
    write_checksums(submission)
    info = _failed(submission)["info"]
    assert f"{field}: Value error, contains markup or a script URL" in info


def test_hidden_characters_fail(submission: Path) -> None:
    write_info(submission / "submission.yaml", model="char\u202engram")
    write_checksums(submission)
    assert "bidirectional-override" in _failed(submission)["info"]


def test_submit_refuses_limited_and_foreign_runs(tmp_path: Path, installed_suite: Path) -> None:
    limited = make_run(tmp_path, installed_suite, limit=1)
    other = make_run(tmp_path, installed_suite, model="majority")
    info = write_info(tmp_path / "submission.yaml")
    result = CliRunner().invoke(main, ["leaderboard", "submit", str(limited), str(other),
                                       "--info", str(info), "--out", str(tmp_path / "subs")])
    assert result.exit_code == 1, result.output
    assert "made with --limit 1" in result.output
    assert "runs of 2 different models" in result.output
    assert not (tmp_path / "subs").exists()


def test_submit_refuses_an_unanonymized_run(tmp_path: Path, installed_suite: Path) -> None:
    from moroccan_eval.adapters import load_model
    from moroccan_eval.runs.runner import RunOptions, run
    from moroccan_eval.suites.loader import load_suite

    [result] = run(RunOptions(suite=load_suite(installed_suite, allow_unanonymized=True),
                              out_dir=tmp_path / "runs", progress=False),
                   [load_model("char-ngram")])
    cli = CliRunner().invoke(main, ["leaderboard", "submit", str(result.path), "--info",
                                    str(write_info(tmp_path / "s.yaml")), "--out",
                                    str(tmp_path / "subs")])
    assert cli.exit_code == 1 and "made with --allow-unanonymized" in cli.output


def test_submit_through_the_cli(tmp_path: Path, installed_suite: Path) -> None:
    run_dir = make_run(tmp_path, installed_suite)
    result = CliRunner().invoke(main, ["leaderboard", "submit", str(run_dir), "--info",
                                       str(write_info(tmp_path / "s.yaml")), "--out",
                                       str(tmp_path / "subs")])
    assert result.exit_code == 0, result.output
    target = tmp_path / "subs" / "test-lab-char-ngram-2026-12-03"
    assert f"submission: {target}" in result.output
    assert validate_submission(target).ok
    again = CliRunner().invoke(main, ["leaderboard", "submit", str(run_dir), "--info",
                                      str(write_info(tmp_path / "s.yaml")), "--out",
                                      str(tmp_path / "subs")])
    assert again.exit_code == 1 and "exists" in again.output
    assert sorted(os.listdir(tmp_path / "subs")) == [target.name]  # no staging left behind
    assert INFO["model"] in (target / "submission.yaml").read_text()


def test_verdicts_are_reused_only_for_the_same_content(submission: Path, tmp_path: Path,
                                                       installed_suite: Path) -> None:
    from moroccan_eval.leaderboard.validate import VerdictCache

    verdicts = VerdictCache(tmp_path / "verdicts")
    assert validate_submission(submission, verdicts=verdicts).ok
    [stored] = (tmp_path / "verdicts").iterdir()
    data = json.loads(stored.read_text())
    stored.write_text(json.dumps({**data, "problems": ["planted"]}))
    reused = validate_submission(submission, verdicts=verdicts)
    assert {c.name: c.detail for c in reused.checks}["verify"] == "planted"  # read, not rescored
    _edit_json(_run_dir(submission) / "scores.json", _latency)
    write_checksums(submission)  # new content, new key: rescored, and caught
    assert "usage/p95_ms" in {c.name: c.detail for c in
                              validate_submission(submission, verdicts=verdicts).checks
                              if not c.ok}["verify"]


def test_a_changed_installed_suite_invalidates_the_verdict(submission: Path, tmp_path: Path,
                                                           installed_suite: Path) -> None:
    from conftest import edit_items

    from moroccan_eval.leaderboard.validate import VerdictCache

    verdicts = VerdictCache(tmp_path / "verdicts")
    assert validate_submission(submission, verdicts=verdicts).ok
    edit_items(installed_suite, "data/intents.jsonl",
               lambda items: items[0].update(reference="other"))
    report = validate_submission(submission, verdicts=verdicts)
    assert not report.ok and "content hash" in {c.name: c.detail for c in report.checks}["verify"]


def test_a_folder_without_submissions_says_so(tmp_path: Path) -> None:
    """An empty folder of submissions fails with a message naming it, not a bare exit 1."""
    empty = tmp_path / "submissions"
    empty.mkdir()
    for extra in ([], ["--json"]):
        result = CliRunner().invoke(main, ["leaderboard", "validate", *extra, str(empty)])
        assert result.exit_code == 1
        assert f"no submission in {empty}" in result.stderr
        assert "leaderboard submit" in result.stderr
