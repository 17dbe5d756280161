"""The scanner on chat-eval, the hand-written chat set (anonymize/eval/CHAT-EVAL-CARD.md):
recall floors per entity type, hard negatives left alone, names replaced whole."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest

from moroccan_eval.privacy import Scanner
from moroccan_eval.privacy.gate import default_scanner
from moroccan_eval.privacy.operations import evaluate
from moroccan_eval.resources import shipped

EVAL = shipped("anonymize", "eval")
# Floors under the measured values (see the card): a drop below one is a regression.
RECALL_FLOORS = {
    "MA_PHONE": 0.95, "EMAIL": 0.95, "MA_CIN": 0.9, "IBAN": 0.95, "MA_RIB": 0.95,
    "CREDIT_CARD": 0.95, "MA_PASSPORT": 0.75, "DATE_OF_BIRTH": 0.85, "SOCIAL_HANDLE": 0.85,
    "ADDRESS": 0.8, "PERSON": 0.85,
}


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return default_scanner()


@pytest.fixture(scope="module")
def result(scanner: Scanner) -> dict[str, Any]:
    return evaluate(scanner, EVAL / "chat-eval.jsonl")


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in
            (EVAL / "chat-eval.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_set_is_built_from_its_source_and_has_a_card() -> None:
    spec = importlib.util.spec_from_file_location("build_chat_eval",
                                                  EVAL / "build_chat_eval.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert builder.parse(EVAL / "chat-eval.src.txt") == _rows()
    card = (EVAL / "CHAT-EVAL-CARD.md").read_text(encoding="utf-8")
    assert "not reviewed by native speakers" in card and "Nothing was collected" in card


def test_size_and_mix(result: dict[str, Any]) -> None:
    assert 150 <= result["sentences"] <= 250
    assert {"ary_Latn", "ary_Arab", "fra_Latn", "ary_fra_mix"} <= set(result["varieties"])
    assert result["hard_negatives"]["sentences"] >= 50


@pytest.mark.parametrize(("entity", "floor"), sorted(RECALL_FLOORS.items()))
def test_recall_per_entity_type(result: dict[str, Any], entity: str, floor: float) -> None:
    scores = result["entities"][entity]
    assert scores["recall"] >= floor, scores


def test_precision_and_hard_negatives(result: dict[str, Any]) -> None:
    assert result["overall"]["precision"] >= 0.9
    assert result["entities"]["PERSON"]["precision"] >= 0.9
    negatives = result["hard_negatives"]
    assert negatives["left_alone"] >= 0.9 * negatives["sentences"]


def test_structured_identifiers_reach_the_gate(scanner: Scanner) -> None:
    """Phones, e-mails, CINs, IBANs, RIBs and cards are high-confidence without a cue."""
    structured = set(scanner.policy.structured)
    total = caught = 0
    for row in _rows():
        strong = scanner.high_confidence(scanner.scan(row["text"]))
        for span in row["spans"]:
            if span["entity"] in structured:
                total += 1
                caught += any(f.entity == span["entity"] and f.start <= span["start"]
                              and f.end >= span["end"] for f in strong)
    assert total >= 40 and caught / total >= 0.95


def test_names_are_replaced_whole(scanner: Scanner) -> None:
    """No part of a labelled name survives: every character of it is inside a finding."""
    names = whole = 0
    for row in _rows():
        findings = scanner.scan(row["text"])
        for span in row["spans"]:
            if span["entity"] == "PERSON":
                names += 1
                covered = all(any(f.start <= i < f.end for f in findings)
                              or row["text"][i].isspace()
                              for i in range(span["start"], span["end"]))
                whole += covered
    assert names >= 60 and whole / names >= 0.9


