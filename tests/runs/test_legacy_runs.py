"""Run directories written before the task-type registry and typed records (toolkit 0.1.0,
one per task type: classification, qa, translation, extraction, asr, tool_call, injection)
must keep loading, rescoring to the same numbers, reporting and verifying."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from moroccan_eval.cli import main

LEGACY = Path(__file__).parent.parent / "fixtures" / "legacy_runs"
RUNS = sorted(LEGACY.iterdir())


def test_the_fixture_covers_every_built_in_task_type() -> None:
    types = {info["spec"]["type"] for run in RUNS
             for info in json.loads((run / "manifest.json").read_text())["tasks"].values()}
    assert types == {"classification", "qa", "translation", "extraction", "asr", "tool_call",
                     "injection"}


@pytest.mark.parametrize("run_dir", RUNS, ids=lambda p: p.name.split("-", 1)[1])
def test_rescoring_an_old_run_gives_the_same_scores(run_dir: Path, tmp_path: Path) -> None:
    """Every value, interval and paired delta identical (keys may come in another order)."""
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    before = json.loads((copy / "scores.json").read_text(encoding="utf-8"))
    result = CliRunner().invoke(main, ["rescore", str(copy)])
    assert result.exit_code == 0, result.output
    assert json.loads((copy / "scores.json").read_text(encoding="utf-8")) == before


def test_old_runs_report_export_and_verify(tmp_path: Path) -> None:
    runner = CliRunner()
    report = tmp_path / "report.html"
    result = runner.invoke(main, ["report", *map(str, RUNS), "-o", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text(encoding="utf-8")
    for task in ("coordinator", "invoice_extraction", "injection", "faq", "to_msa",
                 "transcribe", "sentiment"):
        assert task in html
    out = tmp_path / "scores.csv"
    result = runner.invoke(main, ["export", *map(str, RUNS), "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["verify", "--json", *map(str, RUNS)])
    checks = {(Path(r["run"]).name, c["name"]): c["ok"]
              for r in json.loads(result.output) for c in r["checks"]}
    assert all(ok for (_, name), ok in checks.items() if name in ("scores", "signatures"))
