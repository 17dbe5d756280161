"""Throughput of run + score. Prints figures and compares them with the targets.

1. HTTP: N items against a local OpenAI-compatible server (a separate process) answering
   after LATENCY seconds, at concurrency C. Target: efficiency = ideal / wall >= 0.95,
   where ideal = N x LATENCY / C. The median of --repeat runs counts (machines are noisy).
   For scale: a bare aiohttp loop against the same server measured 0.967-0.971 here.
2. In-process: an instant ``python`` adapter through run + score. Target >= 5,000 items/s.

    python benchmarks/throughput.py [--items 5000] [--latency 0.2] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # toy_models

from moroccan_eval.adapters.base import ModelSpec
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.synthetic import make_suite


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed_run(suite_dir: Path, spec: ModelSpec, out: Path) -> tuple[float, int]:
    """Wall time of a run with the response cache on, as users run it."""
    suite = load_suite(suite_dir)
    started = time.perf_counter()
    options = RunOptions(suite=suite, out_dir=out, cache_dir=out / "cache", progress=False)
    [result] = run(options, [spec])
    wall = time.perf_counter() - started
    usage = result.scores.tasks["intents"].usage
    assert usage.n_errors == 0, usage
    return wall, usage.n_requests


def http_benchmark(tmp: Path, items: int, latency: float, concurrency: int,
                   repeat: int) -> bool:
    suite_dir = make_suite(tmp / "http-suite", items, ("arb_Arab",))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moroccan_eval.mockserver", "--port", str(port),
         "--latency", str(latency)], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # the server prints its URL once listening
        spec = ModelSpec.model_validate({
            "name": "mock", "adapter": "openai_compat", "base_url": f"http://127.0.0.1:{port}/v1",
            "model": "mock", "limits": {"concurrency": concurrency, "timeout_s": 30}})
        walls = []
        for i in range(repeat):
            wall, n = timed_run(suite_dir, spec, tmp / f"runs-http-{i}")
            walls.append(wall)
    finally:
        server.terminate()
        server.wait()
    ideal = n * latency / concurrency
    wall = statistics.median(walls)
    efficiency = ideal / wall
    ok = efficiency >= 0.95
    print(f"HTTP      {n} items, latency {latency} s, concurrency {concurrency}: "
          f"median wall {wall:.2f} s of {', '.join(f'{w:.2f}' for w in walls)}; "
          f"ideal {ideal:.2f} s; efficiency {efficiency:.3f} (target >= 0.95) "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


def inprocess_benchmark(tmp: Path, items: int) -> bool:
    suite_dir = make_suite(tmp / "local-suite", items // 2)
    spec = ModelSpec.model_validate({"name": "instant", "adapter": "python",
                                     "callable": "toy_models:instant",
                                     "limits": {"concurrency": 64}})
    wall, n = timed_run(suite_dir, spec, tmp / "runs-local")
    rate = n / wall
    ok = rate >= 5000
    print(f"in-process {n} items through run + score: {wall:.2f} s, {rate:,.0f} items/s "
          f"(target >= 5,000) {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--local-items", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3, help="HTTP runs; the median counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HF_DATASETS_CACHE"] = str(Path(tmp) / "hf")
        ok = inprocess_benchmark(Path(tmp), args.local_items)
        ok = http_benchmark(Path(tmp), args.items, args.latency, args.concurrency,
                            args.repeat) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
