"""The anonymize commands through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from moroccan_eval.cli import main


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result
    return result.exit_code, result.output


def test_scan_apply_scan(tmp_path: Path) -> None:
    source = tmp_path / "chats.jsonl"
    source.write_text(json.dumps({"id": "1", "fields": {"text": "smiti Salma Tazi, 0612345678"}},
                                 ensure_ascii=False) + "\n", encoding="utf-8")
    code, out = invoke("anonymize", "scan", str(source))
    assert code == 1 and "chats.jsonl:1 fields.text PERSON" in out
    assert "2 finding(s), 2 high-confidence" in out and "0612345678" not in out
    code, out = invoke("anonymize", "scan", str(source), "--json")
    assert code == 1 and {json.loads(line)["entity"] for line in out.splitlines()} == \
        {"PERSON", "MA_PHONE"}
    code, out = invoke("anonymize", "apply", str(source), "-o", str(tmp_path / "a.jsonl"))
    assert code == 0 and "1 record(s)" in out and "audit: " in out
    code, out = invoke("anonymize", "scan", str(tmp_path / "a.jsonl"))
    assert code == 0 and "0 finding(s)" in out


def test_scan_checks_every_path_before_printing_a_finding(tmp_path: Path) -> None:
    """A finding printed before a later file turns out to be missing would be partial
    output; every unreadable path is named at once instead, and nothing is scanned."""
    source = tmp_path / "chats.jsonl"
    source.write_text(json.dumps({"id": "1", "fields": {"text": "3ayt l 0612345678"}}) + "\n",
                      encoding="utf-8")
    (tmp_path / "folder.csv").mkdir()
    code, out = invoke("anonymize", "scan", str(source), str(tmp_path / "gone.jsonl"),
                       str(tmp_path / "notes.docx"), str(tmp_path / "folder.csv"))
    assert code == 2, out
    assert out.startswith("error: cannot scan these files (3 problem(s)):"), out
    for expected in ("gone.jsonl: no such file", "unsupported file type '.docx'",
                     "folder.csv: is a folder"):
        assert expected in out
    assert "MA_PHONE" not in out


def test_evaluate_prints_scores_per_entity_and_variety() -> None:
    code, out = invoke("anonymize", "evaluate")
    assert code == 0
    for needle in ("by entity:", "MA_PHONE", "by variety:", "zgh_Tfng",
                   "person names by script:", "hard negatives left alone"):
        assert needle in out


@pytest.mark.parametrize(("args", "message"), [
    (["anonymize", "scan", "missing.jsonl"], "missing.jsonl: no such file"),
    (["anonymize", "apply", "x.jsonl", "-o", "x.jsonl"], "write the anonymized copy to another"),
    (["anonymize", "apply", "x.jsonl", "-o", "y.csv"], "the output must have the input's type"),
    (["anonymize", "evaluate", "--eval-set", "x.jsonl"], "line 1: text: Field required"),
])
def test_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
                   message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jsonl").write_text('{"id": "1"}\n', encoding="utf-8")
    code, out = invoke(*args)
    assert code == 2 and message in out and "Traceback" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl"]


def test_an_eval_set_with_wrong_labels_is_refused_whole(tmp_path: Path) -> None:
    """Spans outside the text, unknown entities and varieties would score silently wrong:
    every such line is named at once, and nothing is scored."""
    lines = [
        {"text": "call 0612345678", "variety": "ary_Latn",
         "spans": [{"start": 5, "end": 15, "entity": "MA_PHONE"}]},
        {"text": "call 0612345678", "variety": "ary_Latn",
         "spans": [{"start": 5, "end": 99, "entity": "MA_PHONE"}]},
        {"text": "call 0612345678", "variety": "xx_Yyyy",
         "spans": [{"start": 5, "end": 15, "entity": "MA_PHONE"}]},
        {"text": "call 0612345678", "variety": "ary_Latn",
         "spans": [{"start": 5, "end": 15, "entity": "PHONE_NUMBER"}]},
        {"text": "call 0612345678", "variety": "ary_Latn",
         "spans": [{"start": 9, "end": 5, "entity": "MA_PHONE"}]},
        {"text": "call 0612345678", "variety": "ary_Latn", "spans": "none"},
    ]
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    code, out = invoke("anonymize", "evaluate", "--eval-set", str(path))
    assert code == 2 and "Traceback" not in out and "by entity:" not in out
    assert (f"{path}: not a labelled evaluation set (text, variety and spans [{{start, end, "
            "entity}] per line) (5 problem(s)):") in out
    for problem in (
            "line 2: spans[0]: 5..99 is not within the text (15 characters)",
            "line 3: unknown variety 'xx_Yyyy'",
            "line 4: spans[0]: unknown entity 'PHONE_NUMBER' (did you mean 'MA_PHONE'?)",
            "line 5: spans[0]: 9..5 is not within the text (15 characters)",
            "line 6: spans: Input should be a valid list"):
        assert problem in out, out


@pytest.mark.parametrize(("name", "content", "field"), [
    ("chats.jsonl", b'\xef\xbb\xbf{"text": "3ayto lia f 0612345678"}\r\n', "text"),
    ("chats.csv", b"\xef\xbb\xbfmessage,team\r\n3ayto lia f 0612345678,support\r\n", "message"),
])
def test_files_saved_by_windows_tools_are_scanned(tmp_path: Path, name: str, content: bytes,
                                                  field: str) -> None:
    """A UTF-8 byte-order mark and CRLF line ends (Notepad, Excel) change nothing."""
    (tmp_path / name).write_bytes(content)
    code, out = invoke("anonymize", "scan", str(tmp_path / name), "--field", field)
    assert code == 1 and "MA_PHONE" in out and "1 finding(s)" in out, out


def test_a_semicolon_csv_is_scanned_and_anonymized_as_it_is(tmp_path: Path) -> None:
    """Spreadsheets in French locales save CSV with semicolons: read as such, and the
    anonymized copy keeps them."""
    source = tmp_path / "chats.csv"
    source.write_text("message;team\n3ayto lia f 0612345678, merci;support\n", encoding="utf-8")
    code, out = invoke("anonymize", "scan", str(source), "--field", "message")
    assert code == 1 and "MA_PHONE" in out, out
    code, out = invoke("anonymize", "apply", str(source), "-o", str(tmp_path / "anon.csv"),
                       "--field", "message")
    assert code == 0, out
    assert (tmp_path / "anon.csv").read_text(encoding="utf-8").splitlines() == [
        "message;team", "3ayto lia f <PHONE_1>, merci;support"]
