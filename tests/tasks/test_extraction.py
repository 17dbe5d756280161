"""Extraction: JSON answers, value normalisation, field-level scores, the rules baseline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import scored

from moroccan_eval.adapters.baselines import extract_with_rules
from moroccan_eval.errors import SuiteError
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.seal import write_checksums
from moroccan_eval.tasks.extraction import JSONParser
from moroccan_eval.text.values import normalize_value

REF = {"number": "FA-2026-0142", "date": "2026-03-14", "total_ttc": "1500.00"}


@pytest.mark.parametrize(("a", "b"), [
    ("1 500,00 MAD", "1500.00"), ("1.500,00", "1500"), ("١٥٠٠ درهم", 1500),
    ("14/03/2026", "2026-03-14"), ("14 mars 2026", "2026-03-14"), ("14 مارس 2026", "14-03-2026"),
    (" Atlas  Textiles SARL", "atlas textiles sarl"),
])
def test_equal_after_normalisation(a: object, b: object) -> None:
    assert normalize_value(a) == normalize_value(b)


def test_json_answers_and_field_counts() -> None:
    parser = JSONParser()
    answer = parser.parse('Voici:\n```json\n{"number": "FA-2026-0142", "date": "14/03/2026", '
                          '"total_ttc": "1 400,00", "note": "x"}\n```')
    assert parser.counts(answer, REF) == (2, 2, 1)  # one wrong total, one extra field
    assert parser.parse("no json here") is None and parser.parse("{not json}") is None
    assert parser.counts(None, REF) == (0, 0, 3)
    assert parser.correct(parser.parse(json.dumps(REF)), REF)


def test_line_items_count_one_unit_per_line_matched_on_their_numbers() -> None:
    parser = JSONParser()
    reference = {"number": "FA-1", "line_items": [
        {"description": "Clavier USB", "quantity": 4, "unit_price": "95.00", "amount": "380.00"},
        {"description": "Caisse de dattes", "quantity": 2, "unit_price": "180.00",
         "amount": "360.00"}]}
    answer = {"number": "FA-1", "line_items": [
        {"description": "لوحة مفاتيح USB", "quantity": "4", "unit_price": "95,00",
         "amount": "380"},  # right: descriptions are not compared, numbers are normalised
        {"description": "Caisse de dattes", "quantity": 3, "unit_price": "180.00",
         "amount": "540.00"},  # wrong quantity
        {"description": "Transport", "quantity": 1, "unit_price": "50.00", "amount": "50.00"}]}
    per_field = parser.field_counts(answer, reference)
    assert per_field == {"number": (1, 0, 0), "line_items": (1, 2, 1)}
    assert parser.right_fields(per_field) == {"number": True, "line_items": False}
    assert parser.counts({"number": "FA-1", "line_items": "see table"}, reference) == (1, 1, 2)
    assert parser.correct({**answer, "line_items": reference["line_items"][::-1]}, reference)


def test_scores_with_intervals_and_paired_deltas() -> None:
    parser = JSONParser()
    records = []
    for i in range(10):
        good = parser.parse(json.dumps(REF))
        bad = None if i % 2 else parser.parse(json.dumps({**REF, "date": "2026-03-15"}))
        records += [{"group": f"g{i}", "variety": "fra_Latn", "parsed": good, "reference": REF},
                    {"group": f"g{i}", "variety": "arb_Arab", "parsed": bad, "reference": REF}]
    scores = scored("extraction", records, "fra_Latn", n_boot=200)
    assert scores["fra_Latn"]["field_f1"]["value"] == 1.0
    assert scores["fra_Latn"]["exact_match"]["value"] == 1.0
    arabic = scores["arb_Arab"]
    assert arabic["unparsed"] == 5 and arabic["exact_match"]["value"] == 0.0
    # 5 answers with 2 of 3 right and 1 wrong; 5 missing: tp=10, fp=5, fn=20
    assert arabic["field_f1"]["value"] == pytest.approx(2 * 10 / (2 * 10 + 5 + 20), abs=1e-6)
    assert arabic["delta_vs_reference"]["field_f1"]["significant"]
    assert arabic["field_accuracy"] == {"date": 0.0, "number": 0.5, "total_ttc": 0.5}
    assert scores["fra_Latn"]["field_accuracy"]["date"] == 1.0


def test_rules_baseline_reads_a_french_invoice() -> None:
    text = ("FACTURE N° FA-2026-0142\nAtlas Textiles SARL — Casablanca\nICE : 001525478000088\n"
            "Date : 14 mars 2026\n\nTotal HT : 1 250,00 MAD\nTVA 20 % : 250,00 MAD\n"
            "Total TTC : 1 500,00 MAD")
    fields = extract_with_rules(text)
    assert fields["document_type"] == "invoice" and fields["number"] == "FA-2026-0142"
    assert fields["ice"] == "001525478000088" and fields["date"] == "2026-03-14"
    assert fields["total_ttc"] == "1500.00" and fields["supplier"] == "Atlas Textiles SARL"


def test_shipped_documents_keep_dates_as_written(tmp_path: Path) -> None:
    task = load_suite("documents").task("invoice_extraction")
    item = next(task.items("test"))
    assert isinstance(item["reference"]["date"], str)  # not an Arrow-inferred datetime
    assert set(item["reference"]) == {"document_type", "number", "supplier", "ice", "date",
                                      "total_ht", "tva", "total_ttc", "line_items"}
    assert all(set(line) == {"description", "quantity", "unit_price", "amount"}
               for line in item["reference"]["line_items"])


def test_pii_allowed_needs_a_reason_and_lets_only_that_type_through(tmp_path: Path) -> None:
    suite = tmp_path / "documents"
    shutil.copytree(load_suite("documents", load_data=False).path, suite)
    spec = yaml.safe_load((suite / "suite.yaml").read_text(encoding="utf-8"))
    spec["pii_allowed"] = {"MA_ICE": "ok"}
    (suite / "suite.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SuiteError, match="say why this entity type is not personal data"):
        load_suite(suite)
    spec["pii_allowed"] = {}
    (suite / "suite.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SuiteError, match="MA_ICE"):
        load_suite(suite)
    spec["pii_allowed"] = {"MA_ICE": "company identifiers of fictitious suppliers"}
    data = suite / "data" / "documents.jsonl"
    data.write_text(data.read_text(encoding="utf-8").replace(
        "Date :", "Contact : 06 12 34 56 78\\nDate :", 1), encoding="utf-8")
    (suite / "suite.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    write_checksums(suite)
    with pytest.raises(SuiteError, match="MA_PHONE"):  # other types are still refused
        load_suite(suite)
