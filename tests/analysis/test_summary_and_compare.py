"""Summaries, Pareto fronts, the recommendation and paired comparison, on real runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from toy_models import oracle_runs

from moroccan_eval.analysis.compare import compare_runs
from moroccan_eval.analysis.summary import pareto_front, summarize
from moroccan_eval.errors import ConfigError, RunError
from moroccan_eval.runs.rundir import Run, load_run
from moroccan_eval.stats import counted


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    return [load_run(p) for p in oracle_runs(tmp_path_factory.mktemp("oracles"), 3)]


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = [(1.0, 0.5), (2.0, 0.7), (2.0, 0.6), (3.0, 0.7), (0.5, 0.2)]
    assert pareto_front(points) == {0, 1, 4}
    assert pareto_front([(1.0, 0.5), (1.0, 0.5)]) == {0, 1}  # ties dominate nobody


def test_summaries_order_quality_and_cost(runs: list[Run]) -> None:
    models = {m.name: m for m in summarize(runs)}
    assert set(models) == {"oracle-0", "oracle-1", "oracle-2"}
    best, worst = models["oracle-0"], models["oracle-2"]
    assert best.quality() > worst.quality()
    assert best.cost_per_1k("MAD") > worst.cost_per_1k("MAD")
    assert best.cost_per_1k("MAD") == pytest.approx(10 * best.cost_per_1k("USD"))
    assert best.parameters_b == 70.0
    task = best.tasks[0]
    assert task.reference == "arb_Arab" and task.varieties["arb_Arab"].delta is None
    assert task.varieties["zgh_Tfng"].delta is not None


def test_reference_override_recomputes_deltas(runs: list[Run]) -> None:
    [default] = [m for m in summarize(runs[:1])]
    [moved] = [m for m in summarize(runs[:1], reference="fra_Latn")]
    assert moved.tasks[0].reference == "fra_Latn"
    assert moved.tasks[0].varieties["fra_Latn"].delta is None
    assert default.tasks[0].varieties["fra_Latn"].delta is not None
    assert moved.tasks[0].varieties["arb_Arab"].delta is not None
    assert moved.tasks[0].overall == default.tasks[0].overall  # only deltas change
    with pytest.raises(ConfigError, match="unknown variety 'fra'"):
        summarize(runs[:1], reference="fra")


def test_compare_runs_pairs_items_and_tests_significance(runs: list[Run]) -> None:
    same = compare_runs(runs[0], runs[0])
    assert all(d.delta == 0 and not d.significant for d in same)
    diffs = {(d.variety, d.metric): d for d in compare_runs(runs[0], runs[2])}
    overall = diffs[("all", "accuracy")]
    assert overall.n_pairs == 12 * 7
    assert overall.delta == pytest.approx(overall.b - overall.a, abs=2e-6)  # each rounded to 1e-6
    assert overall.delta < 0 and overall.ci is not None and overall.ci[0] <= overall.delta


def test_compare_refuses_runs_of_different_suites(runs: list[Run], tmp_path: Path,
                                                   mini_suite: Path) -> None:
    from moroccan_eval.adapters import load_model
    from moroccan_eval.runs.runner import RunOptions, run
    from moroccan_eval.suites.loader import load_suite

    [other] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path, progress=False),
                  [load_model("majority")])
    with pytest.raises(RunError, match="different suites"):
        compare_runs(runs[0], load_run(other.path))


def test_lower_is_better_metrics_are_oriented(runs: list[Run]) -> None:
    import dataclasses

    task = summarize(runs[:1])[0].tasks[0]
    errors = dataclasses.replace(task, higher_is_better=False)  # e.g. attack success rate
    score = task.overall
    assert score.value is not None and score.ci is not None
    assert errors.quality(score) == pytest.approx(1 - score.value)
    assert errors.quality(score, strict=True) == pytest.approx(1 - score.ci[1])
    assert task.quality(score, strict=True) == pytest.approx(score.ci[0])


def _copy_run(run: Run, to: Path, keep: Callable[[int, str], bool],
              extra: Sequence[str] = ()) -> Run:
    """A copy of ``run`` whose predictions are the lines ``keep`` says yes to (by number
    and text), then ``extra`` lines."""
    shutil.copytree(run.path, to)
    path = to / "predictions.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("".join(f"{line}\n" for i, line in enumerate(lines) if keep(i, line))
                    + "".join(f"{line}\n" for line in extra), encoding="utf-8")
    return load_run(to)


def test_compare_pairs_only_the_items_both_runs_hold(runs: list[Run], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An item one run lacks is left out of both sides; a record replaced by a later one
    of the same item counts as the later one; and counting on disk a few records at a time
    gives the same numbers as in memory."""
    lines = (runs[2].path / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    replaced = json.dumps({**first, "parsed": "__nothing__", "output": "__nothing__",
                           "correct": False}, ensure_ascii=False)
    partial = _copy_run(runs[2], tmp_path / "b", lambda i, _: i % 3 != 1, [replaced])
    kept_ids = {json.loads(line)["id"] for i, line in enumerate(lines) if i % 3 != 1}
    a_shared = _copy_run(runs[0], tmp_path / "a",
                         lambda _, line: json.loads(line)["id"] in kept_ids)
    diffs = compare_runs(runs[0], partial)
    assert diffs == compare_runs(a_shared, partial)
    overall = {d.metric: d for d in diffs if d.variety == "all"}["accuracy"]
    assert overall.n_pairs == len(kept_ids) < 12 * 7
    without = compare_runs(runs[0], _copy_run(runs[2], tmp_path / "c", lambda i, _: i % 3 != 1))
    assert {d.metric: d for d in without if d.variety == "all"}["accuracy"].b != overall.b

    monkeypatch.setattr(counted, "SPILL_RECORDS", 8)
    monkeypatch.setattr(counted, "PARTITION_RECORDS", 16)
    assert compare_runs(runs[0], partial) == diffs
