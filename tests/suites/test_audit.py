"""``suites audit`` on suites built here: each check fires on the flaw it is for, and a
clean suite passes every check."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from moroccan_eval.cli import main
from moroccan_eval.errors import SuiteError
from moroccan_eval.suites.audit import (
    DEFAULTS,
    SuiteAudit,
    audit_suite,
    card_summary,
    update_card_audit,
)
from moroccan_eval.suites.audit.checks import CheckResult, ci_half_width
from moroccan_eval.suites.audit.textual import IRCAM_LETTERS, skeleton
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.suites.schema import AuditSettings
from moroccan_eval.suites.seal import write_checksums

CARD = """---
sources: Written by the moroccan-eval developers as a test fixture.
authors: moroccan-eval project contributors
consent: {basis: authored, details: "Authored test fixture; no personal data."}
anonymization: Nothing to anonymize (authored, no personal data).
retention: Kept with the test suite.
validation_status: "authored test fixture; not reviewed"
---
# audit fixture
"""

#: Thresholds a tiny fixture needs: 20 items per variety cannot give a narrow interval.
SMALL = {"reason": "a tiny test fixture: its intervals are wide by design",
         "ci_half_width_warn": 100, "ci_half_width_fail": 100}

LATIN = "bcdfgklmnrstz"
ARABIC = "بتدرسفكلمنقز"
VOWELS_L = "aeiou"
VOWELS_A = "اوي"


def words(rng: random.Random, letters: str, vowels: str, n: int) -> list[str]:
    return ["".join(rng.choice(letters) + rng.choice(vowels) for _ in range(3))
            for _ in range(n)]


def clean_items(n_test: int = 24, n_train: int = 24, seed: int = 0) -> list[dict[str, Any]]:
    """Two labels told apart by one keyword each, in fra_Latn and arb_Arab: random,
    distinct words, the same length and no punctuation, so no check has anything to
    find; the keyword lets a char n-gram model learn what surface cues cannot."""
    rng = random.Random(seed)
    keys = {"alpha": ("zorbak", "زربك"), "beta": ("quilmo", "قلمو")}
    items = []
    for split, n, prefix in (("test", n_test, "t"), ("train", n_train, "tr")):
        for i in range(n):
            label = "alpha" if i % 2 else "beta"
            group = f"{prefix}{i:03d}"
            latin = words(rng, LATIN, VOWELS_L, 6)
            arabic = words(rng, ARABIC, VOWELS_A, 6)
            latin.insert(rng.randrange(7), keys[label][0])
            arabic.insert(rng.randrange(7), keys[label][1])
            for variety, text in (("fra_Latn", " ".join(latin)), ("arb_Arab", " ".join(arabic))):
                items.append({"id": f"{group}-{variety}", "group": group, "split": split,
                              "variety": variety, "fields": {"text": text},
                              "reference": label, "consent_id": "authored", "meta": {}})
    return items


CLASSIFICATION = {"type": "classification", "description": "A fixture task.",
                  "input_fields": ["text"],
                  "labels": {"alpha": {"description": "first", "aliases": ["premier"]},
                             "beta": {"description": "second", "aliases": ["deuxieme"]}},
                  "prompt": {"user": "{{ text }}"}}
TRANSLATION = {"type": "translation", "description": "A fixture task.",
               "input_fields": ["text"], "prompt": {"user": "{{ text }}"}}
QA = {"type": "qa", "description": "A fixture task.", "input_fields": ["text"],
      "metrics": ["answer_accuracy", "refusal_accuracy"], "prompt": {"user": "{{ text }}"}}


def make_suite(root: Path, tasks: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]], *,
               audit: dict[str, Any] | None = None, name: str = "fixture") -> Path:
    """Write and seal a suite folder."""
    path = root / name
    (path / "tasks").mkdir(parents=True)
    (path / "data").mkdir()
    for task, (spec, items) in tasks.items():
        (path / "tasks" / f"{task}.yaml").write_text(yaml.safe_dump(
            {"name": task, "data": f"data/{task}.jsonl", **spec}, allow_unicode=True),
            encoding="utf-8")
        (path / "data" / f"{task}.jsonl").write_text(
            "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    spec_yaml: dict[str, Any] = {
        "name": name, "version": "0.1.0", "description": "Audit fixture", "license": "CC0-1.0",
        "reference_variety": "arb_Arab", "tasks": list(tasks), "checksums": {}}
    if audit is not None:
        spec_yaml["audit"] = audit
    (path / "suite.yaml").write_text(yaml.safe_dump(spec_yaml, allow_unicode=True),
                                     encoding="utf-8")
    (path / "CARD.md").write_text(CARD, encoding="utf-8")
    write_checksums(path)
    return path


def run_audit(path: Path) -> SuiteAudit:
    return audit_suite(load_suite(path))


def results(audit: SuiteAudit, check: str, scope: str | None = None) -> list[CheckResult]:
    found = [r for r in audit["results"] if r["check"] == check
             and (scope is None or r["scope"] == scope)]
    assert found, f"no {check} result for {scope}"
    return found


def one(audit: SuiteAudit, check: str, scope: str | None = None) -> CheckResult:
    found = results(audit, check, scope)
    assert len(found) == 1, found
    return found[0]


def edited(change: Callable[[list[dict[str, Any]]], None], **kwargs: Any) -> list[dict[str, Any]]:
    items = clean_items(**kwargs)
    change(items)
    return items


def item(items: list[dict[str, Any]], item_id: str) -> dict[str, Any]:
    return next(i for i in items if i["id"] == item_id)


# ------------------------------------------------------------------ clean


def test_a_clean_suite_passes_every_check(tmp_path: Path) -> None:
    path = make_suite(tmp_path, {"topic": (CLASSIFICATION, clean_items())}, audit=SMALL)
    audit = run_audit(path)
    statuses = {(r["check"], r["scope"]): r["status"] for r in audit["results"]}
    assert {s for s in statuses.values()} <= {"PASS", "INFO"}, [
        r for r in audit["results"] if r["status"] not in ("PASS", "INFO")]
    assert audit["summary"]["status"] == "PASS" and not audit["summary"]["problems"]
    checks = {check for check, _ in statuses}
    assert {"leak_across_splits", "duplicates_within_split", "shared_groups", "label_leakage",
            "shortcut", "script_mixing", "ci_half_width", "chat_features"} <= checks
    shortcut = one(audit, "shortcut", "fra_Latn")
    assert shortcut["figure"] is not None and shortcut["figure"] <= DEFAULTS["shortcut_warn"]
    assert audit["overridden"] == ["ci_half_width_fail", "ci_half_width_warn"]
    result = CliRunner().invoke(main, ["suites", "audit", str(path)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output.splitlines()[0]


# ------------------------------------------------------------------ duplicates


def test_duplicates_across_and_within_splits_and_shared_groups_fail(tmp_path: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        # a train text re-used in test with one letter changed (a near-duplicate)
        text = item(items, "tr000-fra_Latn")["fields"]["text"]
        item(items, "t000-fra_Latn")["fields"]["text"] = text[:-1] + "x"
        # two test groups with the same text (different case and punctuation)
        same = item(items, "t001-arb_Arab")["fields"]["text"]
        item(items, "t003-arb_Arab")["fields"]["text"] = same + "!"
        item(items, "t003-arb_Arab")["reference"] = item(items, "t001-arb_Arab")["reference"]
        # a test group also used in train (its arb_Arab item)
        item(items, "t005-arb_Arab")["split"] = "train"

    audit = run_audit(make_suite(tmp_path, {"topic": (CLASSIFICATION, edited(change))},
                                 audit=SMALL))
    leak = one(audit, "leak_across_splits")
    assert leak["status"] == "FAIL" and any(e.startswith("t000-fra_Latn ≈ tr000-fra_Latn")
                                            for e in leak["examples"])
    assert leak["figure"] == round(100 * 1 / 47, 1)  # of 47 test items
    within = one(audit, "duplicates_within_split")
    assert within["status"] == "WARN" and within["figure"] == round(100 * 2 / 47, 1)
    assert {e.split(" ")[0] for e in within["examples"]} == {"t001-arb_Arab", "t003-arb_Arab"}
    groups = one(audit, "shared_groups")
    assert groups["status"] == "FAIL" and groups["examples"] == ["t005"]
    assert audit["summary"]["status"] == "FAIL"


# ------------------------------------------------------------------ labels


def test_label_words_in_texts_fail_only_in_the_variety_that_has_them(tmp_path: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        for i in items:
            if i["variety"] == "fra_Latn" and i["split"] == "test" and int(i["group"][1:]) < 8:
                alias = "premier" if i["reference"] == "alpha" else "deuxième"  # accent: normalised
                i["fields"]["text"] += f" {alias}"

    audit = run_audit(make_suite(tmp_path, {"topic": (CLASSIFICATION, edited(change))},
                                 audit=SMALL))
    french = one(audit, "label_leakage", "fra_Latn")
    assert french["status"] == "FAIL" and french["figure"] == round(100 * 8 / 24, 1)
    assert one(audit, "label_leakage", "arb_Arab")["status"] == "PASS"


def test_a_punctuation_shortcut_is_caught_per_variety(tmp_path: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        for i in items:  # every alpha item shouts, no beta item does, in every split
            if i["reference"] == "alpha":
                i["fields"]["text"] += " !!"

    audit = run_audit(make_suite(tmp_path, {"topic": (CLASSIFICATION, edited(change))},
                                 audit=SMALL))
    for variety in ("fra_Latn", "arb_Arab"):
        result = one(audit, "shortcut", variety)
        assert result["status"] == "FAIL"
        assert result["figure"] == 50.0  # cues alone: 100%, majority: 50%
        assert "'!!'→alpha 100%" in result["detail"]


def test_a_suite_names_the_contrast_words_of_its_languages(tmp_path: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        for i in items:  # every alpha item has a contrast word the defaults do not know,
            if i["reference"] == "alpha":  # in place of a word of the same length
                words_ = i["fields"]["text"].split()
                at = next(n for n, w in enumerate(words_) if w not in ("zorbak", "زربك"))
                i["fields"]["text"] = " ".join([*words_[:at], "jedoch", *words_[at + 1:]])

    items = edited(change)
    unknown = run_audit(make_suite(tmp_path / "a", {"topic": (CLASSIFICATION, items)},
                                   audit=SMALL))
    assert one(unknown, "shortcut", "fra_Latn")["status"] == "PASS"
    named = run_audit(make_suite(tmp_path / "b", {"topic": (CLASSIFICATION, items)},
                                 audit={**SMALL, "contrast_words": ["Jedoch"]}))
    result = one(named, "shortcut", "fra_Latn")
    assert result["status"] == "FAIL" and "contrast word→alpha 100%" in result["detail"]


def test_the_shortcut_check_steps_aside_when_labels_are_the_varieties(tmp_path: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        for i in items:
            i["reference"] = "alpha" if i["variety"] == "fra_Latn" else "beta"

    audit = run_audit(make_suite(tmp_path, {"topic": (CLASSIFICATION, edited(change))},
                                 audit=SMALL))
    result = one(audit, "shortcut")
    assert result["status"] == "INFO" and "not applicable" in result["detail"]


# ------------------------------------------------------------------ scripts


def tifinagh_items(latin: Callable[[str], str]) -> list[dict[str, Any]]:
    """zgh_Tfng and zgh_Latn items, the Latin one derived from the Tifinagh by ``latin``."""
    rng = random.Random(1)
    letters = [c for c in sorted(IRCAM_LETTERS) if c not in "ⴰⵉⵓⴻⵯ"]
    items = []
    for split, n, prefix in (("test", 12, "t"), ("train", 12, "tr")):
        for i in range(n):
            group = f"{prefix}{i:03d}"
            tfng = " ".join("".join(rng.choice(letters) + rng.choice("ⴰⵉⵓ") for _ in range(3))
                            for _ in range(6))
            label = "alpha" if i % 2 else "beta"
            for variety, text in (("zgh_Tfng", tfng), ("zgh_Latn", latin(tfng))):
                items.append({"id": f"{group}-{variety}", "group": group, "split": split,
                              "variety": variety, "fields": {"text": text}, "reference": label,
                              "consent_id": "authored", "meta": {}})
    return items


def chat_latin(tfng: str) -> str:
    """A letter-by-letter chat transliteration (ⵖ→gh, ⵛ→ch ...)."""
    from moroccan_eval.suites.audit.textual import _TFNG_TO_LATN

    return tfng.translate(_TFNG_TO_LATN)


def test_a_variety_that_transliterates_another_fails_parallel_identity(tmp_path: Path) -> None:
    audit = run_audit(make_suite(tmp_path, {"topic": (CLASSIFICATION, tifinagh_items(
        chat_latin))}, audit=SMALL))
    result = one(audit, "parallel_identity", "zgh_Tfng/zgh_Latn")
    assert result["status"] == "FAIL" and result["figure"] == 100.0


def test_independently_written_parallel_texts_pass_parallel_identity(tmp_path: Path) -> None:
    rng = random.Random(7)

    def own_words(tfng: str) -> str:
        return " ".join(words(rng, LATIN, VOWELS_L, 6))

    audit = run_audit(make_suite(tmp_path, {"topic": (CLASSIFICATION, tifinagh_items(
        own_words))}, audit=SMALL))
    result = one(audit, "parallel_identity", "zgh_Tfng/zgh_Latn")
    assert result["status"] == "PASS" and result["figure"] == 0.0


def test_latin_letters_inside_words_fail_and_whole_latin_words_can_be_allowed(
        tmp_path: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        item(items, "t000-zgh_Tfng")["fields"]["text"] += " ⵏⵛⴰḷḷⴰⵀ"  # ḷ: Latin, not IRCAM
        item(items, "t001-zgh_Tfng")["fields"]["text"] += " ⵜⴰⴷⴳⴳʷⴰⵜ"  # ʷ instead of ⵯ
        item(items, "t002-zgh_Tfng")["fields"]["text"] += " ⵞⴰ"  # a Tuareg letter
        # an Amazigh word left in Latin letters while another item writes it in Tifinagh
        item(items, "t003-zgh_Tfng")["fields"]["text"] += " tilifun"
        item(items, "t004-zgh_Tfng")["fields"]["text"] += " ⵜⵉⵍⵉⴼⵓⵏ"
        for i in items:  # a brand name in Latin letters: code-switching, not a slip
            if i["variety"] == "zgh_Tfng":
                i["fields"]["text"] += " Samsung"

    items = tifinagh_items(lambda t: " ".join(words(random.Random(t), LATIN, VOWELS_L, 6)))
    change(items)
    audit = run_audit(make_suite(tmp_path / "a", {"topic": (CLASSIFICATION, items)},
                                 audit=SMALL))
    mixing = one(audit, "script_mixing", "zgh_Tfng")
    assert mixing["status"] == "FAIL" and mixing["figure"] == 4.0
    assert mixing["examples"] == ["t000-zgh_Tfng: ⵏⵛⴰḷḷⴰⵀ", "t001-zgh_Tfng: ⵜⴰⴷⴳⴳʷⴰⵜ",
                                  "t002-zgh_Tfng: ⵞⴰ", "t003-zgh_Tfng: tilifun"]
    assert one(audit, "tifinagh_latin_words", "zgh_Tfng")["status"] == "WARN"
    allowed = run_audit(make_suite(tmp_path / "b", {"topic": (CLASSIFICATION, items)}, audit={
        **SMALL, "tifinagh_allow": ["Samsung"]}))
    latin = one(allowed, "tifinagh_latin_words", "zgh_Tfng")
    assert latin["status"] == "PASS" and latin["figure"] == 0.0
    assert one(allowed, "script_mixing", "zgh_Tfng")["figure"] == 4.0  # still slips


def test_latin_inside_an_arabic_word_fails_but_a_latin_word_does_not(tmp_path: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        item(items, "t000-arb_Arab")["fields"]["text"] += " بالICE"
        item(items, "t001-arb_Arab")["fields"]["text"] += " CIN <PERSON_1>"

    audit = run_audit(make_suite(tmp_path, {"topic": (CLASSIFICATION, edited(change))},
                                 audit=SMALL))
    result = one(audit, "script_mixing", "arb_Arab")
    assert result["status"] == "FAIL" and result["examples"] == ["t000-arb_Arab: بالICE"]


def test_chat_features_are_reported_as_figures(tmp_path: Path) -> None:
    def change(items: list[dict[str, Any]]) -> None:
        for i in items:
            n = int(i["group"][1:]) if i["group"].startswith("t0") else 99
            if i["variety"] == "fra_Latn" and i["split"] == "test" and n < 6:
                variant = "dyal" if n < 4 else "dial"  # two spellings of one word
                i["fields"]["text"] = f"wa3ddd, bzzzaf 😍 {variant} " + i["fields"]["text"]

    audit = run_audit(make_suite(tmp_path, {"topic": (CLASSIFICATION, edited(change))},
                                 audit=SMALL))
    result = one(audit, "chat_features", "fra_Latn")
    assert result["status"] == "INFO" and result["figure"] == 25.0
    assert "comma 25%" in result["detail"] and "emoji 25%" in result["detail"]
    assert "arabizi digits 25%" in result["detail"]
    assert "arabic and latin words 0%" in result["detail"]
    # 2 "dial" among 6 dyal/dial, beside words always spelt alike: 6 wa3ddd, 6 bzzzaf
    # and the two label keywords, 12 each
    assert "minority spelling 4.8% of 42 tokens" in result["detail"]


# ------------------------------------------------------------------ references and keys


def translation_items(reference: Callable[[int, str], str]) -> list[dict[str, Any]]:
    from moroccan_eval.text.translit import arabic_to_arabizi

    rng = random.Random(3)
    items = []
    for split, n, prefix in (("test", 20, "t"), ("train", 10, "tr")):
        for i in range(n):
            source = " ".join(words(rng, ARABIC, VOWELS_A, 5))
            items.append({"id": f"{prefix}{i:03d}-ary_Arab", "group": f"{prefix}{i:03d}",
                          "split": split, "variety": "ary_Arab", "fields": {"text": source},
                          "reference": reference(i, source) or arabic_to_arabizi(source),
                          "consent_id": "authored", "meta": {}})
    return items


def test_references_equal_to_their_source_fail(tmp_path: Path) -> None:
    items = translation_items(lambda i, source: source if i < 3 else "")
    audit = run_audit(make_suite(tmp_path, {"to_x": (TRANSLATION, items)}, audit=SMALL))
    result = one(audit, "reference_is_source")
    assert result["status"] == "FAIL" and result["figure"] == 20.0  # 3 + 3 of 30


def test_transliteration_references_that_rewrite_are_counted(tmp_path: Path) -> None:
    rng = random.Random(5)

    def reference(i: int, source: str) -> str:  # 6 of 30 are other words altogether
        return " ".join(words(rng, LATIN, VOWELS_L, 5)) if i % 5 == 0 else ""

    audit = run_audit(make_suite(tmp_path, {"translit": (TRANSLATION, translation_items(
        reference))}, audit=SMALL))
    result = one(audit, "rewrites")
    assert result["status"] == "FAIL" and result["figure"] == 20.0
    assert one(audit, "reference_is_source")["status"] == "PASS"
    clean = run_audit(make_suite(tmp_path / "clean", {"translit": (TRANSLATION,
                      translation_items(lambda i, s: ""))}, audit=SMALL))
    assert one(clean, "rewrites")["figure"] == 0.0


def test_skeleton_equates_a_transliteration_and_not_a_rewrite() -> None:
    assert skeleton("ⵜⴰⵏⵎⵎⵉⵔⵜ ⵏ ⵓⵖⵔⵓⵎ") == skeleton("tanmmirt n ughrum")
    assert skeleton("شحال الثمن") == skeleton("ch7al ttaman")
    assert skeleton("lmixeur") != skeleton("الخلاط")


def qa_items(keys: Callable[[str, int], list[str]]) -> list[dict[str, Any]]:
    rng = random.Random(9)
    items = []
    for split, n, prefix in (("test", 10, "t"), ("train", 10, "tr")):
        for i in range(n):
            facts = keys(split, i)
            items.append({"id": f"{prefix}{i:03d}-fra_Latn", "group": f"{prefix}{i:03d}",
                          "split": split, "variety": "fra_Latn",
                          "fields": {"text": " ".join(words(rng, LATIN, VOWELS_L, 6))},
                          "reference": {"answerable": bool(facts), "facts": facts},
                          "consent_id": "authored", "meta": {}})
    return items


def test_answer_keys_shared_with_train_and_single_digit_keys_fail(tmp_path: Path) -> None:
    def keys(split: str, i: int) -> list[str]:
        if split == "train":
            return [str(100 + i)]
        if i < 4:
            return [str(100 + i)]  # the answer of a training question
        if i < 6:
            return ["2"]  # any "2" in an answer matches
        if i < 8:
            return ["2 tentatives|2 محاولات"]  # words: not matched by a bare "2"
        return [str(500 + i), "45"]

    audit = run_audit(make_suite(tmp_path, {"faq": (QA, qa_items(keys))}, audit=SMALL))
    shared = one(audit, "shared_answer_keys")
    assert shared["status"] == "FAIL" and shared["figure"] == 40.0
    assert shared["examples"][0] == "t000 ~ tr000 (100)"
    accidental = one(audit, "accidental_keys")
    assert accidental["status"] == "FAIL" and accidental["figure"] == 20.0
    assert [e.split(":")[0] for e in accidental["examples"]] == ["t004-fra_Latn",
                                                                  "t005-fra_Latn"]
    assert "(4 with one of ≤ 2)" in accidental["detail"]  # and the two "45" items


# ------------------------------------------------------------------ sample size, copies


def test_ci_half_width_uses_the_normal_approximation_at_the_current_n(tmp_path: Path) -> None:
    assert ci_half_width(100) == pytest.approx(9.8, abs=0.01)
    assert ci_half_width(150) == pytest.approx(8.0, abs=0.01)
    audit = run_audit(make_suite(tmp_path, {"topic": (CLASSIFICATION, clean_items(
        n_test=8))}))  # default thresholds
    result = one(audit, "ci_half_width", "fra_Latn")
    assert result["status"] == "FAIL" and result["figure"] == pytest.approx(34.6, abs=0.05)
    assert "n=8" in result["detail"]


def test_a_suite_that_copies_another_fails(tmp_path: Path) -> None:
    items = clean_items()
    make_suite(tmp_path, {"topic": (CLASSIFICATION, items)}, audit=SMALL, name="one")
    copy = make_suite(tmp_path, {"topic": (CLASSIFICATION, items)}, audit=SMALL, name="two")
    audit = run_audit(copy)
    result = one(audit, "copies")
    assert result["status"] == "FAIL" and result["figure"] == 100.0
    assert result["examples"] == ["one/data/topic.jsonl"]
    assert one(audit, "texts_in_other_suites")["figure"] == 100.0
    # the same texts with other references (another task on them) are reuse, not a copy
    relabelled = [{**i, "reference": "beta" if i["reference"] == "alpha" else "alpha"}
                  for i in items]
    other = make_suite(tmp_path, {"topic": (CLASSIFICATION, relabelled)}, audit=SMALL,
                       name="three")
    reused = run_audit(other)
    assert one(reused, "copies")["status"] == "PASS"
    assert one(reused, "texts_in_other_suites") == {**one(reused, "texts_in_other_suites"),
                                                    "figure": 100.0, "status": "INFO"}


# ------------------------------------------------------------------ settings, card, CLI


def test_audit_settings_are_strict_and_need_a_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reason"):
        AuditSettings(ci_half_width_fail=40)
    with pytest.raises(ValueError, match="Extra inputs"):
        AuditSettings.model_validate({"reason": "a reason long enough", "nope": 1})
    path = make_suite(tmp_path, {"topic": (CLASSIFICATION, clean_items())},
                      audit={"label_leakage_fail": 50})
    with pytest.raises(SuiteError, match=r"audit.*reason"):
        load_suite(path)
    result = CliRunner().invoke(main, ["suites", "audit", str(path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "reason" in result.output


def test_update_card_writes_one_audit_section_and_replaces_it(tmp_path: Path) -> None:
    path = make_suite(tmp_path, {"topic": (CLASSIFICATION, clean_items(n_test=8))})
    runner = CliRunner()
    first = runner.invoke(main, ["suites", "audit", str(path), "--update-card"])
    assert first.exit_code == 1  # the interval at n=8 fails
    card = (path / "CARD.md").read_text(encoding="utf-8")
    assert card.startswith(CARD)  # the front matter and text are kept
    assert card.count("<!-- audit:begin -->") == 1 and "## Audit" in card
    assert "**Status: FAIL**" in card and "ci_half_width_fail 20" in card
    assert "34.6 points **FAIL**" in card
    audit = run_audit(path)
    update_card_audit(load_suite(path), audit)
    again = (path / "CARD.md").read_text(encoding="utf-8")
    assert again.count("<!-- audit:begin -->") == 1 and again.count("## Audit") == 1
    suite = load_suite(path)  # the card still parses
    # the card records the summary of this suite version, for reports
    assert card_summary(path, suite.sha256) == audit["summary"]
    assert card_summary(path, "0" * 64) is None


def test_json_output_and_exit_status(tmp_path: Path) -> None:
    path = make_suite(tmp_path, {"topic": (CLASSIFICATION, clean_items(n_test=8))})
    result = CliRunner().invoke(main, ["suites", "audit", str(path), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data[0]["summary"]["status"] == "FAIL"
    assert data[0]["thresholds"] == DEFAULTS
    problems = CliRunner().invoke(main, ["suites", "audit", str(path), "--problems"])
    assert "ci_half_width" in problems.output and "PASS " not in problems.output


# ------------------------------------------------------------------ report


def test_the_report_provenance_shows_the_audit_summary(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from moroccan_eval.adapters import load_model
    from moroccan_eval.report.build import build_report
    from moroccan_eval.runs.rundir import load_run
    from moroccan_eval.runs.runner import RunOptions, run

    suites = tmp_path / "suites"
    path = make_suite(suites, {"topic": (CLASSIFICATION, clean_items(n_test=8))})
    monkeypatch.setenv("MOROCCAN_EVAL_SUITES", str(suites))
    done = run(RunOptions(suite=load_suite(path), out_dir=tmp_path / "runs", progress=False),
               [load_model("majority")])
    runs = [load_run(r.path) for r in done]
    html = build_report(runs)
    provenance = html[html.index('id="provenance"'):]
    assert "<mark>FAIL</mark>" in provenance
    assert "FAIL ci_half_width topic fra_Latn: 34.6 points" in provenance
    # a card that records the audit of this version is read, not recomputed
    CliRunner().invoke(main, ["suites", "audit", str(path), "--update-card"])
    card = path / "CARD.md"
    card.write_text(card.read_text(encoding="utf-8").replace(
        '"status": "FAIL"', '"status": "WARN"'), encoding="utf-8")
    assert "<mark>WARN</mark>" in build_report(runs)
    # a suite edited since the run is another version: no audit is shown for it
    (path / "suite.yaml").write_text((path / "suite.yaml").read_text(encoding="utf-8")
                                     .replace("0.1.0", "0.1.1"), encoding="utf-8")
    later = build_report(runs)
    assert "this version of the suite was not found here" in later
    assert "<mark>FAIL</mark>" not in later[later.index('id="provenance"'):]
