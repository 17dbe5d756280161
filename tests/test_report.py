"""The HTML report, checked as text and in real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from moroccan_eval.adapters import load_model
from moroccan_eval.report import build_report, write_report
from moroccan_eval.results import load_run
from moroccan_eval.runner import RunOptions, run
from moroccan_eval.suites import load_suite

PAYLOAD = '<script>alert(1)</script><img src=x onerror="alert(2)">'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def report_file(tmp_path: Path, mini_suite: Path) -> Path:
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(yaml.safe_dump({
        "name": f"evil{PAYLOAD}", "adapter": "python", "callable": "toy_models:keyword_router",
        "info": {"parameters_b": 1.5}}), encoding="utf-8")
    results = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                             progress=False),
                  [load_model("char-ngram"), load_model("majority"), load_model(str(hostile))])
    path = tmp_path / "report.html"
    write_report(path, build_report([load_run(r.path) for r in results], title="T <b>x</b>"))
    return path


def test_report_is_self_contained_and_escaped(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    assert "<script" not in html and "onerror=\"alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)  # nothing fetched from elsewhere
    assert "T &lt;b&gt;x&lt;/b&gt;" in html
    for needle in ("char-ngram", "majority", "arb_Arab", "Signatures", "moroccan-eval:",
                   "Cost / 1k req. (MAD)", "authored test fixture; not reviewed"):
        assert needle in html


def test_template_override(tmp_path: Path, report_file: Path) -> None:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "style.css.j2").write_text("<style>body{color:red}</style>")
    run_dirs = sorted((tmp_path / "runs").iterdir())
    html = build_report([load_run(p) for p in run_dirs], template_dir=tmp_path / "tpl")
    assert "body{color:red}" in html and "char-ngram" in html


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Chromium is not installed (CI installs it: see .ci/run)")
def test_report_renders_in_chromium_without_errors_or_network(report_file: Path) -> None:
    from playwright.sync_api import sync_playwright

    console: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        page = browser.new_page(java_script_enabled=True)
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(report_file.as_uri())
        page.wait_for_load_state("load")
        assert requests == [report_file.as_uri()]
        assert console == [] and dialogs == []
        assert "evil<script>alert(1)</script>" in page.inner_text("body")
        assert page.locator("table.scores").count() == 1
        assert page.locator("table.scores tbody tr").count() == 3
        artifacts = os.environ.get("CI_ARTIFACTS")
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(artifacts) / "report-en.png"), full_page=True)
        browser.close()
