"""Side by side with a minimal aiohttp client: the same items, the same local server
answering after LATENCY seconds, concurrency C, in one run.

Each client is a separate process; the server runs in a thread of this one and stamps the
first chat request's arrival and the last answer. It is a bare asyncio HTTP/1.1 server that answers
every chat request with the same completion after LATENCY seconds, not the toolkit's mock
server: at c = 256 (1,280 requests a second) the aiohttp mock server saturates its core, so
both clients measured its queue rather than themselves. ``--server mock`` measures through
the mock server, for comparison. Figures per client:

- request phase: ideal (N x LATENCY / C) over first chat request -> last answer;
- including start-up: ideal over launch -> exit (moroccan-eval also loads and checks the
  suite, scores with bootstrap CIs and writes its run directory);
- CPU: the client process's user + system time, whole run, and per request: the client's
  cost, which a shared machine's neighbours move far less than its wall-clock figures.

``--peer NAME=PYTHON`` (repeatable) adds another evaluation tool, run by the interpreter of
the virtual environment it is installed in (kept apart: its dependencies are not the
toolkit's): ``lm-eval`` (its ``local-chat-completions`` model on a task read from a local
JSONL file) or ``inspect_ai`` (an ``openai-api`` model with a ``generate()`` task). Each
peer sends the same N prompts as moroccan-eval, rendered by the toolkit from the same suite,
to the same server at the same concurrency. Peers are informational: the verdict is
moroccan-eval's alone. A peer whose interpreter is missing, or lacks the tool, is skipped
with one line. The server counts the chat requests of every client's run; a run that sent
more or fewer than N stops the benchmark (skipped or retried items would skew its figure).
Each client runs ``--rounds`` times per concurrency, the clients in turn; each figure is the
median of the rounds, printed with their range (a shared machine's neighbours move a single
run by several per cent).

    python benchmarks/peers.py [--items 5000] [--latency 0.2] [--concurrency 64,256]
        [--rounds 3]
        [--peer lm-eval=/opt/peers/lm-eval/bin/python]
        [--peer inspect_ai=/opt/peers/inspect/bin/python]

Targets for moroccan-eval: request phase >= 0.95, including start-up >= 0.85.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from installed import compile_toolkit

from moroccan_eval.mockserver import Behaviour, MockServer
from moroccan_eval.runs.requests import build_request, task_setup
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.synthetic import make_suite

REQUEST_TARGET, OVERALL_TARGET = 0.95, 0.85

#: The minimal client: what any team would write in 40 lines. It sends the same prompts
#: as moroccan-eval (:func:`write_peer_items`).
MINIMAL = """
import asyncio, json, sys, aiohttp
URL, ITEMS, C = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def main():
    queue = asyncio.Queue()
    with open(ITEMS, encoding="utf-8") as fh:
        for line in fh:
            queue.put_nowait(json.loads(line))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=C)) as session:
        async def worker():
            while not queue.empty():
                item = queue.get_nowait()
                body = {"model": "stub", "temperature": 0,
                        "messages": [{"role": "system", "content": item["system"]},
                                     {"role": "user", "content": item["user"]}]}
                async with session.post(URL + "/chat/completions", json=body) as response:
                    await response.json()
        await asyncio.gather(*(worker() for _ in range(C)))

asyncio.run(main())
"""


class Stamped(Protocol):
    """A server that stamps the first chat request's arrival and the last answer
    (time.time()) and counts the chat requests it received. Only chat requests start the
    request phase: they are the N the ideal counts (moroccan-eval's GET /models for the
    run's record goes out just before them, on a connection of its own)."""

    first_request_at: float | None
    last_answer_at: float | None
    requests: int

    @property
    def base_url(self) -> str: ...


_COMPLETION = json.dumps({
    "id": "peers", "object": "chat.completion", "model": "stub",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "label"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21}}).encode()
_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
             + str(len(_COMPLETION)).encode() + b"\r\n\r\n" + _COMPLETION)


@dataclass
class Exchange:
    """One chat request on one connection: when it arrived and when it was answered."""

    connection: int
    arrived: float
    answered: float | None = None


@dataclass(frozen=True)
class Chain:
    """Where the request phase went, on the connection answered last (the run's end): its
    first request's delay after the run's first, then per request the latency, the
    server's lateness over it, and the client's turnaround (answer sent -> next request
    arrived): phase = delay + requests x latency + lateness + turnarounds, exactly. With the
    mean turnaround of every connection in rounds 1, 2 and later: the first answers
    arrive at once, and the client works through that burst."""

    delay: float
    requests: int
    lateness: float
    turnarounds: float
    by_round: tuple[float, float, float]

    @staticmethod
    def of(exchanges: list[Exchange], latency: float) -> Chain:
        by_connection: dict[int, list[Exchange]] = {}
        for exchange in exchanges:
            by_connection.setdefault(exchange.connection, []).append(exchange)
        chains = list(by_connection.values())
        first = min(e.arrived for e in exchanges)
        last = max(chains, key=lambda chain: chain[-1].answered or 0.0)
        rounds: list[list[float]] = [[], [], []]
        for chain in chains:
            for i, turnaround in enumerate(_turnarounds(chain)):
                rounds[min(i, 2)].append(turnaround)
        return Chain(
            delay=last[0].arrived - first, requests=len(last),
            lateness=sum((e.answered or e.arrived) - e.arrived - latency for e in last),
            turnarounds=sum(_turnarounds(last)),
            by_round=(_mean(rounds[0]), _mean(rounds[1]), _mean(rounds[2])))

    def __str__(self) -> str:
        first, second, later = (f"{1000 * t:.1f}" for t in self.by_round)
        return (f"the last connection: first request +{1000 * self.delay:.0f} ms, "
                f"{self.requests} requests, server late {1000 * self.lateness:.0f} ms, "
                f"client turnarounds {1000 * self.turnarounds:.0f} ms (every connection's "
                f"mean: round 1 {first}, round 2 {second}, later {later} ms)")


def _turnarounds(chain: list[Exchange]) -> list[float]:
    """Per request after a connection's first: its arrival after the previous answer."""
    return [after.arrived - (done.answered or after.arrived)
            for done, after in itertools.pairwise(chain)]


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


class LeanServer:
    """An endpoint that costs next to nothing per request: keep-alive HTTP/1.1 on
    127.0.0.1, every request answered with one canned completion after ``latency``.
    Each chat request is kept as an :class:`Exchange` (see :class:`Chain`)."""

    def __init__(self, latency: float):
        self.latency = latency
        self.first_request_at: float | None = None
        self.last_answer_at: float | None = None
        #: POSTs to .../chat/completions received (other requests are answered, not counted)
        self.requests = 0
        self.exchanges: list[Exchange] = []
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
            request_line, *headers = self.buffer[:end].split(b"\r\n")
            length = 0
            for line in headers:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still on its way
            self.buffer = self.buffer[end + 4 + length:]
            method, path = request_line.split(b" ")[:2]
            exchange = None
            if method == b"POST" and path.split(b"?")[0].endswith(b"/chat/completions"):
                now = time.time()
                self.server.requests += 1
                if self.server.first_request_at is None:
                    self.server.first_request_at = now
                exchange = Exchange(id(self), now)
                self.server.exchanges.append(exchange)
            asyncio.get_running_loop().call_later(self.server.latency, self._answer, exchange)

    def _answer(self, exchange: Exchange | None) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_RESPONSE)
            self.server.last_answer_at = time.time()
            if exchange is not None:
                exchange.answered = self.server.last_answer_at


@dataclass(frozen=True)
class Client:
    """One client's run: its command line and, for a peer, its environment."""

    name: str
    command: list[str]
    env: dict[str, str] | None = None


def _reset(server: Stamped) -> None:
    server.first_request_at = server.last_answer_at = None
    server.requests = 0
    if isinstance(server, LeanServer):
        server.exchanges = []


def timed(server: Stamped, client: Client, expected_requests: int) -> Timing:
    """The client's run, timed by the server's stamps. Exits the
    benchmark if the client failed or did not send exactly ``expected_requests`` chat
    requests: a client that skipped items (or retried some) would be timed on other work."""
    _reset(server)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched = time.time()
    done = subprocess.run(client.command, capture_output=True, text=True, env=client.env)
    ended = time.time()
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{client.name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    if server.requests != expected_requests:
        sys.exit(f"{client.name} sent {server.requests} chat requests, not {expected_requests}:"
                 f" its timing would not be comparable\n{done.stderr[-3000:]}")
    assert server.first_request_at is not None and server.last_answer_at is not None
    return Timing(phase=server.last_answer_at - server.first_request_at,
                  total=ended - launched, start=server.first_request_at - launched,
                  cpu=(now.ru_utime + now.ru_stime) - (used.ru_utime + used.ru_stime),
                  chain=(Chain.of(server.exchanges, server.latency)
                         if isinstance(server, LeanServer) else None))


# --------------------------------------------------------------------------- peers


@dataclass(frozen=True)
class PeerItems:
    """The test items as every peer reads them: one JSON object a line with the messages
    and the reference (``id``, ``system``, ``user``, ``target``). The synthetic suite's
    template gives every item the same system message, which lm-eval takes only once, on
    its command line: ``system`` holds it."""

    path: Path
    system: str
    count: int


def write_peer_items(suite: Path, path: Path) -> PeerItems:
    """Render the suite's test items with the toolkit's own prompt renderer (the messages
    moroccan-eval sends) and write them for the peers: every client sends the same prompts."""
    task = load_suite(suite).task("intents")
    _, renderer = task_setup(task, seed=0)
    systems: set[str] = set()
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for item in task.items("test"):
            messages = build_request(task, renderer, item, "native").messages
            assert [m["role"] for m in messages] == ["system", "user"], messages
            systems.add(str(messages[0]["content"]))
            fh.write(json.dumps({"id": item["id"], "system": messages[0]["content"],
                                 "user": messages[1]["content"], "target": item["reference"]},
                                ensure_ascii=False) + "\n")
            count += 1
    assert len(systems) == 1, "a peer takes one system message for all items"
    return PeerItems(path, systems.pop(), count)


#: lm-eval's task: a generation task over the local JSONL file (``datasets``' json
#: builder), scored by exact match; the system message is passed on the command line.
LM_EVAL_TASK = """task: peers_items
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: generate_until
doc_to_text: "{{{{user}}}}"
doc_to_target: "{{{{target}}}}"
generation_kwargs:
  until: ["\\n\\n"]
  do_sample: false
  temperature: 0
metric_list:
  - metric: exact_match
"""

#: inspect_ai's task: the same items as [system, user] messages, one generate() each,
#: scored by match(). (It reads the system message from the file: a ``-T`` value is parsed
#: as YAML, which a message with ": " in it would not survive.)
INSPECT_TASK = """import json

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser
from inspect_ai.scorer import match
from inspect_ai.solver import generate


@task
def peers_items(items: str) -> Task:
    with open(items, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    samples = [Sample(id=row["id"], target=row["target"],
                      input=[ChatMessageSystem(content=row["system"]),
                             ChatMessageUser(content=row["user"])])
               for row in rows]
    return Task(dataset=MemoryDataset(samples), solver=generate(), scorer=match())
"""

#: Keeps a peer off the network, the server being local: without these, lm-eval's
#: ``datasets`` sends a HEAD to s3.amazonaws.com (a download count for its json builder,
#: 3 s time-out) before it reads the local file. inspect_ai sends telemetry only when
#: INSPECT_TELEMETRY names a hook; neither tool checks for updates.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1"}


@dataclass(frozen=True)
class PeerRun:
    """What a peer's command needs: the server, the items, a folder of its own, and how
    many items to send (all, or 1 for the warm-up run)."""

    base_url: str
    items: PeerItems
    workdir: Path
    concurrency: int
    limit: int | None = None


def _peer_env(run: PeerRun, **extra: str) -> dict[str, str]:
    # datasets caches its Arrow copy of the JSONL here, so the warm-up run fills it
    return {**os.environ, **OFFLINE_ENV, "HF_DATASETS_CACHE": str(run.workdir / "hf-datasets"),
            **extra}


def lm_eval_client(python: Path, run: PeerRun) -> Client:
    """lm-eval's ``local-chat-completions`` model: one chat request per item, at most
    ``num_concurrent`` in flight; no tokenizer, so nothing to download."""
    task_dir = run.workdir / "lm-eval-tasks"
    task_dir.mkdir(exist_ok=True)
    (task_dir / "peers_items.yaml").write_text(
        LM_EVAL_TASK.format(items=json.dumps(str(run.items.path))), encoding="utf-8")
    model_args = ",".join([
        "model=stub", f"base_url={run.base_url}/chat/completions",
        f"num_concurrent={run.concurrency}", "tokenizer_backend=None",
        "tokenized_requests=False",
        "max_retries=1",  # one attempt: a retry would be an extra request, not speed
    ])
    command = [str(python), "-m", "lm_eval", "run", "--model", "local-chat-completions",
               "--model_args", model_args, "--tasks", "peers_items",
               "--include_path", str(task_dir), "--apply_chat_template",
               "--system_instruction", run.items.system]
    if run.limit is not None:
        command += ["--limit", str(run.limit)]
    return Client("lm-eval", command, _peer_env(run))


def inspect_client(python: Path, run: PeerRun) -> Client:
    """inspect_ai's OpenAI-compatible provider (service ``peers``: its base URL and key
    come from PEERS_BASE_URL / PEERS_API_KEY), ``max_connections`` requests in flight."""
    task_file = run.workdir / "peers_inspect_task.py"
    task_file.write_text(INSPECT_TASK, encoding="utf-8")
    command = [str(python), "-m", "inspect_ai", "eval", f"{task_file}@peers_items",
               "-T", f"items={run.items.path}",
               "--model", "openai-api/peers/stub", "--temperature", "0",
               # a fixed pool of C connections (an explicit value turns off its adaptive
               # concurrency), and no retries, neither inspect's nor the openai SDK's
               "--max-connections", str(run.concurrency), "--max-retries", "0",
               "-M", "max_retries=0",
               "--log-dir", str(run.workdir / "inspect-logs"), "--display", "none"]
    if run.limit is not None:
        command += ["--limit", str(run.limit)]
    return Client("inspect_ai", command,
                  _peer_env(run, PEERS_BASE_URL=run.base_url, PEERS_API_KEY="stub"))


@dataclass(frozen=True)
class PeerTool:
    module: str  # what the peer's interpreter must be able to import
    client: Callable[[Path, PeerRun], Client]


PEER_TOOLS = {"lm-eval": PeerTool("lm_eval", lm_eval_client),
              "inspect_ai": PeerTool("inspect_ai", inspect_client)}


def peer_option(text: str) -> tuple[str, Path]:
    """``NAME=PYTHON`` of ``--peer``."""
    name, sep, python = text.partition("=")
    if not sep or name not in PEER_TOOLS or not python:
        raise argparse.ArgumentTypeError(
            f"expected NAME=PYTHON with NAME one of {', '.join(PEER_TOOLS)}, got {text!r}")
    return name, Path(python)


def available(name: str, python: Path) -> bool:
    """Whether ``python`` exists and can import the peer's tool; says why not if not."""
    module = PEER_TOOLS[name].module
    if not python.is_file():
        print(f"peer {name}: skipped, no interpreter at {python}", flush=True)
        return False
    probe = subprocess.run(
        [str(python), "-c", f"import importlib.util, sys; "
                            f"sys.exit(importlib.util.find_spec({module!r}) is None)"],
        capture_output=True)
    if probe.returncode != 0:
        print(f"peer {name}: skipped, {module} is not importable by {python}", flush=True)
        return False
    return True


# --------------------------------------------------------------------------- main


@dataclass(frozen=True)
class Timing:
    """One client's run: request phase, launch -> exit, launch -> first request, and the
    CPU time its process used (s): CPU is what a shared machine's neighbours move least."""

    phase: float
    total: float
    start: float
    cpu: float
    chain: Chain | None = None


def median(timings: list[Timing]) -> Timing:
    """The median of each figure over the rounds."""
    return Timing(phase=statistics.median(t.phase for t in timings),
                  total=statistics.median(t.total for t in timings),
                  start=statistics.median(t.start for t in timings),
                  cpu=statistics.median(t.cpu for t in timings))


def report(name: str, concurrency: int, ideal: float, timings: list[Timing],
           requests: int) -> str:
    """The median of each figure over the rounds, with the rounds' range of efficiencies
    (the machine is shared: one round can measure the neighbours)."""
    typical = median(timings)
    after = statistics.median(t.total - t.start - t.phase for t in timings)

    def spread(values: list[float]) -> str:
        return "" if len(values) < 2 else f", rounds {min(values):.3f}-{max(values):.3f}"

    return (f"c={concurrency:<4} {name:<16} request phase {typical.phase:6.2f} s "
            f"(efficiency {ideal / typical.phase:.3f}"
            f"{spread([ideal / t.phase for t in timings])}), launch to exit "
            f"{typical.total:6.2f} s (efficiency {ideal / typical.total:.3f}"
            f"{spread([ideal / t.total for t in timings])}; start-up {typical.start:.2f} s, after "
            f"the last answer {after:.2f} s); ideal {ideal:.2f} s; CPU {typical.cpu:.2f} s, "
            f"{typical.cpu / requests * 1e6:.0f} µs a request{_chain(timings)}")


def _chain(timings: list[Timing]) -> str:
    """The :class:`Chain` of the round whose request phase is the median, if it has one."""
    middle = sorted(timings, key=lambda t: t.phase)[len(timings) // 2]
    return "" if middle.chain is None else f"\n       phase of its median round: {middle.chain}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", default="64,256")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each client per concurrency, in turn; medians printed")
    parser.add_argument("--server", choices=("lean", "mock"), default="lean",
                        help="the endpoint: a bare asyncio server, or the toolkit's mock server")
    parser.add_argument("--peer", type=peer_option, action="append", default=[],
                        metavar="NAME=PYTHON",
                        help=f"also time NAME ({', '.join(PEER_TOOLS)}) as run by the "
                             "interpreter PYTHON of the venv it is installed in; repeatable")
    args = parser.parse_args()
    compile_toolkit()
    peers = [(name, python) for name, python in args.peer if available(name, python)]
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
        items = write_peer_items(suite, tmp / "items.jsonl")
        assert items.count == args.items, items
        for name, python in peers:  # warm, as ours: imports, datasets' Arrow cache
            warm = PeerRun(server.base_url, items, tmp, concurrency=1, limit=1)
            client = PEER_TOOLS[name].client(python, warm)
            subprocess.run(client.command, check=True, capture_output=True, env=client.env)
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            ideal = args.items * args.latency / concurrency
            clients = [
                Client("minimal aiohttp", [sys.executable, "-c", MINIMAL, server.base_url,
                                           str(items.path), str(concurrency)]),
                Client("moroccan-eval", [*ours, "--concurrency", str(concurrency)]),
            ]
            for name, python in peers:
                run = PeerRun(server.base_url, items, tmp, concurrency)
                clients.append(PEER_TOOLS[name].client(python, run))
            timings: dict[str, list[Timing]] = {client.name: [] for client in clients}
            for _ in range(args.rounds):  # in turn, so that a noisy moment hits every client
                for client in clients:
                    timings[client.name].append(timed(server, client, args.items))
            for client in clients:
                line = report(client.name, concurrency, ideal, timings[client.name], args.items)
                if client.name == "moroccan-eval":
                    typical = median(timings[client.name])
                    passed = (ideal / typical.phase >= REQUEST_TARGET
                              and ideal / typical.total >= OVERALL_TARGET)
                    ok &= passed
                    line += (f"; targets >= {REQUEST_TARGET} / >= {OVERALL_TARGET}: "
                             f"{'PASS' if passed else 'FAIL'}")
                print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
