"""The static leaderboard site, built from real submissions of the built-in baselines and
opened in real headless Chromium over a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import FIXTURES, REPO, needs_chromium

from moroccan_eval.cli import main
from moroccan_eval.errors import OutputError
from moroccan_eval.leaderboard.board import Board, board_from
from moroccan_eval.leaderboard.package import package
from moroccan_eval.leaderboard.site import (
    MARKER,
    RESULT_COLUMNS,
    build_site,
    preview_server,
    url_of,
)

from .conftest import make_run, write_info

#: Plain text that validation accepts (no markup) but that must still be escaped.
TRICKY = "Fast & cheap: 3 < 4 > 2, \"quoted\" and 'single'"
LANGS = ("en", "fr", "ar")
#: (model, changes to submission.yaml): sizes, openness and hosting all differ.
SUBMISSIONS = (
    ("char-ngram", {"organisation": "Test Lab", "parameters_b": 0.001, "weights": "open",
                    "hosting": "on-prem", "notes": TRICKY}),
    ("majority", {"organisation": "Big Co", "parameters_b": 40, "weights": "closed",
                  "hosting": "api", "link": None}),
    ("char-ngram", {"organisation": "Other Lab", "parameters_b": None, "weights": "open",
                    "hosting": "api", "quantisation": "q4_K_M"}),
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The mini suite installed, caches private to the module; yields the work folder."""
    root = tmp_path_factory.mktemp("leaderboard-site")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOROCCAN_EVAL_CACHE_DIR", str(root / "cache"))
        mp.setenv("HF_DATASETS_CACHE", str(root / "hf"))
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        shutil.copytree(FIXTURES / "suites" / "mini", root / "suites" / "mini")
        mp.setenv("MOROCCAN_EVAL_SUITES", str(root / "suites"))
        yield root


@pytest.fixture
def installed(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mini suite installed again for one test (the autouse cache fixture of every test
    unsets MOROCCAN_EVAL_SUITES)."""
    monkeypatch.setenv("MOROCCAN_EVAL_SUITES", str(env / "suites"))


@pytest.fixture(scope="module")
def submissions(env: Path) -> Path:
    """Three valid submissions and a broken one (its SHA256SUMS emptied)."""
    subs = env / "submissions"
    for i, (model, changes) in enumerate(SUBMISSIONS):
        work = env / f"work-{i}"
        run_dir = make_run(work, env / "suites" / "mini", model=model)
        package([run_dir], write_info(work / "s.yaml", model=model, **changes), subs)
    broken = subs / "zz-broken"
    shutil.copytree(sorted(subs.iterdir())[0], broken)
    (broken / "SHA256SUMS").write_text("", encoding="utf-8")
    return subs


@pytest.fixture(scope="module")
def board(submissions: Path) -> Board:
    board, _ = board_from([submissions], jobs=1)
    return board


@pytest.fixture(scope="module")
def site(board: Board, env: Path) -> Path:
    started = time.perf_counter()
    index = build_site(board, env / "site")
    elapsed = time.perf_counter() - started
    size = sum(p.stat().st_size for p in index.parent.rglob("*") if p.is_file())
    print(f"\nsite: {len(board.entries)} submissions, {size:,} bytes, built in {elapsed:.2f} s")
    assert elapsed < 20
    return index.parent


@pytest.fixture(scope="module")
def browser(site: Path, browser: Any) -> Any:
    """Chromium, started once the site is built: the runs that build it use asyncio, which
    cannot start inside Playwright's running loop (a browser test run alone met it)."""
    return browser


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    server = preview_server(site, 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url_of(server)
    server.shutdown()
    server.server_close()


def pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


# --------------------------------------------------------------------------- messages


def test_every_message_key_in_every_language_and_every_used_key_defined() -> None:
    folder = REPO / "leaderboard" / "templates"
    catalogues = {lang: yaml.safe_load((folder / "i18n" / f"{lang}.yaml").read_text("utf-8"))
                  for lang in LANGS}
    for lang, messages in catalogues.items():
        assert set(messages) == set(catalogues["en"]), lang
        assert all(isinstance(v, str) and v.strip() for v in messages.values()), lang
        for key, text in messages.items():  # the same placeholders in every language
            assert set(re.findall(r"{(\w+)}", text)) == \
                set(re.findall(r"{(\w+)}", catalogues["en"][key])), (lang, key)
    used = set()
    for template in folder.glob("*.j2"):
        # t(...) in the pages, tl(...) and translators.en(...) for one language
        used |= set(re.findall(r"""\b(?:t|tl|translators\.[a-z]+)\(["']([a-z0-9_-]+)["']\s*[,)]""",
                               template.read_text("utf-8")))
    # keys the templates and site.py compose from a prefix
    used |= {f"size_{c}" for c in ("small", "medium", "large", "undisclosed")}
    used |= {"weights_open", "weights_closed", "hosting_on-prem", "hosting_api"}
    used |= {f"{k}_{axis}" for k in ("chart_title", "chart_x") for axis in ("cost", "p95")}
    used |= {f"nav_{k}" for k in ("overview", "varieties", "tradeoffs", "downloads")}
    used |= {f"dl_{k}" for k in ("csv", "parquet", "json", "board")}
    assert len(used) > 100 and used <= set(catalogues["en"]), used - set(catalogues["en"])


# --------------------------------------------------------------------------- static checks


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, dict[str, str | None]]] = []
        self.csp: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "meta" and found.get("http-equiv") == "Content-Security-Policy":
            self.csp = found.get("content")
        for name in ("href", "src", "action", "srcset", "data"):
            if found.get(name):
                self.links.append((tag, found[name] or "", found))


def test_every_page_has_the_policy_and_every_link_resolves_inside_the_site(
        site: Path, board: Board) -> None:
    expected = {"index.html", "varieties.html", "tradeoffs.html", "downloads.html",
                "suites/mini.html", *(f"submissions/{e.ident}.html" for e in board.entries)}
    assert {p.relative_to(site).as_posix() for p in pages(site)} == expected
    assert (site / MARKER).is_file()
    external = []
    for page in pages(site):
        parser = _Links()
        parser.feed(page.read_text("utf-8"))
        assert parser.csp is not None and "default-src 'none'" in parser.csp, page
        assert "unsafe-inline" not in parser.csp and "http" not in parser.csp
        html = page.read_text("utf-8")
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html
        assert "\x00" not in html, page  # every placeholder of a shared fragment filled
        for tag, link, attrs in parser.links:
            if urlparse(link).scheme:
                external.append((page.relative_to(site).as_posix(), tag, link, attrs))
                continue
            path = unquote(link.split("#")[0])
            target = (page.parent / path).resolve() if path else page.resolve()
            assert target.is_file() and target.is_relative_to(site.resolve()), (page, link)
    # The only absolute URL is the model card's paper link, never loaded, never a referrer.
    assert {link for _, _, link, _ in external} == {"https://example.org/paper"}
    assert all(tag == "a" and attrs.get("rel") == "noopener noreferrer"
               for _, tag, _, attrs in external)
    for entry in board.entries:  # the submissions' files are copied for offline links
        for rel in entry.files:
            assert (site / "files" / entry.ident / rel).read_bytes() == \
                (entry.path / rel).read_bytes()


def test_free_text_is_escaped(site: Path, board: Board) -> None:
    [entry] = [e for e in board.entries if e.info.notes == TRICKY]
    html = (site / "submissions" / f"{entry.ident}.html").read_text("utf-8")
    assert "Fast &amp; cheap: 3 &lt; 4 &gt; 2, &#34;quoted&#34; and &#39;single&#39;" in html
    assert TRICKY not in html


def test_pages_say_what_the_board_holds(site: Path, board: Board) -> None:
    overview = (site / "index.html").read_text("utf-8")
    assert "Rows are grouped in rank bands" in overview  # how bands work
    assert "zz-broken" in overview and "checksums" in overview  # excluded, with the reason
    assert overview.count('<tr data-size=') == 3
    suite = (site / "suites" / "mini.html").read_text("utf-8")
    assert "authored test fixture; not reviewed" in suite  # validation status, prominent
    assert suite.count("not stated in the suite card") == 3  # per variety: unstated
    varieties = (site / "varieties.html").read_text("utf-8")
    assert varieties.count('<td class="r q') == 3  # the reference column: the score
    deltas = re.findall(r'<td class=[dn]\d><b>([+-]\d+\.\d)</b><i>\[', varieties)
    assert len(deltas) == 6  # the other two varieties: the paired deltas, with intervals
    assert "n=" in varieties  # items per variety, in the column heads
    # named once, in each language (the page holds the three)
    assert varieties.count('<small class="tag"><span lang=en>reference</span><span lang=fr>'
                           'référence</span><span lang=ar>المرجع</span></small></th>') == 1
    assert re.search(r"<td id=ar-r1-1-[^ ]+ class=num>0.001<", varieties)  # size: a number
    trade = (site / "tradeoffs.html").read_text("utf-8")
    assert trade.count('<img class="chart"') == 2 and "Pareto front" in trade
    assert trade.count("≥ ") == 5  # 50 … 90 %
    charts = sorted((site / "charts").glob("*.svg"))  # numbers only: shared by languages
    assert [c.name for c in charts] == ["mini-cost.svg", "mini-p95.svg"]
    assert all(c.read_text("utf-8").startswith("<svg ") for c in charts)
    assert "المحور الأفقي" in trade  # axes, in Arabic too
    entry = board.rows("mini")[0][0]
    page = (site / "submissions" / f"{entry.ident}.html").read_text("utf-8")
    assert entry.verify_command() in page
    assert entry.suites["mini"].tasks["intents"].signature in page


def test_a_submission_page_links_each_task_to_its_row_of_the_per_variety_view(
        site: Path, board: Board) -> None:
    """The per-variety cells are in the heatmaps only: a submission's page shows each task's
    score, band and worst variety, and links to the submission's row in each language
    (en: the row's id; fr-, ar-: its first cells'), which exists."""
    varieties = (site / "varieties.html").read_text("utf-8")
    rows = re.findall(r'<tr id=([^ >]+)><th id=fr-\1>.*<td id=ar-\1 ', varieties)
    assert len(rows) == len(board.entries)  # one task: a row per submission
    for entry in board.entries:
        page = (site / "submissions" / f"{entry.ident}.html").read_text("utf-8")
        links = re.findall(r'<a href="\.\./varieties\.html#([^"]+)" lang=(\w+)>', page)
        anchor = f"r1-1-{entry.ident}"
        assert links == [(anchor, "en"), (f"fr-{anchor}", "fr"), (f"ar-{anchor}", "ar")]
        assert anchor in rows
        row = varieties.split(f"<tr id={anchor}>")[1].split("\n")[0]
        for lang in ("", "#fr", "#ar"):  # the row is this submission's, in each language
            assert f"<a href=submissions/{entry.ident}.html{lang} " in row
        assert 'class="per-variety"' not in page and "<td class=r " not in page
        task = entry.suites["mini"].tasks["intents"]
        drops = {code: -c.delta.value if task.higher_is_better else c.delta.value
                 for code, c in task.varieties.items()
                 if code != task.reference and c.delta.value is not None}
        shown = re.search(r"<td class=[dn]\d><b>([+-]\d+\.\d)</b><i>\[[^]]+\]</i>"
                          r"<code>([a-z_A-Z]+)</code>", page)
        assert shown is not None and drops[shown[2]] == max(drops.values())
        assert float(shown[1]) == round(100 * task.varieties[shown[2]].delta.value, 1)


@needs_chromium
def test_the_link_to_a_heatmap_row_scrolls_it_into_view(
        browser: Any, base_url: str, board: Board) -> None:
    """With JavaScript off, the Arabic page's link leads to the row in the Arabic heatmap."""
    tab = Tab(browser, base_url, javascript=False)
    entry = board.entries[-1]
    page = tab.open(f"submissions/{entry.ident}.html#ar")
    page.click("#tasks tbody a[href*='varieties.html']:visible")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/varieties.html#ar-r1-1-{entry.ident}")
    row = page.locator(f"tr#r1-1-{entry.ident}")
    assert row.is_visible() and row.evaluate("r => r.matches(':has(> :target)')")
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    assert page.locator("h1").inner_text() == "التراجع حسب الصنف اللغوي"
    assert tab.problems == []
    tab.close()


def test_downloads_parse(site: Path, board: Board) -> None:
    import pandas as pd

    csv = pd.read_csv(site / "data" / "results.csv.gz")
    parquet = pd.read_parquet(site / "data" / "results.parquet")
    table = json.loads(gzip.decompress((site / "data" / "results.json.gz").read_bytes()))
    assert list(table["data"]) == table["columns"]  # by column, in order
    rows = [dict(zip(table["columns"], row, strict=True))
            for row in zip(*table["data"].values(), strict=True)]
    assert pd.DataFrame(table["data"]).equals(pd.DataFrame(rows))
    # 3 submissions × 1 task × (3 varieties + "all") × 2 metrics (accuracy, macro_f1)
    assert len(csv) == len(parquet) == len(rows) == 3 * 1 * 4 * 2
    assert set(csv["submission"]) == {e.ident for e in board.entries}
    assert list(csv.columns) == list(parquet.columns) == list(RESULT_COLUMNS) == list(rows[0])
    assert rows == json.loads(parquet.to_json(orient="records"))  # the same rows
    headline = parquet[parquet["headline_metric"] & (parquet["variety"] == "arb_Arab")]
    assert len(headline) == 3
    whole = json.loads(gzip.decompress((site / "data" / "board.json.gz").read_bytes()))
    assert len(whole["entries"]) == 3 and set(whole["excluded"]) == {"zz-broken"}
    assert whole["suites"]["mini"]["tasks"]["intents"]["metric"] == "accuracy"


# --------------------------------------------------------------------------- in Chromium


class Tab:
    """One browser page kept across navigations (a new page per URL costs ~0.3 s),
    collecting console messages, page errors, failed or 4xx/5xx loads and any request
    outside ``base``."""

    def __init__(self, browser: Any, base: str, *, javascript: bool = True):
        self.base = base
        self.problems: list[str] = []
        self.page = browser.new_page(java_script_enabled=javascript,
                                     viewport={"width": 1280, "height": 900})
        add = self.problems.append
        self.page.on("console", lambda m: add(f"console {m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: add(f"page error: {e}"))
        # ERR_ABORTED: a late load (the favicon) cancelled by the next navigation
        self.page.on("requestfailed", lambda r: r.failure == "net::ERR_ABORTED"
                     or add(f"failed {r.url}: {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and add(f"{r.status} {r.url}"))
        self.page.on("request", lambda r: r.url.startswith(base) or add(f"request {r.url}"))

    def open(self, path: str) -> Any:
        self.problems.clear()
        self.page.goto(urljoin(self.base, path))
        self.page.wait_for_load_state("load")
        return self.page

    def close(self) -> None:
        self.page.close()


#: A message of every page's header, per language: what shows when the language does.
SITE_TITLES = {"en": "Moroccan languages leaderboard", "fr": "Classement des langues du Maroc",
               "ar": "لوحة ترتيب لغات المغرب"}


@needs_chromium
@pytest.mark.parametrize("lang", LANGS)
def test_every_page_renders_without_errors_or_outside_requests(
        browser: Any, site: Path, base_url: str, lang: str) -> None:
    """Every page, in each language its address picks: only that language shows, Arabic
    right to left, and the script sets the document's lang, dir and title to match."""
    tab = Tab(browser, base_url)
    for path in sorted(p for p in site.rglob("*.html") if "files" not in p.parts):
        rel = path.relative_to(site).as_posix()
        page = tab.open(f"{rel}#{lang}")
        assert tab.problems == [], rel
        direction = "rtl" if lang == "ar" else "ltr"
        assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]"
                             ) == [lang, direction], rel
        assert page.evaluate("getComputedStyle(document.body).direction") == direction
        # the stylesheet and the script (its own files) did load
        assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith('"Noto')
        assert page.evaluate("document.documentElement.classList.contains('js')")
        assert page.locator("header .site:visible").all_inner_texts() == [SITE_TITLES[lang]]
        assert page.title() == f"{page.inner_text('main h1')} · {SITE_TITLES[lang]}", rel
        shown = page.locator("main [lang]:visible").evaluate_all(
            "els => [...new Set(els.map(e => e.lang))]")
        assert shown == [lang], rel
        assert page.locator("nav.langs a").count() == 3
        assert page.locator(f"nav.langs a[aria-current=page][hreflang={lang}]").count() == 1
    tab.close()


@needs_chromium
def test_escaped_text_reads_as_text_in_the_browser(
        browser: Any, base_url: str, board: Board) -> None:
    [entry] = [e for e in board.entries if e.info.notes == TRICKY]
    tab = Tab(browser, base_url)
    page = tab.open(f"submissions/{entry.ident}.html")
    assert page.inner_text("dd.notes") == TRICKY and tab.problems == []
    tab.close()


def _models(page: Any) -> list[str]:
    return [t.split("\n")[0].strip()
            for t in page.locator("#overview tbody tr:visible th").all_inner_texts()]


def _attr(page: Any, name: str) -> list[str]:
    return list(page.locator("#overview tbody tr:visible").evaluate_all(
        f"rows => rows.map(r => r.dataset.{name})"))


@needs_chromium
def test_sorting_and_filtering_work_when_clicked(browser: Any, base_url: str) -> None:
    tab = Tab(browser, base_url)
    page = tab.open("index.html")
    size = page.locator("#overview thead th").nth(2)
    size.click()  # smallest first; undisclosed last whichever the direction
    assert _attr(page, "size") == ["small", "large", "undisclosed"]
    # two submissions of one model are told apart by their organisation
    assert _models(page) == ["char-ngram · Test Lab", "majority", "char-ngram · Other Lab"]
    assert size.get_attribute("aria-sort") == "ascending"
    size.click()
    assert _attr(page, "size") == ["large", "small", "undisclosed"]
    assert size.get_attribute("aria-sort") == "descending"
    organisations = "#overview tbody td:nth-of-type(1)"
    page.locator("#overview thead th").nth(1).click()  # organisation, A to Z
    assert page.locator(organisations).all_inner_texts() == ["Big Co", "Other Lab", "Test Lab"]
    page.locator("#overview thead th").nth(1).press("Enter")  # the keyboard too: Z to A
    assert page.locator(organisations).all_inner_texts() == ["Test Lab", "Other Lab", "Big Co"]

    page.select_option("select[data-attr=weights]", "closed")
    assert _models(page) == ["majority"]
    assert page.inner_text("output.shown") == "1 of 3 shown"
    page.select_option("select[data-attr=weights]", "open")
    page.select_option("select[data-attr=hosting]", "api")
    assert _attr(page, "size") == ["undisclosed"]
    page.select_option("select[data-attr=size]", "small")
    assert _attr(page, "size") == [] and page.inner_text("output.shown") == "0 of 3 shown"
    page.click("form.filters button[type=reset]")
    page.wait_for_selector("#overview tbody tr[hidden]", state="detached")  # no eval: CSP
    assert len(_models(page)) == 3 and page.inner_text("output.shown") == "3 of 3 shown"

    # The filters of each language are kept in step: a choice in French stays in English.
    page.click("nav.langs a[hreflang=fr]")
    page.select_option("form.filters[lang=fr] select[data-attr=weights]", "closed")
    assert _models(page) == ["majority"]
    assert page.inner_text("form.filters[lang=fr] output.shown") == "1 sur 3 affichée(s)"
    page.click("nav.langs a[hreflang=en]")
    assert page.input_value("form.filters[lang=en] select[data-attr=weights]") == "closed"
    assert page.inner_text("form.filters[lang=en] output.shown") == "1 of 3 shown"

    page = tab.open("varieties.html#ar")  # a heatmap sorts by a variety's delta
    table = page.locator("table.heatmap").first
    table.locator("thead th").nth(5).click()
    values = table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.cells[5].querySelector('b').textContent)")
    assert len(values) == 3
    assert values == sorted(values, key=lambda v: -float(v))
    assert table.locator("thead th").nth(5).get_attribute("aria-sort") == "descending"
    assert tab.problems == []
    tab.close()


@needs_chromium
def test_pages_read_with_javascript_off(browser: Any, base_url: str) -> None:
    tab = Tab(browser, base_url, javascript=False)
    for lang in LANGS:
        page = tab.open(f"index.html#{lang}")
        assert page.locator("#overview tbody tr:visible").count() == 3
        assert page.locator("#overview tbody tr:visible th a:visible").count() == 3
        assert page.locator("form.filters:visible").count() == 0  # filters need the script
        assert page.locator("#excluded tbody tr").count() == 1
        assert page.locator("header .site:visible").all_inner_texts() == [SITE_TITLES[lang]]
        assert page.evaluate("getComputedStyle(document.body).direction") == (
            "rtl" if lang == "ar" else "ltr")
        # a link keeps the language: to a submission's page, then on to the heatmaps
        page.locator("#overview tbody th a:visible").first.click()
        page.wait_for_load_state("load")
        assert page.url.endswith(".html" if lang == "en" else f".html#{lang}")
        assert page.locator("header .site:visible").all_inner_texts() == [SITE_TITLES[lang]]
        page = tab.open(f"varieties.html#{lang}")
        assert page.locator("table.heatmap tbody tr:visible").count() == 3
        page = tab.open(f"tradeoffs.html#{lang}")
        assert page.locator("img.chart").count() == 2
        assert page.locator("img.chart").evaluate_all("imgs => imgs.map(i => i.naturalWidth)") \
            == [560, 560]  # the shared SVG files loaded
        assert tab.problems == []
    tab.close()


@needs_chromium
def test_the_site_also_works_opened_from_disk(browser: Any, site: Path) -> None:
    tab = Tab(browser, site.as_uri() + "/")
    page = tab.open("index.html#ar")  # file://: the policy's 'self' covers the site's files
    assert page.evaluate("document.documentElement.classList.contains('js')")
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    page.locator("#overview thead th").nth(2).click()
    assert page.locator("#overview thead th").nth(2).get_attribute("aria-sort") == "ascending"
    assert tab.problems == []
    tab.close()


def test_an_empty_board_builds_a_site_that_says_so(env: Path) -> None:
    index = build_site(Board([], {}, excluded={"x": "layout: no run under runs/"}),
                       env / "empty-site")
    assert "No valid submission yet." in index.read_text()
    assert "layout: no run under runs/" in index.read_text()
    board_json = gzip.decompress((index.parent / "data" / "board.json.gz").read_bytes())
    assert json.loads(board_json)["entries"] == []
    import pandas as pd

    empty = pd.read_csv(index.parent / "data" / "results.csv.gz")
    assert len(empty) == 0 and "submission" in empty.columns


# --------------------------------------------------------------------------- the commands


def test_build_command_lists_excluded_and_replaces_only_its_own_site(
        submissions: Path, env: Path, installed: None) -> None:
    out = env / "cli-site"
    runner = CliRunner()
    result = runner.invoke(main, ["leaderboard", "build", "--submissions", str(submissions),
                                  "-o", str(out), "--jobs", "1", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "warning: zz-broken: excluded: checksums" in result.stderr
    assert "3 submission(s), 1 excluded" in result.stdout
    assert (out / "index.html").is_file() and (out / MARKER).is_file()
    (out / "stale.txt").write_text("from the previous build")

    # A failed build leaves the previous site as it was, and no temporary folder behind.
    bad = env / "bad-templates"
    (bad / "i18n").mkdir(parents=True)
    (bad / "overview.html.j2").write_text("{% extends '_base.html.j2' %}{% block main %}"
                                          "{{ no_such_thing.x }}{% endblock %}")
    result = runner.invoke(main, ["leaderboard", "build", "--submissions", str(submissions),
                                  "-o", str(out), "--jobs", "1", "--template-dir", str(bad)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert (f"\nerror: {bad / 'overview.html.j2'}:1: template error: 'no_such_thing' is "
            "undefined") in result.stderr, result.stderr
    assert (out / "stale.txt").is_file()
    assert sorted(p.name for p in env.iterdir() if p.name.startswith(".cli-site")) == []

    # A template override (here: one message and the stylesheet) replaces the shipped one.
    good = env / "good-templates"
    (good / "i18n").mkdir(parents=True)
    (good / "i18n" / "en.yaml").write_text('site_title: "Acme board"\n')
    (good / "assets").mkdir()
    (good / "assets" / "style.css").write_text("body { color: #123456; }\n")
    result = runner.invoke(main, ["leaderboard", "build", "--submissions", str(submissions),
                                  "-o", str(out), "--jobs", "1", "--template-dir", str(good)])
    assert result.exit_code == 0, result.output
    assert not (out / "stale.txt").exists()  # the new site replaced the old one whole
    overview = (out / "index.html").read_text("utf-8")  # in English only
    assert "index.html#en>Acme board</a>" in overview
    assert "index.html#fr>Classement des langues du Maroc</a>" in overview
    assert "#123456" in (out / "assets" / "style.css").read_text()


def test_an_output_that_is_a_file_or_a_foreign_folder_is_refused(
        submissions: Path, env: Path, board: Board) -> None:
    target = env / "a-file.html"
    target.write_text("keep me")
    result = CliRunner().invoke(main, ["leaderboard", "build", "--submissions",
                                       str(submissions), "-o", str(target)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {target}: exists and is not a folder; -o names the folder that receives "
        "the site"]
    assert target.read_text() == "keep me"
    foreign = env / "home-like"
    (foreign / "documents").mkdir(parents=True)
    with pytest.raises(OutputError, match="never replaced"):
        build_site(board, foreign)
    assert (foreign / "documents").is_dir()
    (env / "a-link").symlink_to(foreign)
    with pytest.raises(OutputError, match="a symbolic link"):
        build_site(board, env / "a-link")


def test_serve_previews_on_localhost_and_stops_on_ctrl_c(site: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "moroccan_eval", "leaderboard", "serve", str(site),
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        with urllib.request.urlopen(f"{match[1]}index.html", timeout=10) as response:
            assert response.status == 200 and b"char-ngram" in response.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_files_can_be_linked_to_the_repository_instead_of_copied(board: Board,
                                                                 env: Path) -> None:
    out = env / "linked-site"
    build_site(board, out, files_url="https://example.org/board/tree/main/submissions/")
    assert not (out / "files").exists()
    entry = board.entries[0]
    page = (out / "submissions" / f"{entry.ident}.html").read_text(encoding="utf-8")
    assert (f'href="https://example.org/board/tree/main/submissions/{entry.ident}/'
            'submission.yaml"') in page
    with pytest.raises(OutputError, match="not an http"):
        build_site(board, env / "other", files_url="javascript:alert(1)")


def test_pages_rendered_in_forked_processes_are_the_same(board: Board, site: Path,
                                                         env: Path) -> None:
    """A big board renders its pages in several processes: same pages, byte for byte
    (but the build time each page shows)."""
    out = env / "parallel-site"
    build_site(board, out, jobs=2)
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)")
    ours = {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}
    theirs = {p.relative_to(site).as_posix(): p for p in site.rglob("*") if p.is_file()}
    assert ours.keys() == theirs.keys()
    # the downloads page gives compressed sizes: the build time inside the data changes
    # them by a byte now and then
    size = re.compile(r'<td><bdi dir="ltr">[\d,]+</bdi></td></tr>')

    def comparable(path: Path) -> str:
        return size.sub("S", stamp.sub("T", path.read_text("utf-8")))

    for rel in (rel for rel in ours if rel.endswith((".html", ".svg", ".css", ".js"))):
        assert comparable(ours[rel]) == comparable(theirs[rel]), rel
    # the data files are written by workers too (Parquet by the parent, beside them)
    for rel in (rel for rel in ours if rel.endswith(".gz")):
        texts = [stamp.sub("T", gzip.decompress(path.read_bytes()).decode("utf-8"))
                 for path in (ours[rel], theirs[rel])]
        assert texts[0] == texts[1] and texts[0].count("\n") >= 1, rel
    pd.testing.assert_frame_equal(pd.read_parquet(ours["data/results.parquet"]),
                                  pd.read_parquet(theirs["data/results.parquet"]))


def test_a_suite_of_several_tasks_spans_its_cells_and_links_each_task(
        board: Board, env: Path) -> None:
    """A suite's own cells span its tasks' rows; each task links to its own heatmap row."""
    import copy
    from dataclasses import replace

    two = copy.deepcopy(board)
    column = two.suites["mini"]
    column.tasks["intents-b"] = column.tasks["intents"]
    for entry in two.entries:
        tasks = entry.suites["mini"].tasks
        tasks["intents-b"] = replace(tasks["intents"], task="intents-b")
    out = env / "two-tasks-site"
    build_site(two, out)
    entry = two.entries[0]
    page = (out / "submissions" / f"{entry.ident}.html").read_text("utf-8")
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    rows = [r for r in body.split("<tr>") if r.strip()]
    assert len(rows) == 2 and "<th rowspan=2>" in rows[0] and "rowspan" not in rows[1]
    assert rows[1].startswith("<th><a href=\"../varieties.html#r1-2-")
    varieties = (out / "varieties.html").read_text("utf-8")
    anchors = re.findall(r'varieties\.html#([^"]+)"', page)
    assert len(anchors) == 2 * 3  # two tasks, three languages
    for anchor in anchors:
        assert re.search(f" id={re.escape(anchor)}[ >]", varieties), anchor
    signatures = page.split('<ul class="runs">')[1].split("</ul>")[0]
    assert signatures.count("<li><code>") == 2  # a signature per task
