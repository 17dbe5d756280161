"""The scanner with real Presidio, on Moroccan formats in every script."""

from __future__ import annotations

import pytest

from moroccan_eval.privacy import Scanner, load_policy
from moroccan_eval.privacy.gate import default_scanner
from moroccan_eval.privacy.operations import evaluate
from moroccan_eval.privacy.scanner import iban_valid, luhn_valid


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return default_scanner()


def found(scanner: Scanner, text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start:f.end]) for f in scanner.scan(text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("ra9mi 06 12 34 56 78", [("MA_PHONE", "06 12 34 56 78")]),
    ("appelez le +212 6 61-23-45-67", [("MA_PHONE", "+212 6 61-23-45-67")]),
    ("نمرتي ٠٦١٢٣٤٥٦٧٨", [("MA_PHONE", "٠٦١٢٣٤٥٦٧٨")]),
    ("00212.5.22.12.34.56 f lkhedma", [("MA_PHONE", "00212.5.22.12.34.56")]),
    ("mail: ahmed.tazi@menara.ma", [("EMAIL", "ahmed.tazi@menara.ma")]),
    ("رقم البطاقة الوطنية BK123456", [("MA_CIN", "BK123456")]),
    ("RIB 007 780 0001234567890123 45", [("MA_RIB", "007 780 0001234567890123 45")]),
    ("IBAN MA64 0115 1900 0001 2050 0053 4921", [("IBAN", "MA64 0115 1900 0001 2050 0053 4921")]),
    ("carte 4539 1488 0343 6467", [("CREDIT_CARD", "4539 1488 0343 6467")]),
    ("ICE 001525478000088", [("MA_ICE", "001525478000088")]),
    ("matricule 12345-أ-6", [("MA_PLATE", "12345-أ-6")]),
    ("je m'appelle Yassine Bennani", [("PERSON", "Yassine Bennani")]),
    ("اسمي سارة الفاسي", [("PERSON", "سارة الفاسي")]),
    ("ⵉⵙⵎ ⵉⵏⵓ ⵢⵓⴱⴰ ⴰⵎⵣⵉⵍ", [("PERSON", "ⵢⵓⴱⴰ ⴰⵎⵣⵉⵍ")]),
    ("smiti Ghita", [("PERSON", "Ghita")]),  # unknown to the gazetteer, but announced
    ("ساكن ف درب السلطان رقم 14، كازا", [("ADDRESS", "درب السلطان رقم 14")]),
    ("né le 12/03/1990", [("DATE_OF_BIRTH", "12/03/1990")]),
])
def test_finds_moroccan_personal_data(scanner: Scanner, text: str,
                                      expected: list[tuple[str, str]]) -> None:
    assert found(scanner, text) == expected


@pytest.mark.parametrize("text", [
    "lcommande 48213 b 299 dh wslat nhar 12/05/2026",  # order number, price, event date
    "promo -20% f Marrakech w Agadir",                  # place names are not addresses
    "3andi amal kbir",                                  # a first name that is a word
    "carte 4539 1488 0343 6468",                        # fails Luhn: not a card
    "بغيت فاكتورة باسم الشركة",                          # "in the company's name"
    "ana bghit nbdel sbbat",                            # "ana" (I) before a verb
    "salam <PERSON_1>, ra9mek <PHONE_1>",               # already anonymized
])
def test_leaves_hard_negatives_alone(scanner: Scanner, text: str) -> None:
    assert found(scanner, text) == []


def test_context_raises_confidence(scanner: Scanner) -> None:
    assert scanner.scan("123456789") == []  # nine digits alone: not reported
    [cnss] = scanner.scan("CNSS 123456789")
    assert cnss.entity == "MA_CNSS" and cnss.score >= scanner.policy.high_confidence


def test_validators() -> None:
    assert luhn_valid("4539 1488 0343 6467") and not luhn_valid("4539 1488 0343 6468")
    assert iban_valid("MA64 0115 1900 0001 2050 0053 4921")
    assert not iban_valid("MA65 0115 1900 0001 2050 0053 4921")


def test_findings_never_carry_values(scanner: Scanner) -> None:
    text = "ra9mi 0612345678"
    [finding] = scanner.scan(text)
    assert "0612345678" not in repr(finding) and finding.masked() == "<MA_PHONE:10 chars>"


def test_shipped_eval_set_meets_the_targets(scanner: Scanner) -> None:
    result = evaluate(scanner)
    assert result["sentences"] >= 400
    assert set(result["varieties"]) == {"ary_Arab", "ary_Latn", "arb_Arab", "fra_Latn",
                                        "zgh_Tfng", "zgh_Latn", "ary_fra_mix"}
    assert result["structured"]["recall"] >= 0.97
    for script in ("Latn", "Arab"):
        assert result["person_by_script"][script]["recall"] >= 0.85
    assert result["overall"]["precision"] >= 0.90
    negatives = result["hard_negatives"]
    assert negatives["sentences"] >= 50 and negatives["left_alone"] >= 0.9 * negatives["sentences"]


def test_policy_is_data(tmp_path: object) -> None:
    policy = load_policy()
    assert policy.version and "MA_PHONE" in policy.entities
    assert len(policy.words(policy.person.first_names)) > 100
