"""Translation scoring: sacrebleu's numbers, bootstrap intervals, paired deltas, parsing."""

from __future__ import annotations

import pytest
import sacrebleu
from conftest import scored

from moroccan_eval.stats.sacrebleu_stats import signature as metric_signature
from moroccan_eval.tasks.text_pairs import TextParser

REFS = ["أين وصل طلبي؟", "أريد استرجاع أموالي", "البطاقة رفضت", "متى يصل الطرد؟"]
GOOD = ["أين وصل الطلب؟", "أريد استرجاع المال", "رفضت البطاقة", "متى يصل الطرد؟"]
BAD = ["fin wslat", "bghit flousi", "lcarte", "imta"]


def _records(variety: str, hyps: list[str | None]) -> list[dict[str, object]]:
    return [{"group": f"g{i}", "variety": variety, "parsed": h, "reference": r,
             "error": None if h is not None else "timeout"}
            for i, (h, r) in enumerate(zip(hyps, REFS, strict=True))]


def test_values_equal_sacrebleu_corpus_scores() -> None:
    scores = scored("translation", _records("fra_Latn", GOOD), "fra_Latn", n_boot=200)
    entry = scores["fra_Latn"]
    chrf = sacrebleu.metrics.chrf.CHRF(word_order=2).corpus_score(GOOD, [REFS]).score / 100
    bleu = sacrebleu.metrics.bleu.BLEU(tokenize="intl").corpus_score(GOOD, [REFS]).score / 100
    assert entry["chrf"]["value"] == pytest.approx(chrf, abs=1e-6)
    assert entry["bleu"]["value"] == pytest.approx(bleu, abs=1e-6)
    lo, hi = entry["chrf"]["ci"]
    assert lo <= entry["chrf"]["value"] <= hi and hi - lo > 0


def test_failed_answers_count_as_empty_and_deltas_are_paired() -> None:
    records = _records("fra_Latn", GOOD) + _records("ary_Latn", [*BAD[:3], None])
    scores = scored("translation", records, "fra_Latn", n_boot=300, seed=1,
                    metrics=("chrf",))
    darija = scores["ary_Latn"]
    assert darija["errors"] == 1 and darija["n"] == 4
    delta = darija["delta_vs_reference"]["chrf"]
    assert delta["value"] == pytest.approx(darija["chrf"]["value"] - scores["fra_Latn"]["chrf"]
                                           ["value"], abs=1e-6)
    assert delta["n_pairs"] == 4 and delta["significant"] and delta["ci"][1] < 0
    again = scored("translation", records, "fra_Latn", n_boot=300, seed=1,
                    metrics=("chrf",))
    assert again == scores  # seeded


def test_text_parser() -> None:
    parser = TextParser()
    assert parser.parse("Translation: « أين طلبي؟ »\n\nNote: informal") == "أين طلبي؟"
    assert parser.parse("الترجمة: البطاقة رفضت") == "البطاقة رفضت"
    assert parser.parse("   ") is None and parser.parse(None) is None


def test_signatures_name_the_metric_and_version() -> None:
    assert metric_signature("chrf").startswith("chrF++|nrefs:1|") and "nw:2" in \
        metric_signature("chrf")
    assert "tok:intl" in metric_signature("bleu")
