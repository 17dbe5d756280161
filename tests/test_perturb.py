"""Perturbations: deterministic, placeholder-safe, and reported as paired robustness."""

from __future__ import annotations

from pathlib import Path

import pytest

from moroccan_eval.adapters import load_model
from moroccan_eval.errors import ConfigError
from moroccan_eval.perturb import PERTURBATIONS, arabic_to_arabizi, arabizi_to_arabic, perturb_item
from moroccan_eval.report.build import build_report
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.varieties import detect_script
from moroccan_eval.verify import verify_run

ITEMS = [
    {"id": item_id, "variety": variety, "fields": {"text": text}}
    for item_id, variety, text in [
        ("a", "ary_Latn", "salam <PERSON_1>, bghit nbdel lcarte 3afak"),
        ("b", "ary_Arab", "السلام <PERSON_1>، بغيت نبدل الكارط عافاك"),
        ("c", "fra_Latn", "Bonjour <PERSON_1>, je voudrais échanger ma carte"),
    ]
]


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_deterministic_and_placeholders_kept(name: str) -> None:
    for item in ITEMS:
        once, twice = perturb_item(item, name, 7), perturb_item(item, name, 7)
        assert once == twice and "<PERSON_1>" in once["fields"]["text"]
        assert item["fields"]["text"] == ITEMS[ITEMS.index(item)]["fields"]["text"]  # no mutation


def test_transliteration_changes_script_of_darija_only() -> None:
    latn, arab, fra = (perturb_item(i, "transliterate", 0)["fields"]["text"] for i in ITEMS)
    assert detect_script(latn.replace("<PERSON_1>", "")) == "Arab"
    assert detect_script(arab.replace("<PERSON_1>", "")) == "Latn"
    assert fra == ITEMS[2]["fields"]["text"]
    assert arabic_to_arabizi("عافاك") == "3afak" and arabizi_to_arabic("3afak") == "عافاك"


def test_typos_and_elongation_change_a_corpus() -> None:
    texts = [f"bghit n3ref fin wslat lcommande numero {i} dyali 3afak" for i in range(50)]
    for name in ("typos", "elongation"):
        changed = sum(perturb_item({"id": str(i), "variety": "ary_Latn",
                                    "fields": {"text": t}}, name, 0)["fields"]["text"] != t
                      for i, t in enumerate(texts))
        assert changed >= 20, name


def test_unknown_perturbation() -> None:
    with pytest.raises(ConfigError, match="did you mean 'typos'"):
        perturb_item(ITEMS[0], "typo", 0)


def test_perturbed_run_is_signed_verified_and_reported(tmp_path: Path, mini_suite: Path) -> None:
    suite = load_suite(mini_suite)
    [clean] = run(RunOptions(suite=suite, out_dir=tmp_path, progress=False),
                  [load_model("char-ngram")])
    [noisy] = run(RunOptions(suite=suite, out_dir=tmp_path, progress=False,
                             perturb="transliterate"), [load_model("char-ngram")])
    signature = noisy.scores.to_json()["tasks"]["intents"]["signature"]
    assert "|perturb:transliterate|" in signature
    assert "perturb" not in clean.scores.to_json()["tasks"]["intents"]["signature"]
    runs = [load_run(clean.path), load_run(noisy.path)]
    assert verify_run(runs[1], suite_ref=str(mini_suite)).ok
    html = build_report(runs)
    assert 'id="robustness"' in html and "transliterate" in html
    assert 'id="robustness"' not in build_report(runs[:1])
