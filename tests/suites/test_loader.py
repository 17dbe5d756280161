from __future__ import annotations

from pathlib import Path

import pytest
from conftest import edit_items, extra_variety_registry

from moroccan_eval.errors import SuiteError
from moroccan_eval.suites.loader import load_suite, suite_dirs
from moroccan_eval.suites.seal import write_checksums


def test_every_shipped_suite_validates() -> None:
    shipped = suite_dirs()
    assert "support-intents" in shipped
    for name in shipped:
        suite = load_suite(name)
        assert suite.tasks, name


def test_mini_suite_loads_with_items_streamed_per_split(mini_suite: Path) -> None:
    suite = load_suite(mini_suite)
    task = suite.task("intents")
    test_items = list(task.items("test"))
    assert len(test_items) == 12
    assert {i["split"] for i in test_items} == {"test"}
    assert len(list(task.items("train"))) == 9
    assert task.varieties() == ["ary_Latn", "arb_Arab", "fra_Latn"]
    assert suite.ident.startswith("mini@0.1.0+sha.")


def test_limit_is_per_variety_and_keeps_groups_aligned(mini_suite: Path) -> None:
    task = load_suite(mini_suite).task("intents")
    items = list(task.items("test", limit=2))
    by_variety: dict[str, list[str]] = {}
    for item in items:
        by_variety.setdefault(item["variety"], []).append(item["group"])
    assert len(by_variety) == 3 and len({tuple(g) for g in by_variety.values()}) == 1
    assert all(len(groups) == 2 for groups in by_variety.values())
    legacy = list(task.items("test", limit=2, sampling=None))  # toolkit 0.1.0: file order
    assert {i["group"] for i in legacy} == {"t1", "t2"}


def test_limit_is_a_seeded_sample_stratified_by_label() -> None:
    """support-intents' test file is sorted by label: the first 4 groups were all
    delivery_status, the first 20 covered 5 of 12 intents."""
    task = load_suite("support-intents").task("intents")
    labels = set(task.labels)
    for limit in (4, 12, 20):
        items = list(task.items("test", limit=limit, seed=0))
        groups = {i["group"] for i in items}
        assert len(groups) == limit
        seen = {str(i["reference"]) for i in items}
        assert len(seen) == min(limit, len(labels))  # evenly over the labels
        per_variety: dict[str, set[str]] = {}
        for item in items:
            per_variety.setdefault(item["variety"], set()).add(item["group"])
        assert all(g == groups for g in per_variety.values())  # paired across varieties
    first = {i["group"] for i in task.items("test", limit=4, seed=0)}
    assert first == {i["group"] for i in task.items("test", limit=4, seed=0)}  # seeded
    assert first != {i["group"] for i in task.items("test", limit=4, seed=1)}


def test_tampered_data_file_is_refused_with_the_fix(mini_suite: Path) -> None:
    path = mini_suite / "data" / "intents.jsonl"
    path.write_text(path.read_text(encoding="utf-8").replace("svp", "stp"), encoding="utf-8")
    with pytest.raises(SuiteError, match=r"sha256 mismatch.*suites checksum"):
        load_suite(mini_suite)


def test_missing_file_and_card_fields_are_reported_together(mini_suite: Path) -> None:
    (mini_suite / "tasks" / "intents.yaml").unlink()
    card = mini_suite / "CARD.md"
    text = card.read_text(encoding="utf-8")
    card.write_text(text.replace("retention: Kept with the test suite.\n", ""), encoding="utf-8")
    with pytest.raises(SuiteError) as err:
        load_suite(mini_suite)
    assert len(err.value.problems) >= 3  # listed-but-missing, task file missing, card field
    message = str(err.value)
    assert "intents.yaml: listed in suite.yaml checksums but missing" in message
    assert "retention: Field required" in message


def test_card_without_front_matter_is_refused(mini_suite: Path) -> None:
    (mini_suite / "CARD.md").write_text("# a card with no fields\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="front matter"):
        load_suite(mini_suite)


def test_unknown_variety_duplicate_id_and_bad_label_are_all_reported(mini_suite: Path) -> None:
    def corrupt(items: list[dict]) -> None:  # type: ignore[type-arg]
        items[0]["variety"] = "ary_Latin"
        items[1]["id"] = items[2]["id"]
        items[3]["reference"] = "refnud"

    edit_items(mini_suite, "data/intents.jsonl", corrupt)
    with pytest.raises(SuiteError) as err:
        load_suite(mini_suite)
    message = str(err.value)
    assert "unknown variety 'ary_Latin' (did you mean 'ary_Latn'?)" in message
    assert "duplicate id" in message
    assert "reference 'refnud' is not a label" in message


def test_malformed_jsonl_names_the_line(mini_suite: Path) -> None:
    path = mini_suite / "data" / "intents.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4][:-3]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_checksums(mini_suite)
    with pytest.raises(Exception, match=r"intents.jsonl:5: invalid JSON"):
        load_suite(mini_suite)


def test_unknown_field_in_suite_yaml(mini_suite: Path) -> None:
    path = mini_suite / "suite.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "licence_typo: x\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="licence_typo: unknown field"):
        load_suite(mini_suite)


def test_a_deprecated_parser_field_loads_with_one_warning(mini_suite: Path) -> None:
    from click.testing import CliRunner

    from moroccan_eval.cli import main

    task_file = mini_suite / "tasks" / "intents.yaml"
    task_file.write_text(task_file.read_text(encoding="utf-8") + "parser: label\n",
                         encoding="utf-8")
    write_checksums(mini_suite)
    result = CliRunner().invoke(main, ["suites", "validate", str(mini_suite)])
    assert result.exit_code == 0, result.output
    assert f"warning: {task_file}: 'parser' is deprecated and ignored" in result.output
    assert "Traceback" not in result.output and "MoroccanEvalWarning" not in result.output


def test_item_checks_are_remembered_per_suite_content_and_registry(
        mini_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sealed suite whose items passed is not checked again (start-up); another
    content or another variety registry is checked afresh; a failure is never remembered."""
    from moroccan_eval import varieties
    from moroccan_eval.cache import default_cache_dir

    def markers() -> set[Path]:
        return set((default_cache_dir() / "verdicts" / "items").glob("*.ok"))

    load_suite(mini_suite)
    assert len(first := markers()) == 1
    load_suite(mini_suite)
    assert markers() == first
    extra = extra_variety_registry(tmp_path / "extra.yaml")
    monkeypatch.setenv("MOROCCAN_EVAL_VARIETIES", str(extra))
    varieties.registry.cache_clear()
    try:
        load_suite(mini_suite)
        assert len(markers()) == 2
    finally:
        monkeypatch.delenv("MOROCCAN_EVAL_VARIETIES")
        varieties.registry.cache_clear()
    edit_items(mini_suite, "data/intents.jsonl",
               lambda items: items[1].update(id=items[0]["id"]))  # a duplicate id
    for _ in range(2):
        with pytest.raises(SuiteError, match="duplicate id"):
            load_suite(mini_suite)
    assert len(markers()) == 2
