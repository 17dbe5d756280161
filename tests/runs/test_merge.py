"""Sharded runs (``run --shard i/n``) and ``merge``: the merged run is the unsharded one."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import computed_predictions, computed_scores

from moroccan_eval.cli import main
from moroccan_eval.leaderboard.submission import run_problems
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.synthetic import make_suite


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def run_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return make_suite(tmp_path / "suite", 60, ("arb_Arab", "ary_Latn", "ary_Arab"))


def test_merged_shards_equal_the_unsharded_run(tmp_path: Path, suite: Path) -> None:
    code, out = invoke("run", "--suite", str(suite), "--model", "char-ngram", "--concurrency",
                       "1", "--out", str(tmp_path / "whole"))
    assert code == 0, out
    [whole] = run_dirs(tmp_path / "whole")
    for index in range(3):
        code, out = invoke("run", "--suite", str(suite), "--model", "char-ngram",
                           "--shard", f"{index}/3", "--out", str(tmp_path / "shards"))
        assert code == 0 and "shard:" in out, out
    shards = run_dirs(tmp_path / "shards")
    groups = [{p["group"] for p in computed_predictions(shard)} for shard in shards]
    assert all(groups), "every shard holds some groups"
    assert sum(map(len, groups)) == len(set().union(*groups)) == 60, "disjoint, complete"
    for shard in shards:  # a group's varieties stay together, so deltas stay paired
        varieties = {}
        for p in computed_predictions(shard):
            varieties.setdefault(p["group"], set()).add(p["variety"])
        assert all(len(v) == 3 for v in varieties.values())

    code, out = invoke("merge", *map(str, reversed(shards)), "--suite", str(suite),
                       "--out", str(tmp_path / "merged"))
    assert code == 0, out
    [merged] = run_dirs(tmp_path / "merged")
    assert computed_predictions(merged) == computed_predictions(whole)
    assert computed_scores(merged) == computed_scores(whole)
    manifest = load_run(merged).manifest
    assert manifest.selection.shard is None and manifest.status == "complete"
    assert "shard:" not in out

    code, out = invoke("verify", str(merged), "--suite", str(suite))
    assert code == 0 and "VERIFIED" in out, out
    code, out = invoke("verify", str(shards[1]), "--suite", str(suite))
    assert code == 0 and "VERIFIED" in out, out
    assert any("join the shards first" in p for p in run_problems(load_run(shards[0])))
    assert not any("shard" in p for p in run_problems(load_run(merged)))


def test_merge_names_every_reason_the_runs_are_not_one_runs_shards(
        tmp_path: Path, suite: Path) -> None:
    for index, model in ((0, "char-ngram"), (0, "char-ngram"), (1, "majority")):
        code, out = invoke("run", "--suite", str(suite), "--model", model,
                           "--shard", f"{index}/3", "--out", str(tmp_path / "shards"))
        assert code == 0, out
    invoke("run", "--suite", str(suite), "--model", "char-ngram", "--out",
           str(tmp_path / "whole"))
    given = [*run_dirs(tmp_path / "shards"), *run_dirs(tmp_path / "whole")]
    code, out = invoke("merge", *map(str, given), "--suite", str(suite), "--out",
                       str(tmp_path / "merged"))
    assert code != 0 and "Traceback" not in out
    assert "already given" in out and "in model" in out
    assert "not a shard (made without --shard)" in out and "shard 2/3 is missing" in out
    assert not (tmp_path / "merged").exists() or not any((tmp_path / "merged").iterdir())


@pytest.mark.parametrize("bad", ["3/3", "1", "a/b", "-1/2", "1/0"])
def test_a_bad_shard_is_refused_before_anything_runs(tmp_path: Path, suite: Path,
                                                     bad: str) -> None:
    code, out = invoke("run", "--suite", str(suite), "--model", "majority", "--shard", bad,
                       "--out", str(tmp_path / "runs"))
    assert code == 2 and "--shard" in out, out
    assert not (tmp_path / "runs").exists()
