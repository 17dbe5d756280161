"""Every shipped suite: valid, parallel in all seven varieties, and runnable by the baselines."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from moroccan_eval.adapters import load_model
from moroccan_eval.report.build import build_report
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import Suite, load_suite, suite_dirs
from moroccan_eval.suites.schema import SHADOW_SPLITS
from moroccan_eval.varieties import core_codes

SUITES = sorted(suite_dirs())


@pytest.fixture(scope="module", params=SUITES)
def suite(request: pytest.FixtureRequest) -> Suite:
    return load_suite(request.param)


def test_every_task_has_its_varieties_in_parallel_groups(suite: Suite) -> None:
    for task in suite.tasks.values():
        ids = task.column("id")
        assert len(ids) == len(set(ids))
        # classification: all seven varieties; translation: every source variety but the
        # target's (to_msa has no MSA source), and Darija's two scripts for transliteration
        expected = core_codes() if task.spec.type == "classification" else task.varieties("test")
        assert len(expected) >= 2
        for split in ("test", "train"):
            assert task.varieties(split) == expected, (task.name, split)
        labels: dict[tuple[str, str], set[str]] = defaultdict(set)
        members: dict[tuple[str, str], set[str]] = defaultdict(set)
        for split, group, variety, reference in zip(
                task.column("split"), task.column("group"), task.column("variety"),
                task.column("reference"), strict=True):
            labels[(split, group)].add(_label(task.spec.type, reference))
            members[(split, group)].add(variety)
        if task.spec.type in ("tool_call", "injection") or (
                task.spec.type == "classification" and task.name != "variety"):
            assert all(len(v) == 1 for v in labels.values()), task.name  # parallel labels
        # a shadow split (test_noisy) re-types some varieties of groups of the split it shadows
        assert all(v == set(expected) for (split, _), v in members.items()
                   if split not in SHADOW_SPLITS), task.name
        assert all(v <= members[(SHADOW_SPLITS[split], group)] for (split, group), v
                   in members.items() if split in SHADOW_SPLITS), task.name
        if task.spec.type == "classification":
            assert set(task.column("reference")) <= set(task.labels)


def _label(task_type: str, reference: Any) -> str:
    """What must be equal across the varieties of a group: the label, or for agent and
    security items the expected behaviour (or attack) and the tools expected."""
    if task_type in ("tool_call", "injection"):
        return "/".join([str(reference.get("behaviour") or reference.get("attack")),
                         *(str(call["name"]) for call in reference["calls"])])
    return str(reference)


def test_cards_carry_generated_counts(suite: Suite) -> None:
    from moroccan_eval.suites.stats import STATS_BEGIN, stats_markdown, suite_stats

    card = (suite.path / "CARD.md").read_text(encoding="utf-8")
    assert STATS_BEGIN in card
    assert stats_markdown(suite_stats(suite)) in card, "run suites stats --update-card"


def test_baselines_run_on_every_task_and_report(suite: Suite, tmp_path: Path) -> None:
    paths = []
    by_type: dict[str, list[str]] = {}
    for name, task in suite.tasks.items():
        by_type.setdefault(task.spec.type, []).append(name)
    for tasks in by_type.values():
        models = suite.tasks[tasks[0]].task_type.baselines
        if not models:
            continue
        results = run(RunOptions(suite=suite, out_dir=tmp_path, tasks=tasks, limit=4,
                                 progress=False), [load_model(m) for m in models])
        for result in results:
            assert result.status == "complete"
            assert set(result.scores.to_json()["tasks"]) == set(tasks)
            for name, entry in result.scores.to_json()["tasks"].items():
                assert entry["usage"]["n_errors"] == 0
                assert set(entry["varieties"]) == set(suite.tasks[name].varieties("test"))
                value = entry["overall"][entry["metrics"][0]]["value"]
                assert 0 <= value <= 1
            paths.append(result.path)
    if not paths:  # no offline baseline for speech; tests/test_asr.py covers it over HTTP
        assert {t.spec.type for t in suite.tasks.values()} == {"asr"}
        return
    html = build_report([load_run(p) for p in paths])
    for name in suite.tasks:
        assert f"<bdi>{name}</bdi>" in html
