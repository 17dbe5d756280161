"""Side by side with a minimal aiohttp client: the same items, the same local server
answering after LATENCY seconds, concurrency C, in one run.

Each client is a separate process; the server (the toolkit's mock server) runs in this one
and stamps the first request's arrival and the last answer. Figures per client:

- request phase: ideal (N x LATENCY / C) over first request -> last answer;
- including start-up: ideal over launch -> exit (moroccan-eval also loads and checks the
  suite, scores with bootstrap CIs and writes its run directory).

    python benchmarks/peers.py [--items 5000] [--latency 0.2] [--concurrency 64,256]

Targets for moroccan-eval: request phase >= 0.95, including start-up >= 0.85.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from moroccan_eval.mockserver import Behaviour, MockServer
from moroccan_eval.synthetic import make_suite

REQUEST_TARGET, OVERALL_TARGET = 0.95, 0.85

#: The minimal client: what any team would write in 40 lines.
MINIMAL = """
import asyncio, sys, aiohttp
URL, N, C = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

async def main():
    queue = asyncio.Queue()
    for i in range(N):
        queue.put_nowait(i)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=C)) as session:
        async def worker():
            while not queue.empty():
                i = queue.get_nowait()
                body = {"model": "stub", "temperature": 0,
                        "messages": [{"role": "user", "content": f"message {i}"}]}
                async with session.post(URL + "/chat/completions", json=body) as response:
                    await response.json()
        await asyncio.gather(*(worker() for _ in range(C)))

asyncio.run(main())
"""


def timed(server: MockServer, command: list[str]) -> tuple[float, float]:
    """(request phase, launch -> exit) in seconds."""
    server.first_request_at = server.last_answer_at = None
    launched = time.time()
    subprocess.run(command, check=True, capture_output=True)
    ended = time.time()
    assert server.first_request_at is not None and server.last_answer_at is not None
    return server.last_answer_at - server.first_request_at, ended - launched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", default="64,256")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp_name, \
            MockServer(Behaviour(latency_s=args.latency)) as server:
        tmp = Path(tmp_name)
        suite = make_suite(tmp / "suite", args.items, ("arb_Arab",), n_train_groups=2)
        model = tmp / "model.yaml"
        model.write_text(f"name: stub\nadapter: openai_compat\nbase_url: {server.base_url}\n"
                         "model: stub\napi_key_env: null\nparams: {temperature: 0}\n",
                         encoding="utf-8")
        ours = [sys.executable, "-m", "moroccan_eval", "run", "--suite", str(suite),
                "--model", str(model), "--no-cache", "--out", str(tmp / "runs")]
        subprocess.run([*ours, "--limit", "1"], check=True, capture_output=True)  # warm
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            ideal = args.items * args.latency / concurrency
            clients = {
                "minimal aiohttp": [sys.executable, "-c", MINIMAL, server.base_url,
                                    str(args.items), str(concurrency)],
                "moroccan-eval": [*ours, "--concurrency", str(concurrency)],
            }
            for name, command in clients.items():
                phase, total = timed(server, command)
                line = (f"c={concurrency:<4} {name:<16} request phase {phase:6.2f} s "
                        f"(efficiency {ideal / phase:.3f}), launch to exit {total:6.2f} s "
                        f"(efficiency {ideal / total:.3f}); ideal {ideal:.2f} s")
                if name == "moroccan-eval":
                    passed = ideal / phase >= REQUEST_TARGET and ideal / total >= OVERALL_TARGET
                    ok &= passed
                    line += (f"; targets >= {REQUEST_TARGET} / >= {OVERALL_TARGET}: "
                             f"{'PASS' if passed else 'FAIL'}")
                print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
