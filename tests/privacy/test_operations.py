"""Anonymizing files: operators, round trip, audit, and bad input that writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moroccan_eval.errors import ConfigError
from moroccan_eval.privacy import Scanner
from moroccan_eval.privacy.anonymizer import Anonymizer
from moroccan_eval.privacy.gate import default_scanner
from moroccan_eval.privacy.operations import apply_file, scan_paths

CHAT = ("salam smiti Fatima Alaoui, ra9mi 06 12 34 56 78 wla 0612345678; "
        "Fatima Alaoui hia li ghadi tjib, w khtha Salma Tazi")


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return default_scanner()


def test_placeholders_are_consistent_within_a_record(scanner: Scanner) -> None:
    texts, found = Anonymizer(scanner).record({"t": CHAT})
    assert found == {"PERSON": 3, "MA_PHONE": 2}
    assert texts["t"] == ("salam smiti <PERSON_1>, ra9mi <PHONE_1> wla <PHONE_1>; "
                    "<PERSON_1> hia li ghadi tjib, w khtha <PERSON_2>")


def test_numbering_restarts_per_record_and_spans_fields(scanner: Scanner) -> None:
    anonymizer = Anonymizer(scanner)
    first, found = anonymizer.record({"a": "smiti Salma Tazi", "b": "Salma Tazi w Omar Idrissi"})
    assert first == {"a": "smiti <PERSON_1>", "b": "<PERSON_1> w <PERSON_2>"}
    assert found["PERSON"] == 3
    second, _ = anonymizer.record({"a": "ana Omar Idrissi"})
    assert second == {"a": "ana <PERSON_1>"}


def test_pseudonyms_are_keyed_and_stable_across_records(
        scanner: Scanner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOROCCAN_EVAL_PSEUDONYM_KEY", "k" * 32)
    one, _ = Anonymizer(scanner, "pseudonym").record({"t": "smiti Salma Tazi"})
    two, _ = Anonymizer(scanner, "pseudonym").record({"t": "Salma  Tazi 9alt lia"})
    label = one["t"].removeprefix("smiti ")
    assert label.startswith("<PERSON_") and two["t"] == f"{label} 9alt lia"
    monkeypatch.setenv("MOROCCAN_EVAL_PSEUDONYM_KEY", "another-key-of-32-characters!!!")
    three, _ = Anonymizer(scanner, "pseudonym").record({"t": "smiti Salma Tazi"})
    assert three != one
    redacted, _ = Anonymizer(scanner, "redact").record({"t": CHAT})
    assert "<PERSON>" in redacted["t"] and "<PHONE>" in redacted["t"]


def test_missing_pseudonym_key(scanner: Scanner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOROCCAN_EVAL_PSEUDONYM_KEY", raising=False)
    with pytest.raises(ConfigError, match="MOROCCAN_EVAL_PSEUDONYM_KEY"):
        Anonymizer(scanner, "pseudonym")


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_round_trip_and_audit(tmp_path: Path, scanner: Scanner) -> None:
    source = _write(tmp_path / "chats.jsonl", [
        {"id": "c1", "fields": {"text": CHAT}, "reference": "delivery_status"},
        {"id": "c2", "fields": {"text": "رقمي ٠٦١٢٣٤٥٦٧٨ وسميتي خديجة بناني"}, "reference": "x"},
        {"id": "c3", "fields": {"text": "lcommande 48213 b 299 dh"}, "reference": "y"},
    ])
    entry = apply_file(scanner, source, tmp_path / "out" / "chats.jsonl", fields=["fields.text"])
    out = (tmp_path / "out" / "chats.jsonl").read_text(encoding="utf-8")
    assert entry["records"] == 3 and entry["entities"] == {"MA_PHONE": 3, "PERSON": 4}
    assert "lcommande 48213 b 299 dh" in out and "delivery_status" in out
    found = list(scan_paths(scanner, [tmp_path / "out" / "chats.jsonl"], ["fields.text"]))
    assert scanner.high_confidence(f.finding for f in found) == []
    [audit] = (tmp_path / "out" / "anonymization-audit.jsonl").read_text().splitlines()
    record = json.loads(audit)
    assert record["policy_version"] == scanner.policy.version
    assert record["input_sha256"] != record["output_sha256"]
    for secret in ("Fatima", "0612345678", "خديجة", "٠٦١٢٣٤٥٦٧٨"):
        assert secret not in audit


def test_csv_and_text(tmp_path: Path, scanner: Scanner) -> None:
    (tmp_path / "t.csv").write_text('id,msg,note\n1,"appelez le 0612345678",ok\n',
                                    encoding="utf-8")
    apply_file(scanner, tmp_path / "t.csv", tmp_path / "o.csv", fields=["msg"])
    assert (tmp_path / "o.csv").read_text(encoding="utf-8").splitlines() == [
        "id,msg,note", "1,appelez le <PHONE_1>,ok"]
    (tmp_path / "t.txt").write_text("smiti Salma Tazi\nwalo\n", encoding="utf-8")
    apply_file(scanner, tmp_path / "t.txt", tmp_path / "o.txt")
    assert (tmp_path / "o.txt").read_text(encoding="utf-8") == "smiti <PERSON_1>\nwalo\n"


@pytest.mark.parametrize(("name", "content", "fields", "message"), [
    ("bad.jsonl", b'{"id": 1}\n{not json\n', (), "bad.jsonl:2: invalid JSON"),
    ("latin1.txt", "caf\xe9 0612345678\n".encode("latin-1"), (), "latin1.txt:1: not UTF-8"),
    ("t.csv", b"id,msg\n1,x\n", ("text",), "no column 'text' (columns: id, msg)"),
    ("cp1256.csv", "id,msg\n1,\u0633\u0644\u0627\u0645\n".encode("cp1256"), (), "not UTF-8"),
    ("t.docx", b"x", (), "unsupported file type '.docx'"),
])
def test_bad_input_writes_nothing(tmp_path: Path, scanner: Scanner, name: str,
                                  content: bytes, fields: tuple[str, ...], message: str) -> None:
    source = tmp_path / "in" / name
    source.parent.mkdir()
    source.write_bytes(content)
    target = tmp_path / "out" / name
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_file(scanner, source, target, fields=fields)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_missing_input(tmp_path: Path, scanner: Scanner) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        apply_file(scanner, tmp_path / "nope.jsonl", tmp_path / "o.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_the_gates_field_paths_work_with_apply(tmp_path: Path, scanner: Scanner) -> None:
    """The gate names nested strings by path (reference.calls[0].arguments.phone); the
    fix it suggests, ``anonymize apply --field <path>``, reaches exactly that string."""
    source = _write(tmp_path / "items.jsonl", [{
        "id": "t1", "fields": {"text": "ok"},
        "reference": {"calls": [{"name": "create_ticket",
                                 "arguments": {"phone": "tel 0661234567", "note": "0661234567"}}]},
    }])
    apply_file(scanner, source, tmp_path / "out.jsonl",
               fields=["reference.calls[0].arguments.phone"])
    [row] = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert row["reference"]["calls"][0]["arguments"] == {"phone": "tel <PHONE_1>",
                                                         "note": "0661234567"}
