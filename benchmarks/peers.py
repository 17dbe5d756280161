"""Side by side with a minimal aiohttp client: the same items, the same local server
answering after LATENCY seconds, concurrency C, in one run.

Each client is a separate process; the server runs in a thread of this one and stamps the
first request's arrival and the last answer. It is a bare asyncio HTTP/1.1 server that answers
every chat request with the same completion after LATENCY seconds, not the toolkit's mock
server: at c = 256 (1,280 requests a second) the aiohttp mock server saturates its core, so
both clients measured its queue rather than themselves. ``--server mock`` measures through
the mock server, for comparison. Figures per client:

- request phase: ideal (N x LATENCY / C) over first request -> last answer;
- including start-up: ideal over launch -> exit (moroccan-eval also loads and checks the
  suite, scores with bootstrap CIs and writes its run directory).

    python benchmarks/peers.py [--items 5000] [--latency 0.2] [--concurrency 64,256]

Targets for moroccan-eval: request phase >= 0.95, including start-up >= 0.85.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

from installed import compile_toolkit

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


class Stamped(Protocol):
    """A server that stamps the first request's arrival and the last answer (time.time())."""

    first_request_at: float | None
    last_answer_at: float | None
    base_url: str


_COMPLETION = json.dumps({
    "id": "peers", "object": "chat.completion", "model": "stub",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "label"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21}}).encode()
_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
             + str(len(_COMPLETION)).encode() + b"\r\n\r\n" + _COMPLETION)


class LeanServer:
    """An endpoint that costs next to nothing per request: keep-alive HTTP/1.1 on
    127.0.0.1, every request answered with one canned completion after ``latency``."""

    def __init__(self, latency: float):
        self.latency = latency
        self.first_request_at: float | None = None
        self.last_answer_at: float | None = None
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()

    def __enter__(self) -> LeanServer:
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _serve(self) -> None:
        server = self._loop.run_until_complete(
            self._loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, backlog=1024))
        self.base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        self._ready.set()
        self._loop.run_forever()


class _Connection(asyncio.Protocol):
    def __init__(self, server: LeanServer):
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still on its way
            self.buffer = self.buffer[end + 4 + length:]
            if self.server.first_request_at is None:
                self.server.first_request_at = time.time()
            asyncio.get_running_loop().call_later(self.server.latency, self._answer)

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_RESPONSE)
            self.server.last_answer_at = time.time()


def timed(server: Stamped, command: list[str]) -> tuple[float, float, float]:
    """(request phase, launch -> exit, launch -> first request) in seconds."""
    server.first_request_at = server.last_answer_at = None
    launched = time.time()
    subprocess.run(command, check=True, capture_output=True)
    ended = time.time()
    assert server.first_request_at is not None and server.last_answer_at is not None
    return (server.last_answer_at - server.first_request_at, ended - launched,
            server.first_request_at - launched)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", default="64,256")
    parser.add_argument("--server", choices=("lean", "mock"), default="lean",
                        help="the endpoint: a bare asyncio server, or the toolkit's mock server")
    args = parser.parse_args()
    compile_toolkit()
    ok = True
    endpoint = (LeanServer(args.latency) if args.server == "lean"
                else MockServer(Behaviour(latency_s=args.latency)))
    with tempfile.TemporaryDirectory() as tmp_name, endpoint as server:
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
                phase, total, start = timed(server, command)
                line = (f"c={concurrency:<4} {name:<16} request phase {phase:6.2f} s "
                        f"(efficiency {ideal / phase:.3f}), launch to exit {total:6.2f} s "
                        f"(efficiency {ideal / total:.3f}; start-up {start:.2f} s, after the "
                        f"last answer {total - start - phase:.2f} s); ideal {ideal:.2f} s")
                if name == "moroccan-eval":
                    passed = ideal / phase >= REQUEST_TARGET and ideal / total >= OVERALL_TARGET
                    ok &= passed
                    line += (f"; targets >= {REQUEST_TARGET} / >= {OVERALL_TARGET}: "
                             f"{'PASS' if passed else 'FAIL'}")
                print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
