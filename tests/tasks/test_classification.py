from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import scored
from sklearn.metrics import f1_score

from moroccan_eval.records import Manifest
from moroccan_eval.runs.scoring import compute_scores, reparse
from moroccan_eval.suites.schema import LabelSpec
from moroccan_eval.tasks.classification import MISSING, LabelParser

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"

PARSER = LabelParser({
    "refund": LabelSpec(aliases=["remboursement", "استرجاع المبلغ"]),
    "payment_problem": LabelSpec(aliases=["paiement"]),
    "exchange": LabelSpec(aliases=["échange", "استبدال"]),
    "other": LabelSpec(),
})


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("refund", "refund"),
        ("  REFUND.\n", "refund"),
        ("Payment-Problem", "payment_problem"),
        ("payment problem", "payment_problem"),
        ("Intent: exchange", "exchange"),
        ("L'intention est : Échange", "exchange"),
        ("الجواب: استرجاعُ المبلغ", "refund"),  # diacritics ignored
        ("refund, not exchange", None),  # two labels named: unparsed, not the first
        ("Refund (remboursement)", "refund"),  # a label and its alias: one label
        ("payment problem", "payment_problem"),  # not also a mention of a shorter label
        ("I would say **other**", "other"),
        ("no idea", None),
        ("", None),
        ("refunded", None),  # whole words only
    ],
)
def test_label_parser(reply: str, label: str | None) -> None:
    assert PARSER.parse(reply) == label
    assert PARSER.parse(reply) == label  # remembered: the same again


def test_label_parser_remembers_a_bounded_number_of_short_replies() -> None:
    from moroccan_eval.tasks import classification

    parser = LabelParser({"refund": LabelSpec(), "other": LabelSpec()})
    long_reply = "refund " + "x" * classification._MEMO_CHARS
    assert parser.parse(long_reply) == "refund" and long_reply not in parser._parsed
    for i in range(classification._MEMO_ENTRIES + 10):
        assert parser.parse(f"other {i}") == "other"
    assert len(parser._parsed) <= classification._MEMO_ENTRIES


ECHOES = Path(__file__).parent.parent / "fixtures" / "raw_outputs" / "classification.jsonl"


def test_echoed_prompts_label_lists_and_template_leaks_are_unparsed() -> None:
    """Outputs of the kinds a base model gives when it continues its prompt (hand-written
    after the failures measured with Gemma 3 270M base; see the fixture's card)."""
    import json

    cases = [json.loads(line) for line in ECHOES.read_text(encoding="utf-8").splitlines()]
    parser = LabelParser({label: LabelSpec(aliases=aliases) for label, aliases in {
        "delivery_status": ["livraison"], "refund": ["remboursement"],
        "payment_problem": ["paiement"], "other": []}.items()})
    assert len(cases) >= 12
    for case in cases:
        assert parser.parse(case["output"]) == case["expected"], case["output"]


def test_a_real_base_models_outputs_are_unparsed() -> None:
    """Verbatim outputs of Gemma 3 270M base through llama.cpp (see the fixture's card): it
    echoes the label list with a renamed label but the descriptions copied."""
    import json

    import yaml

    from moroccan_eval.suites.schema import TaskSpec

    folder = ECHOES.parent
    spec = TaskSpec.model_validate(yaml.safe_load(
        (folder / "support_intents_task.yaml").read_text(encoding="utf-8")))
    parser = LabelParser(spec.labels)
    cases = [json.loads(line) for line in
             (folder / "gemma3_270m_base.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(cases) >= 8
    for case in cases:
        assert parser.parse(case["output"]) == case["expected"], case["output"]


def test_quoting_the_description_of_the_named_label_is_still_an_answer() -> None:
    parser = LabelParser({"refund": LabelSpec(description="wants money back or asks when a "
                                                          "refund arrives"),
                          "other": LabelSpec(description="anything else at all here")})
    assert parser.parse("refund: the customer wants money back or asks when") == "refund"
    assert parser.parse("refund (anything else at all here)") is None  # two labels named


LABELS = tuple(f"L{i}" for i in range(6))


def _labelled(true: np.ndarray, pred: np.ndarray) -> list[dict]:  # type: ignore[type-arg]
    """Records of label indices (``MISSING``: no label recognised)."""
    return [{"group": f"g{i}", "variety": "arb_Arab", "reference": LABELS[t],
             "parsed": None if p == MISSING else LABELS[p], "error": None}
            for i, (t, p) in enumerate(zip(true, pred, strict=True))]


def test_macro_f1_matches_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    true = rng.integers(0, 5, size=300).astype(np.int32)
    pred = np.where(rng.random(300) < 0.6, true, rng.integers(0, 6, size=300)).astype(np.int32)
    pred[::17] = MISSING
    ours = scored("classification", _labelled(true, pred), "arb_Arab", n_boot=200,
                  labels=LABELS, metrics=("macro_f1",))["arb_Arab"]["macro_f1"]["value"]
    labels = sorted(set(true) | set(pred[pred != MISSING]))
    expected = f1_score(true, pred, labels=labels, average="macro", zero_division=0)
    assert ours == pytest.approx(expected, abs=1e-6)


def test_ci_brackets_the_estimate_and_narrows_with_n() -> None:
    rng = np.random.default_rng(0)
    results = [scored("classification", _labelled(np.zeros(n, np.int32),
                                                  (rng.random(n) < 0.3).astype(np.int32)),
                      "arb_Arab", labels=LABELS, metrics=("accuracy",))["arb_Arab"]["accuracy"]
               for n in (20, 2000)]
    small, big = results
    for result in (small, big):
        assert result["ci"][0] <= result["value"] <= result["ci"][1]
    assert (big["ci"][1] - big["ci"][0]) < (small["ci"][1] - small["ci"][0]) / 4


def _records(correct_ref: int, correct_other: int, n: int = 50) -> list[dict]:  # type: ignore[type-arg]
    records = []
    for i in range(n):
        for variety, k in (("arb_Arab", correct_ref), ("ary_Latn", correct_other)):
            records.append({"group": f"g{i}", "variety": variety, "reference": "refund",
                            "parsed": "refund" if i < k else "other", "error": None})
    return records


def test_paired_delta_is_significant_only_when_the_gap_is_real() -> None:
    big_gap = scored("classification", _records(45, 20), "arb_Arab", labels=("refund", "other"),
                     metrics=("accuracy",))
    delta = big_gap["ary_Latn"]["delta_vs_reference"]["accuracy"]
    assert delta["value"] == pytest.approx(-0.5)
    assert delta["significant"] and delta["ci"][1] < 0
    assert delta["n_pairs"] == 50
    no_gap = scored("classification", _records(30, 30), "arb_Arab", labels=("refund", "other"),
                    metrics=("accuracy",))
    assert no_gap["ary_Latn"]["delta_vs_reference"]["accuracy"]["value"] == 0
    assert "delta_vs_reference" not in no_gap["arb_Arab"]


def test_errors_count_as_wrong_and_skipped_items_are_not_scored() -> None:
    records = _records(50, 50, n=4)
    records[0]["error"] = "HTTP 500 (after 3 attempt(s))"
    records[0]["parsed"] = None
    records[1]["skipped"] = True
    result = scored("classification", records, "arb_Arab", labels=("refund", "other"),
                    metrics=("accuracy",))
    assert result["arb_Arab"]["n"] == 4 and result["arb_Arab"]["errors"] == 1
    assert result["arb_Arab"]["accuracy"]["value"] == 0.75
    assert result["ary_Latn"]["n"] == 3


def test_golden_scores_are_stable() -> None:
    """A silent change to parsing, metrics, bootstrap or seeding must fail here. If a change
    is intended, regenerate with `python tests/fixtures/golden/regenerate.py` and explain
    it in the commit message."""
    manifest = Manifest.model_validate_json((GOLDEN / "manifest.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in
               (GOLDEN / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    scores = compute_scores(manifest, list(reparse(manifest, records)), wall_s=10.0)
    expected = json.loads((GOLDEN / "scores.json").read_text(encoding="utf-8"))
    assert scores.to_json() == expected
