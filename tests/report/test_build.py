"""The HTML report, checked as text and in real headless Chromium (en, fr, ar)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import needs_chromium, open_page
from toy_models import HOSTILE, oracle_runs

from moroccan_eval.adapters import load_model
from moroccan_eval.analysis.recommendation import Constraints
from moroccan_eval.errors import MoroccanEvalError
from moroccan_eval.report.build import build_report, write_report
from moroccan_eval.report.pdf import render_pdf
from moroccan_eval.runs.rundir import Run, load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite

SECTIONS = ("summary", "heatmap", "tradeoffs", "tasks", "usage", "errors", "provenance")


def _in_thread(function: Any, *args: Any) -> Any:
    """Playwright's sync API keeps an event loop running in this thread: runs, which start
    their own loop, go to another thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    return list(_in_thread(_three_models, tmp_path_factory.mktemp("report")))


def _three_models(root: Path) -> list[Run]:
    """Three models on the mini suite; one is named and answers with markup."""
    suite = root / "mini"
    shutil.copytree(Path(__file__).parent.parent / "fixtures" / "suites" / "mini", suite)
    evil = root / "evil.yaml"
    evil.write_text(yaml.safe_dump({
        "name": f"evil{HOSTILE}", "adapter": "python", "callable": "toy_models:hostile",
        "info": {"parameters_b": 1.5}}), encoding="utf-8")
    results = run(RunOptions(suite=load_suite(suite), out_dir=root / "runs", progress=False),
                  [load_model("char-ngram"), load_model("majority"), load_model(str(evil))])
    return [load_run(r.path) for r in results]


@pytest.fixture(scope="module")
def ten_models(tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    paths = _in_thread(oracle_runs, tmp_path_factory.mktemp("ten"), 10)
    return [load_run(p) for p in paths]


def test_report_is_self_contained_and_escaped(runs: list[Run]) -> None:
    html = build_report(runs, title="T <b>x</b>")
    assert html.count("<script") == 1 and "onerror=\"alert" not in html  # only our own script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)  # nothing fetched from elsewhere
    assert "T &lt;b&gt;x&lt;/b&gt;" in html
    for section in SECTIONS:
        assert f'id="{section}"' in html
    for needle in ("char-ngram", "majority", "arb_Arab", "Signatures", "moroccan-eval:",
                   "Cost / 1k req. (MAD)", "authored test fixture; not reviewed",
                   "Confusion matrix", "Recommended: ", "Items most models got wrong"):
        assert needle in html


def test_recommendation_block_follows_the_constraints(runs: list[Run]) -> None:
    html = build_report(runs, constraints=Constraints(min_score=0.99))
    assert "No model meets every constraint." in html and "score ≥ 99.0% on every task" in html
    assert html.count("✘ fails: intents: ") == 3


def test_languages_and_direction(runs: list[Run]) -> None:
    french = build_report(runs, lang="fr")
    assert '<html lang="fr" dir="ltr">' in french and "Dégradation par variété" in french
    assert "Darija (graphie latine, arabizi)" in french
    arabic = build_report(runs, lang="ar")
    assert '<html lang="ar" dir="rtl">' in arabic and "التراجع حسب الصنف اللغوي" in arabic
    assert "الدارجة (بالحرف اللاتيني، عربيزي)" in arabic


def test_unanonymized_runs_are_flagged_and_their_inputs_hidden(runs: list[Run]) -> None:
    flagged = Run(runs[0].path, runs[0].manifest.model_copy(update={"allow_unanonymized": True}),
                  runs[0].scores)
    html = build_report([flagged, *runs[1:]])
    assert "used --allow-unanonymized" in html and "Inputs hidden" in html
    some_input = next(runs[1].predictions())["fields"]["text"]
    assert some_input not in html


def test_template_override(tmp_path: Path, runs: list[Run]) -> None:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "_summary.html.j2").write_text("<section id=summary>mine</section>")
    html = build_report(runs, template_dir=tmp_path / "tpl")
    assert "<section id=summary>mine</section>" in html and 'id="heatmap"' in html


@pytest.mark.parametrize(("source", "line", "reason"), [
    ("<section>\n{{ broken </section>", 2, "unexpected '/'"),
    ("<section>\n\n{{ no_such_thing.x }}</section>", 3, "'no_such_thing' is undefined"),
])
def test_a_broken_template_override_is_one_clear_error(
        tmp_path: Path, runs: list[Run], source: str, line: int, reason: str) -> None:
    """A template that does not parse or fails while rendering names its file and line;
    the command exits 1 and writes no report."""
    from click.testing import CliRunner

    from moroccan_eval.cli import main

    template = tmp_path / "tpl" / "_summary.html.j2"
    template.parent.mkdir()
    template.write_text(source)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", *(str(r.path) for r in runs), "-o", str(out),
                                       "--template-dir", str(template.parent)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.stderr.startswith(f"error: {template}:{line}: template error: "), \
        result.stderr
    assert reason in result.stderr and "remove it from --template-dir" in result.stderr
    assert not out.exists()


def _render(browser: Any, runs: list[Run], path: Path, **options: Any) -> tuple[Any, list[str]]:
    write_report(path, build_report(runs, **options))
    return open_page(browser, path)


def _screenshot(page: Any, name: str) -> None:
    artifacts = os.environ.get("CI_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(artifacts) / name), full_page=True)


@needs_chromium
@pytest.mark.parametrize("lang", ["en", "fr", "ar"])
def test_renders_in_chromium_without_errors_or_network(
        browser: Any, runs: list[Run], tmp_path: Path, lang: str) -> None:
    page, problems = _render(browser, runs, tmp_path / f"report-{lang}.html", lang=lang)
    assert problems == []
    assert page.evaluate("document.documentElement.dir") == ("rtl" if lang == "ar" else "ltr")
    assert page.evaluate("getComputedStyle(document.body).direction") == \
        ("rtl" if lang == "ar" else "ltr")
    body = page.inner_text("body")
    assert HOSTILE in body  # shown as text, never executed
    assert page.locator("#heatmap table.scores tbody tr").count() == 3
    assert page.locator("svg.chart").count() == 2
    _screenshot(page, f"report-{lang}.png")
    page.close()


@needs_chromium
def test_sorting_works_and_the_report_reads_the_same_without_javascript(
        browser: Any, runs: list[Run], tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    page, problems = _render(browser, runs, path)
    rows = "#summary table.sortable tbody th"
    header = page.locator("#summary table.sortable thead th").nth(2)  # quality
    header.click()
    ascending = page.locator(rows).all_inner_texts()
    header.click()
    descending = page.locator(rows).all_inner_texts()
    assert ascending == list(reversed(descending)) and ascending[0] != descending[0]
    assert page.locator("input.filter").first.is_visible()
    page.locator("input.filter").first.fill("zzz-no-such-text")
    assert page.locator("table.worst tbody tr:visible").count() == 0
    assert problems == []
    page.close()

    static, problems = open_page(browser, path, javascript=False)
    assert not static.locator("input.filter").first.is_visible()
    assert static.locator("#heatmap table.scores tbody tr").count() == 3
    assert problems == []
    static.close()


@needs_chromium
def test_ten_models_by_seven_varieties_stay_legible(
        browser: Any, ten_models: list[Run], tmp_path: Path) -> None:
    page, problems = _render(browser, ten_models, tmp_path / "ten.html")
    assert problems == []
    heatmap = page.locator("#heatmap table.scores")
    assert heatmap.locator("tbody tr").count() == 10
    assert heatmap.locator("thead th").count() == 2 + 7
    # The page itself never scrolls sideways; wide tables scroll inside their own box.
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 1280
    box = heatmap.bounding_box()
    assert box is not None and box["width"] <= 1280
    sizes = page.evaluate("""[...document.querySelectorAll('#heatmap .score')]
        .map(e => parseFloat(getComputedStyle(e).fontSize))""")
    assert len(sizes) == 80 and min(sizes) >= 12
    for k in range(10):
        assert page.locator(f"#heatmap th bdi.model:text-is('oracle-{k}')").is_visible()
    assert page.locator("svg.chart").first.locator("text:has-text('oracle-9')").count() == 1
    _screenshot(page, "report-10-models.png")
    page.close()


@needs_chromium
def test_pdf_is_printed_on_a4(runs: list[Run], tmp_path: Path) -> None:
    html = tmp_path / "r.html"
    write_report(html, build_report(runs))
    render_pdf(html, tmp_path / "r.pdf")
    data = (tmp_path / "r.pdf").read_bytes()
    assert data.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert boxes and all(abs(float(w) - 595) < 2 and abs(float(h) - 842) < 2 for w, h in boxes)
    assert not list(tmp_path.glob(".*.tmp"))


def test_pdf_without_chromium_says_what_to_install(runs: list[Run], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOROCCAN_EVAL_CHROMIUM", str(tmp_path / "no-such-browser"))
    html = tmp_path / "r.html"
    write_report(html, build_report(runs))
    with pytest.raises(MoroccanEvalError, match="--pdf needs Chromium"):
        render_pdf(html, tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()


def test_pdf_with_an_output_named_pdf_is_refused_before_any_work(runs: list[Run],
                                                                  tmp_path: Path) -> None:
    """-o names the HTML report; with --pdf, -o r.pdf would write HTML into r.pdf and then
    print the PDF over it."""
    from click.testing import CliRunner

    from moroccan_eval.cli import main

    result = CliRunner().invoke(main, ["report", str(runs[0].path), "-o",
                                       str(tmp_path / "r.pdf"), "--pdf"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "-o names the HTML report; --pdf writes the PDF beside it" in result.stderr
    assert "-o r.html" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_build_time_and_size_for_ten_models(ten_models: list[Run]) -> None:
    started = time.perf_counter()
    html = build_report(ten_models)
    assert time.perf_counter() - started < 30  # a sanity bound; the target is in benchmarks/
    assert len(html.encode()) < 5_000_000
    json.dumps(len(html))


def test_mixed_task_sets_are_flagged(runs: list[Run], ten_models: list[Run]) -> None:
    assert "were not all run on the same tasks" not in build_report(runs)
    assert "were not all run on the same tasks" in build_report([*runs, ten_models[0]])

