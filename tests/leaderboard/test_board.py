"""The board: rank bands on constructed cases, and a board built from real submissions."""

from __future__ import annotations

import shutil
from pathlib import Path

from moroccan_eval.leaderboard.board import Cell, board_from, rank_bands
from moroccan_eval.leaderboard.package import package

from .conftest import make_run, write_info


def test_overlapping_intervals_share_a_band_and_bands_follow_the_order() -> None:
    cells = [
        Cell(0.60, (0.55, 0.65)),  # C: 0.65 < A's low 0.75 -> leads band 2
        Cell(0.80, (0.75, 0.85)),  # A: best, leads band 1
        Cell(0.72, (0.66, 0.78)),  # B: 0.78 reaches A's low 0.75 -> band 1
        Cell(0.40, (0.35, 0.45)),  # E: 0.45 < C's low 0.55 -> leads band 3
        Cell(0.50, (0.45, 0.56)),  # D: 0.56 reaches C's low 0.55 -> band 2
        Cell(None),                # no score: no band
    ]
    assert rank_bands(cells) == [2, 1, 1, 3, 2, None]


def test_a_point_without_interval_is_its_own_interval() -> None:
    assert rank_bands([Cell(0.9), Cell(0.9), Cell(0.8)]) == [1, 1, 2]
    assert rank_bands([]) == []


def test_a_board_from_two_real_submissions(tmp_path: Path, installed_suite: Path) -> None:
    subs = tmp_path / "submissions"
    for model, size in (("char-ngram", 0.001), ("majority", 0.0001)):
        out = tmp_path / model
        run_dir = make_run(out, installed_suite, model=model)
        package([run_dir], write_info(out / "s.yaml", model=model, parameters_b=size), subs)
    broken = subs / "broken"
    shutil.copytree(next(subs.iterdir()), broken)
    (broken / "SHA256SUMS").write_text("")
    board, reports = board_from([subs])
    assert len(reports) == 3 and set(board.excluded) == {"broken"}
    assert "checksums" in board.excluded["broken"]
    [suite] = board.suites.values()
    assert suite.name == "mini" and suite.tasks["intents"][0] == "accuracy"
    assert sorted(suite.varieties) == ["arb_Arab", "ary_Latn", "fra_Latn"]
    rows = board.rows("mini")
    assert rows[0][0].info.model == "char-ngram"  # the better headline first
    for entry, row in rows:
        task = row.tasks["intents"]
        assert row.headline.value == task.quality.value  # one task: headline = its quality
        assert row.band is not None and task.band is not None
        assert set(task.varieties) == set(suite.varieties)
        assert entry.files[0] == "SHA256SUMS" and "submission.yaml" in entry.files
    assert board.pareto("mini", "cost")  # offline baselines: cost 0, the best one leads
    smallest = board.smallest_above("mini", "fra_Latn", 0.0)
    assert smallest is not None and smallest.info.model == "majority"  # 0.0001B < 0.001B


def test_pareto_front_is_the_set_of_undominated_points() -> None:
    """The one-sweep front (a board charts a thousand points) against the definition:
    no other point at most as costly and at least as good, and better on one axis."""
    import random

    from moroccan_eval.analysis.summary import pareto_front

    def by_definition(points: list[tuple[float, float]]) -> set[int]:
        return {i for i, (x, y) in enumerate(points) if not any(
            x2 <= x and y2 >= y and (x2 < x or y2 > y)
            for j, (x2, y2) in enumerate(points) if j != i)}

    rng = random.Random(7)
    for _ in range(2000):  # few distinct values: ties on either axis and equal points
        points = [(rng.choice([0.0, 0.5, 1.0, 2.0]), rng.choice([0.2, 0.6, 0.9]))
                  for _ in range(rng.randint(0, 10))]
        assert pareto_front(points) == by_definition(points), points
    assert pareto_front([(1.0, 0.5), (1.0, 0.5), (2.0, 0.9)]) == {0, 1, 2}
    assert pareto_front([(1.0, 0.5), (1.0, 0.6), (0.5, 0.6)]) == {2}
