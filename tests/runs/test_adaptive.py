"""``limits.concurrency: auto`` against a real server with limited slots."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import write_model

from moroccan_eval.adapters import load_model
from moroccan_eval.mockserver import Behaviour, MockServer
from moroccan_eval.runs.adaptive import AdaptiveConcurrency
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.synthetic import make_suite

AUTO = {"concurrency": "auto", "backoff_base_s": 0.01, "backoff_max_s": 0.05, "retries": 8}


def test_auto_backs_off_to_the_endpoints_capacity(tmp_path: Path) -> None:
    suite = load_suite(make_suite(tmp_path / "suite", 300, ("arb_Arab", "ary_Latn")))
    with MockServer(Behaviour(latency_s=0.03, capacity=12)) as server:
        spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url, limits=AUTO)))
        [result] = run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False),
                       [spec])
    assert result.status == "complete"
    assert result.scores.tasks["intents"].usage.n_errors == 0, "every 429 was retried"
    found = load_run(result.path).manifest.model.serving["concurrency_auto"]  # type: ignore[index]
    assert found["backoffs"] >= 1 and 3 <= found["final"] <= 24, found
    assert server.rejected < 0.15 * server.requests, (server.rejected, server.requests)


def test_auto_ramps_up_on_an_endpoint_that_keeps_up(tmp_path: Path) -> None:
    suite = load_suite(make_suite(tmp_path / "suite", 600, ("arb_Arab", "ary_Latn")))
    with MockServer(Behaviour(latency_s=0.03)) as server:
        spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url, limits=AUTO)))
        [result] = run(RunOptions(suite=suite, out_dir=tmp_path / "runs", progress=False),
                       [spec])
    found = load_run(result.path).manifest.model.serving["concurrency_auto"]  # type: ignore[index]
    assert found["peak"] >= 64 and found["backoffs"] == 0, found
    assert server.max_in_flight >= 32


def test_climbing_latency_lowers_the_limit() -> None:
    async def scenario() -> AdaptiveConcurrency:
        gate = AdaptiveConcurrency(start=8)
        for latency in (100.0, 100.0, 100.0):
            await gate.acquire()
            gate.release(latency, pushed_back=False)
        await gate.acquire()
        gate.release(250.0, pushed_back=False)  # past twice the fastest: queueing
        return gate

    gate = asyncio.run(scenario())
    assert gate.limit == 7 and gate.backoffs == 0
