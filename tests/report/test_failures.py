"""The report's failure section: unparsed answers and errors per variety, and a model no
better than the trivial baseline flagged. (Its own module: the Chromium tests of
test_build.py keep an event loop running, and these tests start runs.)"""

from __future__ import annotations

from pathlib import Path

from conftest import write_model

from moroccan_eval.adapters import load_model
from moroccan_eval.mockserver import MockServer
from moroccan_eval.report.build import build_report
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite


def test_a_model_no_better_than_the_trivial_baseline_is_flagged(tmp_path: Path,
                                                                mini_suite: Path) -> None:
    with MockServer() as server:
        server.behaviour.reply = lambda _: "refund or other?"  # two labels: unparsed
        spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url)))
        [hedging] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                                   progress=False), [spec])
    [good] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                            progress=False), [load_model("char-ngram")])
    html = build_report([load_run(hedging.path), load_run(good.path)])
    assert html.count("no better than the trivial baseline") == 1
    assert "mock-llm: accuracy" in html
    assert "4 unparsed, 0 errors" in html  # per variety, beside the errors
