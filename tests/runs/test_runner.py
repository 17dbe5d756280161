from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import toy_models
from conftest import REPO, write_model

from moroccan_eval.adapters import build_adapter, load_model
from moroccan_eval.mockserver import MockServer
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.synthetic import make_suite


def predictions(run_dir: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in
            (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]


def test_rerun_is_served_from_the_cache(tmp_path: Path, server: MockServer,
                                        mini_suite: Path) -> None:
    spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url)))
    options = RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                         cache_dir=tmp_path / "cache", progress=False)
    [first] = run(options, [spec])
    assert server.requests == 12 and first.status == "complete"
    [second] = run(options, [spec])
    assert server.requests == 12  # zero new requests
    assert all(p["cached"] for p in predictions(second.path))
    strip = lambda ps: sorted((p["id"], p["output"], p["parsed"]) for p in ps)  # noqa: E731
    assert strip(predictions(first.path)) == strip(predictions(second.path))
    assert first.scores.to_json()["tasks"] == second.scores.to_json()["tasks"] | {
        "intents": {**second.scores.to_json()["tasks"]["intents"],
                    "usage": first.scores.to_json()["tasks"]["intents"]["usage"]}}
    manifest = json.loads((second.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "complete" and manifest["suite"]["name"] == "mini"


def test_failed_items_are_recorded_not_dropped(tmp_path: Path, server: MockServer,
                                               mini_suite: Path) -> None:
    server.behaviour.failures = [500, 500, 500]
    spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url,
                                      limits={"concurrency": 1, "retries": 0})))
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              progress=False), [spec])
    preds = predictions(result.path)
    assert len(preds) == 12
    failed = [p for p in preds if p["error"]]
    assert len(failed) == 3 and all("HTTP 500" in p["error"] for p in failed)
    assert all(p["correct"] is False and p["output"] is None for p in failed)
    usage = result.scores.to_json()["tasks"]["intents"]["usage"]
    assert usage["n_errors"] == 3 and usage["n_requests"] == 12


def test_spend_cap_stops_sending(tmp_path: Path, server: MockServer, mini_suite: Path) -> None:
    # every request costs ~1 MAD: ~10 prompt tokens at 100,000 MAD per 1M tokens
    spec = load_model(str(write_model(
        tmp_path / "m.yaml", server.base_url, limits={"concurrency": 1},
        pricing={"input_per_mtok": 100_000, "currency": "MAD"})))
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              max_cost=3.0, currency="MAD", progress=False), [spec])
    assert result.status == "stopped: spend cap reached"
    assert server.requests < 12
    preds = predictions(result.path)
    assert len(preds) == 12
    skipped = [p for p in preds if p.get("skipped")]
    assert len(skipped) == 12 - server.requests
    assert load_run(result.path).manifest.status.startswith("stopped")


def test_the_spend_cap_counts_hosting_time(tmp_path: Path, server: MockServer,
                                           mini_suite: Path) -> None:
    """A self-hosted model costs its hosting_per_hour while it runs: 36,000 MAD/h is 10 MAD/s,
    so a 1 MAD cap stops sending after about 0.1 s of 0.05 s requests."""
    server.behaviour.latency_s = 0.05
    spec = load_model(str(write_model(
        tmp_path / "m.yaml", server.base_url, limits={"concurrency": 1},
        pricing={"hosting_per_hour": 36_000, "currency": "MAD"})))
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              max_cost=1.0, currency="MAD", progress=False), [spec])
    assert result.status == "stopped: spend cap reached"
    assert 1 <= server.requests < 12


def test_hosting_cost_is_the_measured_wall_time_shared_by_live_answers(
        tmp_path: Path, server: MockServer, mini_suite: Path) -> None:
    """3,600 MAD/h is 1 MAD per second of the run: the 12 answers share what the run's
    measured wall time cost, however many requests were in flight."""
    server.behaviour.latency_s = 0.05
    spec = load_model(str(write_model(
        tmp_path / "m.yaml", server.base_url, limits={"concurrency": 4},
        pricing={"hosting_per_hour": 3_600, "currency": "MAD"})))
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              progress=False), [spec])
    wall_s = load_run(result.path).manifest.wall_s
    assert wall_s is not None and wall_s > 0.05 * 12 / 4
    usage = result.scores.tasks["intents"].usage
    assert usage.n_answered == 12 and usage.n_cached == 0
    assert usage.cost_total == pytest.approx(wall_s, rel=1e-3)
    assert usage.cost_per_1k["MAD"] == pytest.approx(wall_s / 12 * 1000, rel=1e-3)


def test_a_cached_rerun_reports_no_throughput(tmp_path: Path, server: MockServer,
                                             mini_suite: Path) -> None:
    spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url)))
    options = RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                         cache_dir=tmp_path / "cache", progress=False)
    [first] = run(options, [spec])
    [second] = run(options, [spec])
    assert first.scores.tasks["intents"].usage.throughput_per_s is not None
    usage = second.scores.tasks["intents"].usage
    assert usage.n_cached == 12 and usage.throughput_per_s is None  # nothing was measured


def test_variety_filter_and_several_models(tmp_path: Path, mini_suite: Path) -> None:
    results = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                             varieties=["ary_Latn"], progress=False),
                  [load_model("majority"), load_model("char-ngram")])
    assert len(results) == 2 and len({r.path for r in results}) == 2
    for result in results:
        assert set(result.scores.to_json()["tasks"]["intents"]["varieties"]) == {"ary_Latn"}


def test_killed_run_resumes_without_resending_completed_requests(tmp_path: Path) -> None:
    """SIGKILL a `run` subprocess mid-way, re-run it: predictions complete and identical to
    an uninterrupted run, and only requests in flight at the kill were sent twice."""
    suite = make_suite(tmp_path / "suite", 150)
    n_items = 300
    concurrency = 8
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}

    def start(model: Path, cache: Path, out: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "moroccan_eval", "run", "--suite", str(suite), "--model",
             str(model), "--out", str(out), "--cache-dir", str(cache), "--no-progress"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    with MockServer() as reference_server:
        model = write_model(tmp_path / "ref.yaml", reference_server.base_url,
                            limits={"concurrency": concurrency})
        assert start(model, tmp_path / "ref-cache", tmp_path / "ref-runs").wait(120) == 0
        [reference_dir] = (tmp_path / "ref-runs").iterdir()

    with MockServer() as server:
        server.behaviour.latency_s = 0.02
        model = write_model(tmp_path / "m.yaml", server.base_url,
                            limits={"concurrency": concurrency})
        proc = start(model, tmp_path / "cache", tmp_path / "runs")
        deadline = time.monotonic() + 60
        while server.requests < 100 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sent_before_kill = server.requests
        assert 100 <= sent_before_kill < n_items, "kill did not land mid-run"
        [killed_dir] = (tmp_path / "runs").iterdir()
        manifest = json.loads((killed_dir / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["status"] == "running"  # never looks complete

        resumed = start(model, tmp_path / "cache", tmp_path / "runs")
        out, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err.decode()
        resent = [h for h, count in server.bodies.items() if count > 1]
        assert len(server.bodies) == n_items
        assert len(resent) <= concurrency  # only those in flight at the kill
        assert server.requests == n_items + len(resent)

    [resumed_dir] = [d for d in (tmp_path / "runs").iterdir() if d != killed_dir]
    final = {p["id"]: (p["output"], p["parsed"], p["error"]) for p in predictions(resumed_dir)}
    expected = {p["id"]: (p["output"], p["parsed"], p["error"])
                for p in predictions(reference_dir)}
    assert final == expected and len(final) == n_items
    assert b"signature: moroccan-eval:" in out


def test_api_key_is_never_written(tmp_path: Path, server: MockServer, mini_suite: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-live-DO-NOT-LEAK-4242"
    monkeypatch.setenv("VENDOR_KEY", secret)
    server.behaviour.require_key = secret
    spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url,
                                      api_key_env="VENDOR_KEY")))
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              cache_dir=tmp_path / "cache", progress=False), [spec])
    assert result.scores.to_json()["tasks"]["intents"]["usage"]["n_errors"] == 0  # the key was used
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "responses.sqlite" for p in written)
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    manifest = json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"]["spec"]["api_key_env"] == "VENDOR_KEY"


def test_concurrency_override_reaches_the_connection_pool(tmp_path: Path, server: MockServer,
                                                          mini_suite: Path) -> None:
    server.behaviour.latency_s = 0.05
    spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url,
                                      limits={"concurrency": 2})))
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              concurrency=6, progress=False), [spec])
    assert server.max_in_flight == 6
    assert json.loads((result.path / "manifest.json").read_text())["model"]["spec"][
        "limits"]["concurrency"] == 6


def test_the_first_request_goes_out_before_every_worker_has_started(tmp_path: Path) -> None:
    """Workers start a turn of the loop apart: at concurrency 256, starting them all at
    once opened every connection before the first request went out (0.15 s more start-up)
    and brought the first answers back in one burst."""
    toy_models.CENSUS.clear()
    model = tmp_path / "census.yaml"
    model.write_text("name: census\nadapter: python\ncallable: toy_models:census\n"
                     "limits: {concurrency: 16}\n", encoding="utf-8")
    run(RunOptions(suite=load_suite(make_suite(tmp_path / "suite", 40)),
                   out_dir=tmp_path / "runs", progress=False), [load_model(str(model))])
    assert len(toy_models.CENSUS) == 80
    assert toy_models.CENSUS[0] <= 2  # the first request: one or two workers started
    assert max(toy_models.CENSUS) == 16  # all of them later on


def test_a_changed_endpoint_behind_cached_answers_is_warned_about(
        tmp_path: Path, server: MockServer, mini_suite: Path) -> None:
    """The same YAML, a server now serving another model: the cached answers are reused,
    but the run says so, and the manifest records what served it."""
    import warnings

    from moroccan_eval.errors import MoroccanEvalWarning

    server.behaviour.models = ["qwen2.5-1.5b-instruct-q4"]
    spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url)))
    options = RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                         cache_dir=tmp_path / "cache", progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        [first] = run(options, [spec])
        run(options, [spec])  # unchanged: no warning
        server.behaviour.models = ["gemma-3-270m-base"]
        [changed] = run(options, [spec])
    messages = [str(w.message) for w in caught if issubclass(w.category, MoroccanEvalWarning)]
    assert len(messages) == 1 and "what serves it changed" in messages[0]
    assert "identity.models" in messages[0] or "models" in messages[0]
    assert "12 answer(s) of this run came from the cache" in messages[0]
    serving = load_run(changed.path).manifest.model.serving
    assert serving is not None and serving["identity"] == {
        "adapter": "openai_compat", "models": ["gemma-3-270m-base"]}
    assert load_run(first.path).manifest.model.serving is not None


def test_a_plain_function_is_answered_in_place_with_the_same_records(tmp_path: Path) -> None:
    """A synchronous python model is called inline (no task per item); its run directory
    holds the records a threaded call of the same function gives."""
    suite = load_suite(make_suite(tmp_path / "suite", 40))
    records = {}
    for threaded in (False, True):
        spec = load_model(str(_python_model(tmp_path, threaded)))
        [result] = run(RunOptions(suite=suite, out_dir=tmp_path / f"runs-{threaded}",
                                  progress=False), [spec])
        records[threaded] = sorted(
            ({k: v for k, v in r.items() if k not in ("latency_ms", "request_hash")}
             for r in predictions(result.path)), key=lambda r: (r["task"], r["id"]))
        assert len(records[threaded]) == 80
    assert records[False] == records[True]
    assert build_adapter(load_model(str(_python_model(tmp_path, False)))).answers_inline
    assert not build_adapter(load_model(str(_python_model(tmp_path, True)))).answers_inline


def _python_model(tmp_path: Path, threaded: bool) -> Path:
    path = tmp_path / f"model-{threaded}.yaml"
    path.write_text(f"name: first-label\nadapter: python\ncallable: toy_models:instant\n"
                    f"threaded: {str(threaded).lower()}\n", encoding="utf-8")
    return path


def test_the_trivial_baseline_kept_with_the_scores_is_the_one_read_from_the_file(
        tmp_path: Path, mini_suite: Path) -> None:
    from collections import Counter

    from moroccan_eval.runs.scoring import trivial_baselines

    suite = load_suite(mini_suite)
    [result] = run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False,
                              trivial_baselines=True), [load_model("majority")])
    assert result.trivial is not None and set(result.trivial) == set(result.scores.tasks)
    run_dir = load_run(result.path)
    for task, value in result.trivial.items():
        task_type = suite.task(task).task_type
        metric = result.scores.tasks[task].metrics[0]
        assert value == trivial_baselines(run_dir, {task: metric})[task]
        held = Counter(json.dumps(r.get("reference"), sort_keys=True)
                       for r in run_dir.predictions() if r["task"] == task)
        references = [(json.loads(key), count) for key, count in held.items()]
        assert value == task_type.trivial_score(references, metric)  # the records' own
        if metric == "accuracy":  # the most frequent label, answered to every item
            counts = Counter(str(r["reference"]) for r in predictions(result.path)
                             if r["task"] == task)
            assert value == round(max(counts.values()) / sum(counts.values()), 6)


def test_scoring_warms_up_only_once_the_loop_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm-up thread (numpy's import) takes the GIL: started while the loop still
    works (the first requests' new connections), it held them back. It starts at the
    first idle moment."""
    import asyncio
    import threading

    from moroccan_eval.runs import runner

    started: list[float] = []

    def warm_up() -> None:
        started.append(time.perf_counter())
        runner._warm_up = threading.Thread()  # what the real one records: started once

    monkeypatch.setattr(runner, "_warm_up", None)
    monkeypatch.setattr(runner, "_warm_up_meanwhile", warm_up)

    async def busy_then_idle() -> float:
        watch = asyncio.create_task(runner._warm_up_once_idle())
        for _ in range(20):  # 0.1 s of work, in turns of 5 ms
            until = time.perf_counter() + 0.005
            while time.perf_counter() < until:
                pass
            await asyncio.sleep(0)
        idle_from = time.perf_counter()
        await asyncio.wait_for(watch, timeout=5)
        return idle_from

    idle_from = asyncio.run(busy_then_idle())
    assert len(started) == 1 and started[0] >= idle_from


def test_an_in_process_model_s_predictions_are_written_in_suite_order(tmp_path: Path) -> None:
    """Whatever its concurrency: workers take turns between items, not holding one."""
    suite = load_suite(make_suite(tmp_path / "suite", 2500))  # > 64 workers x 64 items
    spec = load_model(str(_python_model(tmp_path, False)))
    [result] = run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False,
                              concurrency=64), [spec])
    order = [item["id"] for item in suite.task("intents").items("test")]
    assert [p["id"] for p in predictions(result.path)] == order
