"""Grounded QA: answer keys, refusals, scores, and the retrieval baseline."""

from __future__ import annotations

import asyncio

import pytest
from conftest import scored

from moroccan_eval.adapters import load_model
from moroccan_eval.adapters.base import TaskContext
from moroccan_eval.adapters.retrieval import DECLINE, RetrievalAdapter
from moroccan_eval.prompts import literals
from moroccan_eval.tasks.qa import QAParser, fact_stated

KB = """# KB
## 1. Jardin Majorelle — Marrakech
- Open every day from 8:00 to 18:00.
- Ticket: 150 MAD; free for children under 12.
- Getting there: petit taxi from Jemaa el-Fna, about 20 MAD.

## 2. Volubilis Roman site — near Meknès
- Open every day from 8:30 to 18:30.
- Ticket: 70 MAD for adults.
- Getting there: grand taxi from Meknès, 35 MAD per seat.
"""
PRICE = {"answerable": True, "facts": ["150"]}
HOURS = {"answerable": True, "facts": ["8:00", "18:00"]}
NONE = {"answerable": False, "facts": []}


@pytest.fixture(scope="module")
def parser() -> QAParser:
    return QAParser(literals().refusals)


@pytest.mark.parametrize(("answer", "reference", "correct"), [
    ("The ticket costs 150 MAD.", PRICE, True),
    ("التذكرة ب ١٥٠ درهم", PRICE, True),               # Eastern Arabic digits
    ("kayt7al mn 8h htal 18h", HOURS, True),             # 8h = 8:00
    ("De 08:00 à 18h00", HOURS, True),
    ("It opens at 8:00.", HOURS, False),                 # one fact missing
    ("120 MAD", PRICE, False),
    ("je n'ai pas cette information, mais 150 MAD", PRICE, False),  # declines: not an answer
    ("ما عندي حتى معلومة على هادشي", NONE, True),
    ("ur ssinɣ", NONE, True),
    ("Yes, there is free parking.", NONE, False),        # invented
    ("", PRICE, False),
])
def test_answer_keys_and_refusals(parser: QAParser, answer: str, reference: dict[str, object],
                                  correct: bool) -> None:
    assert parser.correct(parser.parse(answer), reference) is correct


def test_scores_and_paired_deltas(parser: QAParser) -> None:
    records = []
    for i in range(20):
        for variety, answer in (("arb_Arab", "150 MAD"), ("ary_Latn", "200 MAD"
                                                         if i % 2 else "150 MAD")):
            reference = PRICE if i < 15 else NONE
            if reference is NONE and variety == "arb_Arab":
                answer = "لا أعرف"
            parsed = parser.parse(answer)
            records.append({"group": f"g{i}", "variety": variety, "parsed": parsed,
                            "reference": reference, "correct": parser.correct(parsed, reference),
                            "refused": parser.refused(parsed)})
    scores = scored("qa", records, "arb_Arab", n_boot=200,
                    metrics=("answer_accuracy", "refusal_accuracy"))
    assert scores["arb_Arab"]["answer_accuracy"]["value"] == 1.0
    assert scores["arb_Arab"]["refusal_accuracy"]["value"] == 1.0
    darija = scores["ary_Latn"]
    assert darija["refusal_accuracy"]["value"] == pytest.approx(15 / 20)
    assert darija["answer_accuracy"]["value"] == pytest.approx(8 / 20)
    assert darija["delta_vs_reference"]["answer_accuracy"]["significant"]


def test_retrieval_baseline_answers_from_the_sources_or_declines() -> None:
    adapter = load_model("retrieval")
    assert adapter.adapter == "retrieval"
    retrieval = RetrievalAdapter(adapter, RetrievalAdapter.Options())
    asyncio.run(retrieval.prepare(TaskContext(name="q", type="qa", labels=[],
                                              input_fields=["text"], context=KB)))
    assert "150 MAD" in retrieval.answer("ch7al taman dyal Majorelle?")
    assert "150 MAD" in retrieval.answer("شحال الثمن ديال ماجوريل؟")
    assert "8:30" in retrieval.answer("Volubilis ouvre à quelle heure ?")
    assert "35 MAD" in retrieval.answer("kifach nwsel l Volubilis?")
    assert retrieval.answer("wach kayn parking f Majorelle?") == DECLINE
    assert retrieval.answer("fin kayn a7san restaurant f Tanja?") == DECLINE


def test_answer_chrf_scores_right_answers_and_zeroes_wrong_ones() -> None:
    reference = {"answerable": True, "facts": ["24", "48"],
                 "answer": "La livraison prend entre 24 et 48 heures."}
    invented = {"answerable": False, "facts": [], "answer": "je n'ai pas cette information"}

    def record(group: str, variety: str, answer: str, ref: dict[str, object],
               correct: bool) -> dict[str, object]:
        return {"group": group, "variety": variety, "parsed": answer, "reference": ref,
                "correct": correct}

    records = [record(f"g{i}", "fra_Latn", reference["answer"], reference, True)
               for i in range(4)]
    # the same good-looking text, judged wrong (an invented policy), counts as empty
    records += [record(f"g{i}", "ary_fra_mix", reference["answer"], invented, False)
                for i in range(4)]
    scores = scored("qa", records, "fra_Latn", n_boot=100, metrics=("answer_chrf",))
    assert scores["fra_Latn"]["answer_chrf"]["value"] == 1.0
    assert scores["ary_fra_mix"]["answer_chrf"]["value"] == 0.0
    delta = scores["ary_fra_mix"]["delta_vs_reference"]["answer_chrf"]
    assert delta["value"] == -1.0 and delta["significant"]


DAYS7 = {"answerable": True, "facts": ["7 jours|7 أيام|7 ayam|7 ⵡⵓⵙⵙⴰⵏ"]}
RANGE = {"answerable": True, "facts": ["3 5 jour|3 5 ايام|3 5 day"]}
ATTEMPTS = {"answerable": True, "facts": ["2 tentative|2 fois|جوج مرات|مرتين"]}


@pytest.mark.parametrize(("answer", "reference", "correct"), [
    ("Vous avez 7 jours après la livraison.", DAYS7, True),
    ("عندك 7 ديال الأيام باش ترجعها", DAYS7, True),           # a short word between, article
    ("3ndek 7 ayam", DAYS7, True),
    ("ⵜⵥⴹⴰⵔⵜ ⵖ 7 ⵏ ⵡⵓⵙⵙⴰⵏ", DAYS7, True),
    ("Le retour coûte 7 MAD, délai 10 jours.", DAYS7, False),  # the bare 7 is not the key
    ("7 ou 10 jours", DAYS7, False),                          # a number breaks the phrase
    ("entre 3 et 5 jours ouvrables", RANGE, True),
    ("3 to 5 working days", RANGE, True),
    ("من 3 حتى 5 أيام", RANGE, True),
    ("3 jours, ou 5 semaines", RANGE, False),
    ("il passe 2 fois", ATTEMPTS, True),
    ("كيجي جوج مرات", ATTEMPTS, True),
    ("après 2 jours, 3 tentatives", ATTEMPTS, False),
    ("Livré en 48h, pas plus de 2 colis", ATTEMPTS, False),
])
def test_answer_keys_with_units_are_not_met_by_a_stray_number(
        parser: QAParser, answer: str, reference: dict[str, object], correct: bool) -> None:
    assert parser.correct(parser.parse(answer), reference) is correct


def test_a_key_of_numbers_only_keeps_the_earlier_rule() -> None:
    """Number-only keys (every key before units) match as before, so old runs rescore alike."""
    assert fact_stated("150", "Le billet: 150 MAD") and fact_stated("8:00", "dès 8h")
    assert fact_stated("7", "7 ans de garantie")  # no unit asked, none checked
    assert not fact_stated("15", "150 MAD")
    assert fact_stated("2|3", "3 fois")  # alternatives
