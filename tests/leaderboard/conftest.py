"""A real submission: the mini suite installed through MOROCCAN_EVAL_SUITES, a real run of
a built-in baseline, packaged by `leaderboard submit`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from moroccan_eval.adapters import load_model
from moroccan_eval.leaderboard.package import package
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite

INFO = {
    "model": "char-ngram", "organisation": "Test Lab", "parameters_b": 0.001,
    "licence": "Apache-2.0", "weights": "open", "adapter": "baseline", "hosting": "on-prem",
    "contact": "lab@example.org", "date": "2026-12-03", "link": "https://example.org/paper",
    "suites": ["mini"], "notes": "a character n-gram baseline",
}


def write_info(path: Path, **changes: object) -> Path:
    path.write_text(yaml.safe_dump({**INFO, **changes}, allow_unicode=True), encoding="utf-8")
    return path


def make_run(tmp_path: Path, suite: Path, model: str = "char-ngram", **options: object) -> Path:
    [result] = run(RunOptions(suite=load_suite(suite), out_dir=tmp_path / "runs", progress=False,
                              **options), [load_model(model)])  # type: ignore[arg-type]
    return result.path


@pytest.fixture
def installed_suite(mini_suite: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOROCCAN_EVAL_SUITES", str(mini_suite.parent))
    return mini_suite


@pytest.fixture
def submission(tmp_path: Path, installed_suite: Path) -> Path:
    run_dir = make_run(tmp_path, installed_suite)
    return package([run_dir], write_info(tmp_path / "submission.yaml"),
                   tmp_path / "submissions")
