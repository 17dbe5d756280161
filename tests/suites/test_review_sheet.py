"""The HTML review sheet in real headless Chromium: filled by clicking, saved, imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_chromium, open_page

from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.review import export_sheet, import_reviews, review_status

pytestmark = needs_chromium


@pytest.fixture
def html_sheet(mini_suite: Path, tmp_path: Path) -> Path:
    out = tmp_path / "sheet.html"
    assert export_sheet(load_suite(mini_suite), "ary_Latn", 4, out) == 4
    return out


def judge(page: Any, n: int, verdict: str, label: str) -> None:
    page.locator(f"#item-{n} input[value='{verdict}']").click()
    page.locator(f"#item-{n} input[name='label-{n}'][value='{label}']").click()


def save(page: Any, button: str, folder: Path) -> Path:
    with page.expect_download() as info:
        page.click(button)
    download = info.value
    target = folder / download.suggested_filename
    download.save_as(target)
    return target


def test_sheet_is_filled_by_clicking_saved_and_imported(browser: Any, html_sheet: Path,
                                                        mini_suite: Path,
                                                        tmp_path: Path) -> None:
    page, problems = open_page(browser, html_sheet)
    try:
        assert page.locator("fieldset.item").count() == 4
        assert page.locator("#item-1 .text").inner_text() == "bghit flousi trej3o 3afak"
        assert "0 of 4 items judged" in page.inner_text("#progress")
        judge(page, 1, "natural", "yes")
        judge(page, 2, "stilted", "no")
        page.fill("#fix-2", "fin wslat lcolis dyali")
        page.fill("#comment-2", "\"colis\" is fine; \"lcolis\" is how people write it")
        # item 3 only half judged: saving is refused, with the item named, nothing saved
        page.locator("#item-3 input[value='wrong_variety']").click()
        page.click("#save-csv")
        assert "Items 3 need both answers" in page.inner_text("#message")
        assert "incomplete" in (page.get_attribute("#item-3", "class") or "")
        page.locator("input[name='label-3'][value='yes']").click()
        assert "3 of 4 items judged" in page.inner_text("#progress")
        saved_csv = save(page, "#save-csv", tmp_path)
        saved_json = save(page, "#save-json", tmp_path)
        # answers survive a reload (kept in the browser while the reviewer works)
        page.reload()
        assert page.locator("#item-2 input[value='stilted']").is_checked()
        assert page.input_value("#fix-2") == "fin wslat lcolis dyali"
        assert problems == []  # no console error, no request but the file itself
    finally:
        page.close()
    assert saved_csv.name == "review-mini-ary_Latn-seed0.csv"
    assert saved_csv.read_bytes().startswith(b"\xef\xbb\xbf")
    data = json.loads(saved_json.read_text(encoding="utf-8"))
    assert data["format"] == "moroccan-eval-review/1" and len(data["verdicts"]) == 4

    suite = load_suite(mini_suite)
    target, recorded, blank = import_reviews(suite, saved_csv, "r01")
    assert (recorded, blank) == (3, 1)
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [(r["item_id"], r["verdict"], r["label_correct"]) for r in lines] == [
        ("t1-ary_Latn", "natural", "yes"), ("t2-ary_Latn", "stilted", "no"),
        ("t3-ary_Latn", "wrong_variety", "yes")]
    assert lines[1]["comment"] == "\"colis\" is fine; \"lcolis\" is how people write it"
    # the JSON file says the same, as a second reviewer's verdicts
    import_reviews(suite, saved_json, "r02")
    ary = review_status(load_suite(mini_suite))["varieties"]["ary_Latn"]
    assert (ary["reviewers"], ary["items"], ary["agreement"]) == (2, 3, 100.0)


def test_sheet_is_readable_without_javascript(browser: Any, html_sheet: Path) -> None:
    page, problems = open_page(browser, html_sheet, javascript=False)
    try:
        text = page.inner_text("body")
        assert "JavaScript is off" in text and "imta ghadi yrj3o lflous?" in text
        assert problems == []
    finally:
        page.close()
