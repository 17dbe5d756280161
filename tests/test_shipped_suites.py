"""Every shipped suite: valid, parallel in all seven varieties, and runnable by the baselines."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from moroccan_eval.adapters import load_model
from moroccan_eval.runner import RunOptions, run
from moroccan_eval.suites import Suite, load_suite, suite_dirs
from moroccan_eval.varieties import core_codes

SUITES = sorted(suite_dirs())


@pytest.fixture(scope="module", params=SUITES)
def suite(request: pytest.FixtureRequest) -> Suite:
    return load_suite(request.param)


def test_every_task_has_every_variety_in_parallel_groups(suite: Suite) -> None:
    for task in suite.tasks.values():
        ids = task.column("id")
        assert len(ids) == len(set(ids))
        for split in ("test", "train"):
            assert task.varieties(split) == core_codes(), (task.name, split)
        labels: dict[tuple[str, str], set[str]] = defaultdict(set)
        members: dict[tuple[str, str], set[str]] = defaultdict(set)
        for split, group, variety, reference in zip(
                task.column("split"), task.column("group"), task.column("variety"),
                task.column("reference"), strict=True):
            labels[(split, group)].add(str(reference))
            members[(split, group)].add(variety)
        if task.name != "variety":  # there the label *is* the variety
            assert all(len(v) == 1 for v in labels.values()), task.name
        assert all(v == set(core_codes()) for v in members.values()), task.name
        assert set(task.column("reference")) <= set(task.labels)


def test_cards_carry_generated_counts(suite: Suite) -> None:
    from moroccan_eval.suites import STATS_BEGIN, stats_markdown, suite_stats

    card = (suite.path / "CARD.md").read_text(encoding="utf-8")
    assert STATS_BEGIN in card
    assert stats_markdown(suite_stats(suite)) in card, "run suites stats --update-card"


def test_baselines_run_on_every_task(suite: Suite, tmp_path: Path) -> None:
    results = run(RunOptions(suite=suite, out_dir=tmp_path, limit=4, progress=False),
                  [load_model("majority"), load_model("char-ngram")])
    for result in results:
        assert result.status == "complete"
        assert set(result.scores["tasks"]) == set(suite.tasks)
        for entry in result.scores["tasks"].values():
            assert entry["usage"]["n_errors"] == 0
            assert set(entry["varieties"]) == set(core_codes())
