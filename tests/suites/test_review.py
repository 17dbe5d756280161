"""``suites review``: sheets, strict import, agreement, and the card's derived status."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import edit_items

from moroccan_eval.cli import main
from moroccan_eval.errors import ConfigError
from moroccan_eval.suites.loader import load_suite, parse_card
from moroccan_eval.suites.review import (
    COLUMNS,
    REVIEW_BEGIN,
    REVIEW_END,
    cohen_kappa,
    export_sheet,
    import_reviews,
    review_status,
    reviewer_problem,
    update_card_review,
)

# Two reviewers' verdicts on the four ary_Latn test items of the mini suite (t1..t4).
R01 = {"t1": ("natural", "yes"), "t2": ("natural", "yes"), "t3": ("stilted", "no"),
       "t4": ("wrong_variety", "yes")}
R02 = {"t1": ("natural", "yes"), "t2": ("stilted", "yes"), "t3": ("stilted", "yes"),
       "t4": ("wrong_variety", "yes")}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.exit_code, result.output


def sheet_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def fill(sheet: Path, verdicts: dict[str, tuple[str, str]], out: Path,
         **extra: dict[str, str]) -> Path:
    """The CSV sheet as a spreadsheet user returns it."""
    rows = sheet_rows(sheet)
    for row in rows:
        group = row["item_id"].split("-")[0]
        if group in verdicts:
            row["verdict"], row["label_correct"] = verdicts[group]
        row.update(extra.get(group, {}))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    out.write_text(buffer.getvalue(), encoding="utf-8")
    return out


def _set_text(suite: Path, item_id: str, text: str) -> None:
    """Give one item of the mini suite another text, and reseal the suite."""
    def change(items: list[dict[str, object]]) -> None:
        for item in items:
            if item["id"] == item_id:
                item["fields"] = {"text": text}
    edit_items(suite, "data/intents.jsonl", change)


@pytest.fixture
def sheet(mini_suite: Path, tmp_path: Path) -> Path:
    out = tmp_path / "sheet.csv"
    assert export_sheet(load_suite(mini_suite), "ary_Latn", 10, out) == 4
    return out


def test_reviewer_ids_are_pseudonyms() -> None:
    for good in ("r01", "rev-7", "a3f9c2", "nat_12"):
        assert reviewer_problem(good) is None, good
    for bad, words in [("amina@example.ma", "e-mail"), ("fatima", "may be a name"),
                       ("youssef-2", "may be a name"), ("bennani1", "may be a name"),
                       ("ab", "may be a name"), ("R01", "not a pseudonymous id"),
                       ("r 01", "not a pseudonymous id")]:
        assert words in (reviewer_problem(bad) or ""), bad


def test_csv_sheet_lists_the_sampled_items(mini_suite: Path, sheet: Path) -> None:
    rows = sheet_rows(sheet)
    assert [r["item_id"] for r in rows] == [f"t{n}-ary_Latn" for n in (1, 2, 3, 4)]
    assert rows[0]["text"] == "bghit flousi trej3o 3afak" and rows[0]["label"] == "refund"
    assert sheet.read_bytes().startswith(b"\xef\xbb\xbf")  # spreadsheets read it as UTF-8
    # the same seed draws the same sample: two reviewers judge the same items
    suite = load_suite(mini_suite)
    a, b, c = (sheet.parent / name for name in ("a.csv", "b.csv", "c.csv"))
    export_sheet(suite, "ary_Latn", 2, a, seed=5)
    export_sheet(suite, "ary_Latn", 2, b, seed=5)
    assert a.read_text(encoding="utf-8") == b.read_text(encoding="utf-8")
    draws = set()
    for seed in range(8):
        export_sheet(suite, "ary_Latn", 2, c, seed=seed)
        draws.add(tuple(r["item_id"] for r in sheet_rows(c)))
    assert len(draws) > 1


def test_csv_sheet_text_never_runs_as_a_formula(mini_suite: Path, tmp_path: Path) -> None:
    """A message that starts like a spreadsheet formula is shown as text in the sheet (a
    leading apostrophe); the filled sheet still imports (text is not read back)."""
    _set_text(mini_suite, "t1-ary_Latn", '=HYPERLINK("https://example.org","flousi")')
    suite = load_suite(mini_suite)
    out = tmp_path / "sheet.csv"
    export_sheet(suite, "ary_Latn", 10, out)
    rows = {row["item_id"]: row for row in sheet_rows(out)}
    assert rows["t1-ary_Latn"]["text"] == '\'=HYPERLINK("https://example.org","flousi")'
    assert rows["t2-ary_Latn"]["text"][0] != "'"
    import_reviews(suite, fill(out, R01, tmp_path / "r01.csv"), "r01")


def test_a_sheet_saved_with_semicolons_imports(mini_suite: Path, sheet: Path,
                                               tmp_path: Path) -> None:
    """A spreadsheet in a French locale saves the filled sheet with semicolons and CRLF."""
    filled = fill(sheet, R01, tmp_path / "r01.csv")
    rows = sheet_rows(filled)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    semicolons = tmp_path / "r01-fr.csv"
    semicolons.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))
    suite = load_suite(mini_suite)
    import_reviews(suite, semicolons, "r01")
    assert review_status(load_suite(mini_suite))["varieties"]["ary_Latn"]["items"] == 4


def test_two_reviewers_give_shares_and_kappa(mini_suite: Path, sheet: Path,
                                             tmp_path: Path) -> None:
    suite = load_suite(mini_suite)
    sealed = suite.ident
    target, recorded, blank = import_reviews(
        suite, fill(sheet, R01, tmp_path / "r01.csv"), "r01", today=date(2026, 12, 1))
    assert (recorded, blank) == (4, 0)
    assert target == mini_suite / "reviews" / "r01-2026-12-01.jsonl"
    import_reviews(suite, fill(sheet, R02, tmp_path / "r02.csv"), "r02",
                   today=date(2026, 12, 2))
    record = json.loads(target.read_text(encoding="utf-8").splitlines()[2])
    assert record["reviewer"] == "r01" and record["date"] == "2026-12-01"
    assert record["item_id"] == "t3-ary_Latn" and record["verdict"] == "stilted"
    # the review files are outside the sealed folders: the suite loads, same identity
    assert load_suite(mini_suite).ident == sealed

    status = review_status(load_suite(mini_suite))
    ary = status["varieties"]["ary_Latn"]
    # 8 verdicts: natural 3, stilted 3, wrong variety 2; labels correct 7 of 8.
    # Kappa by hand: observed 3/4 agree; chance (2*1 + 1*2 + 1*1) / 16 = 5/16;
    # (0.75 - 0.3125) / (1 - 0.3125) = 0.636...
    assert (ary["reviewers"], ary["items"], ary["verdicts"]) == (2, 4, 8)
    assert (ary["natural"], ary["stilted"], ary["wrong_variety"]) == (37.5, 37.5, 25.0)
    assert ary["label_correct"] == 87.5 and ary["agreement"] == 75.0
    assert ary["kappa"] == 0.64 and ary["double_reviewed"] == 4
    # label correct? agree on 3 of 4 but r02 always says yes: chance agreement is
    # (3*4 + 1*0) / 16 = 0.75 as well, so kappa is 0
    assert ary["label_kappa"] == 0.0
    assert ary["status"] == (
        "reviewed by 2 native reviewers, 4 items, 37.5% natural, 37.5% stilted, 25% wrong "
        "variety, 87.5% labels correct, kappa 0.64 on 4 items")
    assert status["varieties"]["fra_Latn"]["status"] == "native review pending"
    assert status["summary"] == ("native review recorded for 1 of 3 varieties (ary_Latn) and "
                                 "pending for the others (arb_Arab, fra_Latn)")


def test_kappa_edge_cases() -> None:
    assert cohen_kappa([("natural", "natural")]) is None  # one item: no estimate
    assert cohen_kappa([("natural", "natural")] * 3) is None  # 0/0: undefined
    assert cohen_kappa([("natural", "natural"), ("stilted", "stilted")]) == 1.0
    assert cohen_kappa([("natural", "stilted"), ("stilted", "natural")]) == -1.0


def test_update_card_writes_the_derived_status(mini_suite: Path, sheet: Path,
                                               tmp_path: Path) -> None:
    suite = load_suite(mini_suite)
    update_card_review(suite)
    card = parse_card(mini_suite / "CARD.md")
    assert card.validation_status == ("authored test fixture; native review pending for "
                                      "every variety")
    assert card.validation_by_variety == {c: "native review pending"
                                          for c in ("ary_Latn", "arb_Arab", "fra_Latn")}
    import_reviews(suite, fill(sheet, R01, tmp_path / "a.csv"), "r01")
    import_reviews(suite, fill(sheet, R02, tmp_path / "b.csv"), "r02")
    code, out = invoke("suites", "review", "status", str(mini_suite), "--update-card")
    assert code == 0, out
    text = (mini_suite / "CARD.md").read_text(encoding="utf-8")
    assert text.count(REVIEW_BEGIN) == 1 and text.count(REVIEW_END) == 1
    assert "| ary_Latn | 2 | 4 | 37.5% | 37.5% | 25% | 87.5% | 0.64 (4) | 0.00 | 0 |" in text
    assert "consent: {basis: authored" in text  # the rest of the front matter untouched
    # what a new run records (the manifest copies the loaded card), hence the report and
    # the leaderboard, now carries the derived status
    loaded = load_suite(mini_suite)
    assert loaded.card.validation_by_variety["ary_Latn"].startswith(
        "reviewed by 2 native reviewers, 4 items")
    assert loaded.card.validation_status == (
        "authored test fixture; native review recorded for 1 of 3 varieties (ary_Latn) and "
        "pending for the others (arb_Arab, fra_Latn)")
    # idempotent
    update_card_review(loaded)
    assert (mini_suite / "CARD.md").read_text(encoding="utf-8") == text


def test_an_item_changed_after_review_no_longer_counts(mini_suite: Path, sheet: Path,
                                                       tmp_path: Path) -> None:
    filled = fill(sheet, R01, tmp_path / "r01.csv")
    import_reviews(load_suite(mini_suite), filled, "r01")

    _set_text(mini_suite, "t1-ary_Latn", "bghit nrj3 flousi 3afak")
    suite = load_suite(mini_suite)
    ary = review_status(suite)["varieties"]["ary_Latn"]
    assert (ary["items"], ary["stale"]) == (3, 1)
    assert ary["status"].endswith("(1 earlier review verdicts on items changed since are not "
                                  "counted)")
    # and the old sheet cannot be imported any more for that item
    with pytest.raises(ConfigError, match=r"r01\.csv: row 2: item_sha256: item "
                       r"'t1-ary_Latn' changed since the sheet was exported"):
        import_reviews(suite, filled, "r02")


@pytest.mark.parametrize(("change", "message"), [
    ({"t2": {"verdict": "good"}}, r"row 3: verdict: 'good' is not one of natural, stilted"),
    ({"t2": {"label_correct": "maybe"}}, r"row 3: label_correct: 'maybe' is not yes or no"),
    ({"t3": {"verdict": "", "label_correct": ""}, "t4": {"label_correct": ""}},
     r"row 5: label_correct: '' is not yes or no"),
    ({"t1": {"item_id": "t9-ary_Latn"}}, r"row 2: item_id: suite 'mini' has no item "
                                         r"'t9-ary_Latn' in task 'intents'"),
    ({"t1": {"variety": "fra_Latn"}}, r"row 2: variety: 'fra_Latn' but item 't1-ary_Latn'"),
    ({"t1": {"suite": "support"}}, r"row 2: suite: 'support' but this is suite 'mini'"),
    ({"t4": {"comment": "appelez-moi au 0612345678"}},
     r"item t4-ary_Latn: comment: holds personal data \(MA_PHONE\)"),
    ({"t4": {"suggested_fix": "x" * 2001}}, r"row 5: suggested_fix: longer than 2000"),
])
def test_import_names_the_bad_row_and_field(mini_suite: Path, sheet: Path, tmp_path: Path,
                                            change: dict[str, dict[str, str]],
                                            message: str) -> None:
    filled = fill(sheet, R01, tmp_path / "bad.csv", **change)
    code, out = invoke("suites", "review", "import", str(mini_suite), str(filled),
                       "--reviewer", "r01")
    assert code == 2 and "bad.csv" in out and "Traceback" not in out
    assert len([line for line in out.splitlines() if line.strip()]) == 1, out
    import re

    assert re.search(message, out), out
    assert not (mini_suite / "reviews").exists()  # nothing recorded


def test_import_refuses_other_bad_files(mini_suite: Path, sheet: Path, tmp_path: Path) -> None:
    suite = load_suite(mini_suite)
    cases = {
        "names.csv": (sheet.read_text(encoding="utf-8-sig").replace("comment", "reviewer_name"),
                      r"row 1: missing column 'comment'"),
        "latin1.csv": (None, r"not UTF-8 text \(byte"),
        "blank.csv": (sheet.read_text(encoding="utf-8-sig"), r"no verdict filled in \(4 blank"),
        "bad.json": ('{"format": "moroccan-eval-review/1", "verdicts": [{"item_id": 3}]}',
                     r"verdicts\[0\]: (item_id: expected text|unknown)"),
        "other.json": ('{"verdicts": []}', r"format: expected \"moroccan-eval-review/1\""),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is None:
            path.write_bytes("suite,é".encode("latin-1"))
        else:
            path.write_text(content, encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            import_reviews(suite, path, "r01")
    with pytest.raises(ConfigError, match="looks like an e-mail address"):
        import_reviews(suite, fill(sheet, R01, tmp_path / "ok.csv"), "r.01@example.ma")
    with pytest.raises(ConfigError, match="may be a name"):
        import_reviews(suite, fill(sheet, R01, tmp_path / "ok.csv"), "khadija")
    assert not (mini_suite / "reviews").exists()


def test_json_verdicts_and_a_second_sheet_the_same_day(mini_suite: Path, sheet: Path,
                                                       tmp_path: Path) -> None:
    suite = load_suite(mini_suite)
    rows = sheet_rows(sheet)
    verdicts = [{k: v for k, v in row.items() if k not in ("text", "label")} for row in rows]
    for entry in verdicts:
        entry["verdict"], entry["label_correct"] = "natural", "yes"
    path = tmp_path / "r05.json"
    path.write_text(json.dumps({"format": "moroccan-eval-review/1", "verdicts": verdicts[:2]}),
                    encoding="utf-8")
    day = date(2026, 12, 3)
    target, _, _ = import_reviews(suite, path, "r05", today=day)
    verdicts[1]["verdict"] = "stilted"
    path.write_text(json.dumps({"format": "moroccan-eval-review/1", "verdicts": verdicts[1:]}),
                    encoding="utf-8")
    import_reviews(suite, path, "r05", today=day)
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [(r["item_id"], r["verdict"]) for r in lines] == [
        ("t1-ary_Latn", "natural"), ("t2-ary_Latn", "stilted"), ("t3-ary_Latn", "natural"),
        ("t4-ary_Latn", "natural")]


def test_export_refuses_unknown_variety_and_suffix(mini_suite: Path, tmp_path: Path) -> None:
    code, out = invoke("suites", "review", "export", str(mini_suite), "--variety", "zgh_Tfng",
                       "--sample", "3", "-o", str(tmp_path / "s.html"))
    assert code == 2 and "has no item in 'zgh_Tfng'" in out
    code, out = invoke("suites", "review", "export", str(mini_suite), "--variety", "ary_Latn",
                       "--sample", "3", "-o", str(tmp_path / "s.xlsx"))
    assert code == 2 and "name the sheet .html" in out
    assert not list(tmp_path.glob("s.*"))


@pytest.mark.parametrize(("old", "expected"), [
    ("native-speaker review pending (machine-transliterated from the IRCAM-Latin draft)",
     "DERIVED (machine-transliterated from the IRCAM-Latin draft)"),
    ("native-speaker review pending (forms only; machine-transliterated)",
     "DERIVED (forms only; machine-transliterated)"),
    ('espeak-ng "ar" voice; robotic, no Moroccan accent',
     'espeak-ng "ar" voice; robotic, no Moroccan accent; DERIVED'),
    ("", "DERIVED"),
])
def test_the_card_keeps_notes_that_are_not_about_review(old: str, expected: str) -> None:
    from moroccan_eval.suites.review import _derived_variety

    assert _derived_variety(old, "DERIVED") == expected
    derived = "reviewed by 1 native reviewer, 3 items (2 earlier review verdicts ...)"
    once = _derived_variety(old, derived)
    assert _derived_variety(once, derived) == once  # idempotent


def test_the_derived_status_reaches_runs_and_the_report(mini_suite: Path, sheet: Path,
                                                        tmp_path: Path) -> None:
    """Runs record the card they were made with (the report's Provenance and the
    leaderboard's suite page read it from there): a run after --update-card carries it."""
    from moroccan_eval.adapters import load_model
    from moroccan_eval.report.build import build_report
    from moroccan_eval.runs.rundir import load_run
    from moroccan_eval.runs.runner import RunOptions, run

    suite = load_suite(mini_suite)
    import_reviews(suite, fill(sheet, R01, tmp_path / "a.csv"), "r01")
    update_card_review(suite)
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              progress=False), [load_model("majority")])
    recorded = load_run(result.path)
    card = recorded.manifest.suite.card
    assert card.validation_by_variety["ary_Latn"].startswith(
        "reviewed by 1 native reviewer, 4 items, 50% natural")
    html = build_report([recorded], title="review status")
    assert ("authored test fixture; native review recorded for 1 of 3 varieties (ary_Latn) "
            "and pending for the others (arb_Arab, fra_Latn)") in html
