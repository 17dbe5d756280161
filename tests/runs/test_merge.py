"""Sharded runs (``run --shard i/n``) and ``merge``: the merged run is the unsharded one."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import computed_predictions, computed_scores

from moroccan_eval.cli import main
from moroccan_eval.leaderboard.submission import run_problems
from moroccan_eval.runs.merge import merge_runs
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.suites.loader import load_suite
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


def _python_model(path: Path, callable_name: str, concurrency: int) -> Path:
    path.write_text(f"name: toy\nadapter: python\ncallable: toy_models:{callable_name}\n"
                    f"limits: {{concurrency: {concurrency}}}\n", encoding="utf-8")
    return path


def _in_file_order(run_dir: Path) -> list[str]:
    return [p["id"] for p in computed_predictions(run_dir)]


def test_merge_puts_shards_answered_out_of_order_in_suite_order(tmp_path: Path,
                                                                 suite: Path) -> None:
    whole_model = _python_model(tmp_path / "one.yaml", "jittery", 1)
    code, out = invoke("run", "--suite", str(suite), "--model", str(whole_model),
                       "--out", str(tmp_path / "whole"))
    assert code == 0, out
    [whole] = run_dirs(tmp_path / "whole")
    model = _python_model(tmp_path / "many.yaml", "jittery", 16)
    for index in range(2):
        code, out = invoke("run", "--suite", str(suite), "--model", str(model), "--no-cache",
                           "--shard", f"{index}/2", "--out", str(tmp_path / "shards"))
        assert code == 0, out
    shards = run_dirs(tmp_path / "shards")
    suite_order = _in_file_order(whole)
    assert any(_in_file_order(shard) != [i for i in suite_order if i in _in_file_order(shard)]
               for shard in shards), "the shards' answers came back in another order"

    code, out = invoke("merge", *map(str, shards), "--suite", str(suite),
                       "--out", str(tmp_path / "merged"))
    assert code == 0, out
    [merged] = run_dirs(tmp_path / "merged")
    assert computed_predictions(merged) == computed_predictions(whole)
    assert computed_scores(merged) == computed_scores(whole)


def _merge_peak(tmp_path: Path, groups: int) -> int:
    """Peak memory Python allocated (tracemalloc) while merging the 2 shards of a run of
    ``groups`` x 2 items."""
    suite = make_suite(tmp_path / f"suite-{groups}", groups)
    model = _python_model(tmp_path / "instant.yaml", "instant", 8)
    shards = tmp_path / f"shards-{groups}"
    for index in range(2):
        code, out = invoke("run", "--suite", str(suite), "--model", str(model),
                           "--shard", f"{index}/2", "--out", str(shards))
        assert code == 0, out
    loaded = load_suite(suite)
    merge_runs(run_dirs(shards), tmp_path / f"warm-{groups}", loaded)  # imports, caches
    tracemalloc.start()
    try:
        merged = merge_runs(run_dirs(shards), tmp_path / f"merged-{groups}", loaded)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(computed_predictions(merged)) == 2 * groups
    return peak


def test_merge_streams_its_shards_in_flat_memory(tmp_path: Path) -> None:
    small, large = _merge_peak(tmp_path, 250), _merge_peak(tmp_path, 2500)
    # holding the records took 1.1 kB each (4,500 more: 5.0 MB more); what scoring keeps in
    # memory before it spills to disk (8,192 values) about 0.2 kB each (0.9 MB)
    assert large - small < 2_500_000, (small, large)


@pytest.mark.parametrize("damage, message", [
    ("interrupt", "run status is 'interrupted'"),
    ("drop", "has no prediction for item"),
    ("repeat", "not items of their selection, or repeat one"),
])
def test_a_shard_with_predictions_missing_or_extra_is_refused_and_nothing_is_written(
        tmp_path: Path, suite: Path, damage: str, message: str) -> None:
    shard = _two_shards(tmp_path, suite)[1]
    if damage == "interrupt":
        _set_status(shard, "interrupted")
    else:
        lines = (shard / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
        lines = lines[:5] + lines[6:] if damage == "drop" else lines + lines[-1:]
        (shard / "predictions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out = invoke("merge", *map(str, run_dirs(tmp_path / "shards")), "--suite",
                       str(suite), "--out", str(tmp_path / "merged"))
    assert code != 0 and message in out and "Traceback" not in out, out
    assert not (tmp_path / "merged").exists() or not any((tmp_path / "merged").iterdir())


def _two_shards(tmp_path: Path, suite: Path) -> list[Path]:
    for index in range(2):
        code, out = invoke("run", "--suite", str(suite), "--model", "majority",
                           "--shard", f"{index}/2", "--out", str(tmp_path / "shards"))
        assert code == 0, out
    return run_dirs(tmp_path / "shards")


def _set_status(run_dir: Path, status: str) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "status": status}),
                                           encoding="utf-8")


def test_a_shard_the_spend_cap_stopped_stops_the_merged_run(tmp_path: Path,
                                                            suite: Path) -> None:
    shards = _two_shards(tmp_path, suite)
    _set_status(shards[1], "stopped: spend cap reached")
    code, out = invoke("merge", *map(str, shards), "--suite", str(suite),
                       "--out", str(tmp_path / "merged"))
    assert code == 0, out
    [merged] = run_dirs(tmp_path / "merged")
    shard = load_run(shards[1]).manifest.selection.shard
    assert load_run(merged).manifest.status == f"stopped: spend cap reached (shard {shard})"
