"""The privacy gate scans every string a suite ships: every field, references at any
depth (translations, ASR transcripts, tool-call arguments), meta, and context files.

Each test plants an invented value in a small real copy of a shipped suite (its first
groups, resealed) and loads it with the real loader. All values are fictitious.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import edit_items

from moroccan_eval.cli import main
from moroccan_eval.errors import SuiteError
from moroccan_eval.resources import shipped
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.seal import write_checksums

Items = list[dict[str, Any]]


def small_copy(tmp_path: Path, name: str, keep: int = 14) -> Path:
    """The shipped suite ``name`` with only the first ``keep`` items of each data file."""
    target = tmp_path / name
    shutil.copytree(shipped("suites", name), target)
    for data in (target / "data").glob("*.jsonl"):
        lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
        data.write_text("".join(lines[:keep]), encoding="utf-8")
    write_checksums(target)
    return target


def gate_message(root: Path) -> str:
    with pytest.raises(SuiteError, match="fails the privacy gate") as error:
        load_suite(root)
    return str(error.value)


def test_the_small_copies_pass_as_shipped(tmp_path: Path) -> None:
    for name in ("translation", "agent", "speech-demo", "tourism"):
        assert load_suite(small_copy(tmp_path, name)).name == name


def test_phone_in_a_translation_reference(tmp_path: Path) -> None:
    root = small_copy(tmp_path, "translation")

    def plant(items: Items) -> None:
        items[2]["reference"] = "Appelez-moi au 06 61 23 45 67 demain."

    edit_items(root, "data/to_french.jsonl", plant)
    message = gate_message(root)
    item = json.loads((root / "data/to_french.jsonl").read_text().splitlines()[2])["id"]
    assert f"data/to_french.jsonl: item {item}: reference: MA_PHONE" in message
    assert "06 61" not in message


def test_nested_tool_call_argument(tmp_path: Path) -> None:
    root = small_copy(tmp_path, "agent")

    def plant(items: Items) -> None:
        items[0]["reference"] = {"behaviour": "act", "calls": [
            {"name": "create_ticket", "arguments": {"category": "damaged_item",
                                                    "contact": {"phone": "+212 6 61 23 45 67"}}},
        ]}

    edit_items(root, "data/coordinator.jsonl", plant)
    message = gate_message(root)
    assert "item t001-ary_Arab: reference.calls[0].arguments.contact.phone: MA_PHONE" in message


def test_asr_transcript_and_meta(tmp_path: Path) -> None:
    root = small_copy(tmp_path, "speech-demo")

    def plant(items: Items) -> None:
        items[0]["reference"] = "Mon adresse est karim.bennis@example.ma, merci."
        items[1]["meta"] = {"speaker": {"notes": ["client", "tel 0661234567"]}}

    edit_items(root, "data/transcribe.jsonl", plant)
    message = gate_message(root)
    items = [json.loads(x) for x in (root / "data/transcribe.jsonl").read_text().splitlines()]
    assert f"item {items[0]['id']}: reference: EMAIL" in message
    assert f"item {items[1]['id']}: meta.speaker.notes[1]: MA_PHONE" in message


def test_context_file(tmp_path: Path) -> None:
    root = small_copy(tmp_path, "tourism")
    kb = root / "data" / "kb.md"
    lines = kb.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "Guide privé : contactez Youssef Alaoui sur ysf.alaoui@example.ma")
    kb.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_checksums(root)
    message = gate_message(root)
    assert "data/kb.md:4: EMAIL" in message and "data/kb.md:4: PERSON" in message
    assert "Alaoui" not in message


def test_bare_cin_in_a_field(mini_suite: Path) -> None:
    def plant(items: Items) -> None:
        items[0]["fields"] = {"text": "hahiya lakarta: AB123456"}
        items[1]["fields"] = {"text": "BK654321 w safi"}

    edit_items(mini_suite, "data/intents.jsonl", plant)
    message = gate_message(mini_suite)
    assert "item t1-arb_Arab: fields.text: MA_CIN" in message
    assert "item t1-ary_Latn: fields.text: MA_CIN" in message


def test_validate_and_run_refuse(tmp_path: Path) -> None:
    root = small_copy(tmp_path, "translation")
    edit_items(root, "data/to_english.jsonl",
         lambda items: items[0].update(meta={"source": "salma.tazi@example.ma"}))
    result = CliRunner().invoke(main, ["suites", "validate", str(root)])
    assert result.exit_code == 2 and "meta.source: EMAIL" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["run", "--suite", str(root), "--model", "majority",
                                       "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "fails the privacy gate" in result.output


def test_a_phone_number_stored_as_a_json_number(mini_suite: Path) -> None:
    edit_items(mini_suite, "data/intents.jsonl",
         lambda items: items[2].update(meta={"contact": {"msisdn": 212661234567}}))
    message = gate_message(mini_suite)
    assert "item t1-fra_Latn: meta.contact.msisdn: MA_PHONE" in message
    assert "212661234567" not in message
