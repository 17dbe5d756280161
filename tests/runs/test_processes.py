"""``run --processes N``: in-process models answered by worker processes (real processes,
real pipes), written and scored here in suite order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, computed_predictions, computed_scores

from moroccan_eval.adapters import load_model
from moroccan_eval.adapters.base import ModelSpec
from moroccan_eval.cache import ResponseCache
from moroccan_eval.cli import main
from moroccan_eval.errors import ConfigError, MoroccanEvalWarning, RunError
from moroccan_eval.runs import processes as worker_processes
from moroccan_eval.runs.processes import CHUNK_ITEMS, dealt
from moroccan_eval.runs.runner import RunOptions, RunResult, run
from moroccan_eval.suites.loader import Suite, load_suite
from moroccan_eval.synthetic import make_suite

_WORKER_COMMAND = "moroccan_eval.runs.runner import work"


def python_model(callable_: str, **extra: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": callable_.split(":")[1], "adapter": "python",
                                     "callable": callable_, **extra})


def both_ways(tmp_path: Path, suite: Suite, specs: list[ModelSpec], processes: int,
              **options: object) -> tuple[list[RunResult], list[RunResult]]:
    """The same run in this process and with ``processes`` worker processes."""
    here = run(RunOptions(suite=suite, out_dir=tmp_path / "here", progress=False, **options),
               specs)  # type: ignore[arg-type]
    there = run(RunOptions(suite=suite, out_dir=tmp_path / "there", progress=False,
                           processes=processes, **options), specs)  # type: ignore[arg-type]
    return here, there


def usage(run_dir: Path) -> dict[str, tuple[object, ...]]:
    """Per task, what a run's usage adds up rather than measures."""
    tasks = json.loads((run_dir / "scores.json").read_text(encoding="utf-8"))["tasks"]
    return {name: tuple(task["usage"][key] for key in
                        ("n_requests", "n_errors", "tokens_in", "tokens_out", "cost_total",
                         "cost_per_1k"))
            for name, task in tasks.items()}


def test_dealt_gives_each_worker_every_countth_chunk() -> None:
    items = range(5 * CHUNK_ITEMS + 3)
    shares = [list(dealt(items, index, 3)) for index in range(3)]
    assert sorted(x for share in shares for x in share) == list(items)
    assert shares[1][:2] == [CHUNK_ITEMS, CHUNK_ITEMS + 1]
    assert shares[0][-1] == 4 * CHUNK_ITEMS - 1 and shares[2][-1] == len(items) - 1


@pytest.mark.filterwarnings("ignore:--processes 3 is more than")  # 3 on purpose, on 2 CPUs
def test_workers_write_the_run_one_process_writes(tmp_path: Path) -> None:
    """Several chunks per worker, a count of workers that does not divide them, errors,
    tokens and costs: the same records in the same order, the same scores and sums."""
    suite = load_suite(make_suite(tmp_path / "suite", 200, ("arb_Arab", "ary_Latn", "fra_Latn")))
    specs = [python_model("toy_models:oracle_3",
                          pricing={"input_per_mtok": 2.0, "output_per_mtok": 8.0}),
             python_model("toy_models:fails_on_sevens")]
    here, there = both_ways(tmp_path, suite, specs, 3)
    for ours, theirs in zip(here, there, strict=True):
        assert theirs.status == ours.status == "complete"
        assert len(computed_predictions(theirs.path)) == 600 > 2 * 3 * CHUNK_ITEMS / 3
        assert computed_predictions(theirs.path) == computed_predictions(ours.path)
        assert computed_scores(theirs.path) == computed_scores(ours.path)
        assert usage(theirs.path) == usage(ours.path)
        assert theirs.trivial == ours.trivial
    errors = [r["error"] for r in computed_predictions(there[1].path) if r["error"]]
    assert len(errors) == 3 * 38 and all("no sevens" in error for error in errors)


def test_workers_take_the_run_s_selection(tmp_path: Path) -> None:
    """A sample, some varieties, a perturbation, a seed and a shard reach the workers: the
    same items, perturbed the same way."""
    suite = load_suite(make_suite(tmp_path / "suite", 400, ("arb_Arab", "ary_Latn", "fra_Latn")))
    selection = {"limit": 300, "varieties": ["ary_Latn", "fra_Latn"], "perturb": "typos",
                 "seed": 3, "shard": "1/2"}
    [here], [there] = both_ways(tmp_path, suite, [python_model("toy_models:oracle_2")], 2,
                                **selection)
    records = computed_predictions(there.path)
    assert records == computed_predictions(here.path)
    assert CHUNK_ITEMS < len(records) < 600
    assert {r["variety"] for r in records} == {"ary_Latn", "fra_Latn"}
    assert computed_scores(there.path) == computed_scores(here.path)


def test_a_limit_starts_no_more_workers_than_it_has_chunks(tmp_path: Path) -> None:
    """4 workers asked: 100 items of each of 2 varieties fit in one chunk, so the run stays
    in this process; 200 of each make two chunks, so two workers start, not four."""
    suite = load_suite(make_suite(tmp_path / "suite", 300, ("arb_Arab", "ary_Latn")))

    def pids(limit: int) -> set[str]:
        [result] = run(RunOptions(suite=suite, out_dir=tmp_path / f"runs-{limit}",
                                  progress=False, processes=4, limit=limit,
                                  varieties=["arb_Arab", "ary_Latn"]),
                       [python_model("toy_models:pid")])
        return {record["output"] for record in computed_predictions(result.path)}

    assert pids(100) == {str(os.getpid())}
    workers = pids(200)
    assert len(workers) == 2 and str(os.getpid()) not in workers


def test_workers_run_every_task_of_a_shipped_suite_with_a_baseline(tmp_path: Path) -> None:
    """Two tasks one after the other, a built-in baseline trained in each worker; tasks of
    fewer items than a chunk (a worker with nothing to do)."""
    suite = load_suite("public-services")
    specs = [load_model("majority"), python_model("toy_models:keyword_router")]
    here, there = both_ways(tmp_path, suite, specs, 2, limit=10)
    for ours, theirs in zip(here, there, strict=True):
        assert set(json.loads((theirs.path / "scores.json").read_text())["tasks"]) == \
            {"priority", "routing"}
        assert computed_predictions(theirs.path) == computed_predictions(ours.path)
        assert computed_scores(theirs.path) == computed_scores(ours.path)
        assert 0 < len(computed_predictions(theirs.path)) < 2 * CHUNK_ITEMS


def test_workers_fill_and_read_the_response_cache(tmp_path: Path) -> None:
    suite = load_suite(make_suite(tmp_path / "suite", 300))
    spec = python_model("toy_models:oracle_1")
    cache_dir = tmp_path / "cache"
    [first] = run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False,
                             processes=2, cache_dir=cache_dir), [spec])
    cache = ResponseCache(cache_dir)
    assert cache.count() == 600, "every worker's answers reached the shared cache"
    cache.close()
    for processes in (2, 1):
        [again] = run(RunOptions(suite=suite, out_dir=tmp_path / f"again-{processes}",
                                 progress=False, processes=processes, cache_dir=cache_dir),
                      [spec])
        records = [json.loads(line) for line in
                   (again.path / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
        assert len(records) == 600 and all(record["cached"] for record in records)
        assert computed_predictions(again.path) == computed_predictions(first.path)


def test_a_worker_that_dies_fails_the_run_with_its_exit_code(tmp_path: Path) -> None:
    suite = load_suite(make_suite(tmp_path / "suite", 400))
    with pytest.raises(RunError, match=r"worker process \d of 2 stopped \(exit code 3\)"):
        run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False, processes=2),
            [python_model("toy_models:exits_on_message_300")])
    [run_dir] = (tmp_path / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "interrupted"  # never read as complete


def test_a_worker_s_own_error_reaches_the_user_as_it_is(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The module of a model imports here but not in a worker (an environment difference):
    the worker's error (with its class: a ConfigError exits 2) names the callable; the
    workers found the module on this process's sys.path."""
    (tmp_path / "here_only.py").write_text(textwrap.dedent("""
        import os
        if os.getpid() != int(os.environ["HERE_ONLY_PID"]):
            raise ImportError("not in this process")
        def answer(request):
            return "refund"
    """), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HERE_ONLY_PID", str(os.getpid()))
    suite = load_suite(make_suite(tmp_path / "suite", 20))
    with pytest.raises(ConfigError, match="callable 'here_only:answer' cannot be imported: "
                                          "not in this process"):
        run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False, processes=2),
            [python_model("here_only:answer")])


def test_a_script_without_a_main_guard_runs_with_workers(tmp_path: Path) -> None:
    """Workers are fresh interpreters that do not re-run the caller's script (as
    multiprocessing's spawn would, and fail)."""
    suite = make_suite(tmp_path / "suite", 300)
    script = tmp_path / "evaluate.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from pathlib import Path
        from moroccan_eval.adapters.base import ModelSpec
        from moroccan_eval.runs.runner import RunOptions, run
        from moroccan_eval.suites.loader import load_suite
        spec = ModelSpec.model_validate({{"name": "instant", "adapter": "python",
                                         "callable": "toy_models:instant"}})
        [result] = run(RunOptions(suite=load_suite({str(suite)!r}), processes=2,
                                  out_dir=Path({str(tmp_path / "runs")!r}), progress=False),
                       [spec])
        print("ran", result.status)
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ran complete"]
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_sigterm_stops_the_workers_too(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "suite", 2000)
    model = tmp_path / "sleepy.yaml"
    model.write_text("name: sleepy\nadapter: python\ncallable: toy_models:sleepy\n",
                     encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moroccan_eval", "run", "--suite", str(suite), "--model",
         str(model), "--processes", "2", "--out", str(tmp_path / "runs"), "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    predictions = tmp_path / "runs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            p.stat().st_size for p in predictions.glob("*/predictions.jsonl")):
        time.sleep(0.05)
    workers = _workers_of(proc.pid)
    assert len(workers) == 2
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "interrupted by SIGTERM" in err
    assert "Traceback" not in err
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "Z" not in (Path(f"/proc/{pid}/stat").read_text().split()[2])]
    [run_dir] = predictions.iterdir()
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"


def _workers_of(parent: int) -> list[int]:
    """The worker processes ``parent`` started (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and _WORKER_COMMAND.encode() in command:
            found.append(int(stat.parent.name))
    return found


def test_what_processes_refuse_or_warn_about(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    suite = load_suite(make_suite(tmp_path / "suite", 4))
    with pytest.raises(ConfigError, match="--max-cost cannot cap models run in worker"):
        run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False, processes=2,
                       max_cost=1.0), [python_model("toy_models:instant")])
    assert not (tmp_path / "runs").exists()
    with pytest.warns(MoroccanEvalWarning, match="--processes: no model here is answered"):
        [alone] = run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False,
                                 processes=2), [python_model("toy_models:slow_async")])
    assert alone.status == "complete"
    monkeypatch.setattr(worker_processes, "usable_cpus", lambda: 1)  # as on a one-CPU machine
    with pytest.warns(MoroccanEvalWarning, match="--processes 2 is more than the 1 CPU"):
        [shared] = run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False,
                                  processes=2), [python_model("toy_models:instant")])
    assert shared.status == "complete"
    result = CliRunner().invoke(main, ["run", "--suite", str(suite.path), "--model",
                                       "majority", "--processes", "2", "--executor", "ray"])
    assert result.exit_code == 2 and "--processes goes with the local executor" in result.output
