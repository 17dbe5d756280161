"""The error analysis's worst items: ranked on disk (a private SQLite database), they are
the items a plain count over every record would pick, and nothing else."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict

import pytest
from toy_models import oracle_runs

from moroccan_eval.analysis.summary import summarize
from moroccan_eval.errors import RunError
from moroccan_eval.report.views import WORST_ITEMS, read_predictions, task_views
from moroccan_eval.report.worst import WrongAnswers
from moroccan_eval.runs.rundir import Run, load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    root = tmp_path_factory.mktemp("worst")
    runs = [load_run(p) for p in oracle_runs(root / "runs", 4)]
    # one model answers again: each item's later record replaces its earlier one
    replaced = root / "replaced"
    shutil.copytree(runs[1].path, replaced)
    path = replaced / "predictions.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    again = []
    for line in lines[::3]:
        record = json.loads(line)
        right = not record["correct"]
        again.append(json.dumps({**record, "correct": right,
                                 "parsed": record["reference"] if right else "__none__"}))
    path.write_text("\n".join([*lines, *again]) + "\n", encoding="utf-8")
    return [runs[0], load_run(replaced), *runs[2:]]


def _plainly(runs: list[Run]) -> dict[str, list[tuple[str, int, list[str]]]]:
    """Per variety: (id, models, models wrong) of the items most models got wrong, from
    every record in memory (each model's last record of an item)."""
    last: dict[tuple[str, str], dict] = {}  # type: ignore[type-arg]
    for run in runs:
        for record in run.predictions():
            last[(run.model, record["id"])] = record
    answers: dict[str, list[tuple[str, dict]]] = defaultdict(list)  # type: ignore[type-arg]
    for run in runs:  # in the report's order of models
        for (model, item), record in last.items():
            if model == run.model:
                answers[item].append((model, record))
    by_variety: dict[str, list[tuple[str, int, list[str]]]] = defaultdict(list)
    for item, given in answers.items():
        wrong = [model for model, record in given if not record["correct"]]
        if wrong:
            by_variety[given[0][1]["variety"]].append((item, len(given), wrong))
    return {variety: sorted(items, key=lambda i: (-len(i[2]), i[0]))[:WORST_ITEMS]
            for variety, items in by_variety.items()}


def test_the_worst_items_are_those_a_plain_count_picks(runs: list[Run]) -> None:
    views = task_views(summarize(runs))
    read_predictions(views)
    [view] = views
    order = [model.name for model, _ in view.rows]
    expected = _plainly(sorted(runs, key=lambda run: order.index(run.model)))
    shown = {variety: [(item["id"], item["n_models"], [w["model"] for w in item["wrong"]])
                       for item in items] for variety, items in view.worst.items()}
    assert shown == expected
    assert list(view.worst) == [v for v in view.varieties if v in expected]
    assert any(len(items) == WORST_ITEMS for items in shown.values())
    assert all(n == len(runs) for items in shown.values() for _, n, _ in items)
    item = next(iter(view.worst.values()))[0]
    assert item["reference"] and item["input"] and item["wrong"][0]["answer"]


def test_ties_are_broken_by_id_and_a_later_answer_replaces_an_earlier_one() -> None:
    answers = WrongAnswers()
    try:
        for run in range(3):
            for i, item in enumerate(["b", "a", "é", "c", "z"]):
                answers.add(0, item, run, i + 1, "ary_Arab", wrong=item != "z" or run == 0)
        answers.add(0, "c", 2, 9, "ary_Arab", wrong=False)  # model 2 answers c again
        answers.add(1, "a", 0, 7, "fra_Latn", wrong=True)  # another view
        chosen = answers.worst(3)
        assert [(c.view, c.id, c.n_models) for c in chosen] == [
            (0, "a", 3), (0, "b", 3), (0, "é", 3), (1, "a", 1)]
        assert answers.lines(chosen[:1] + chosen[3:]) == {
            0: {2: 0, 7: 1}, 1: {2: 0}, 2: {2: 0}}
    finally:
        answers.close()


def test_a_full_disk_while_ranking_is_one_clear_error() -> None:
    answers = WrongAnswers()
    answers._db.execute("PRAGMA max_page_count = 4")  # SQLite's own "disk is full"
    with pytest.raises(RunError, match=r"the report ranks items in a temporary file in .*"
                                       r"set TMPDIR to a folder with free space"):
        for i in range(50_000):
            answers.add(0, f"item-{i}", 0, i, "ary_Arab", wrong=True)
    answers.close()
