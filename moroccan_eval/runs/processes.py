"""Worker processes for a model answered in this process (``run --processes N``).

A model whose adapter computes each answer on the event loop's thread (the ``python``
adapter's plain functions, the built-in baselines) uses one core however high its
concurrency. With ``--processes N``, N worker processes run it instead: the items of each
task are dealt to them in chunks of :data:`CHUNK_ITEMS` (chunk k to worker k mod N), each
worker renders, answers and judges its chunks in order and sends their records back as
JSON lines, and this process takes the chunks in turn, so it writes and scores every record
in suite order, as a one-process run would: the run directory is the same (timestamps and
wall time aside).

Workers are fresh interpreters (``python -c``, with this process's ``sys.path``), not
forks: forking a process with a running event loop and threads is not safe, and unlike
multiprocessing's ``spawn`` they do not re-run the caller's main script. Each loads the
suite from its folder; secrets stay in the environment it inherits. Records come back on
a pipe of their own (a model may print to stdout). A worker that fails says why in its
own words, and the run fails with that error.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Any, TypedDict, TypeVar

import pydantic_core

from .. import collector
from ..errors import ConfigError, MoroccanEvalError, RunError
from ..io import JSONObject, json_line
from ..records import PredictionRecord

#: Items per chunk: large enough that a message carries a few hundred records, small enough
#: that the workers' chunks in flight stay a few MB.
CHUNK_ITEMS = 256

_DATA, _END, _FAILED = b"D", b"E", b"X"

T = TypeVar("T")


#: What a worker process runs: argv[1] is its job (JSON), argv[2] the pipe it writes to.
_WORKER = ("import json, sys; sys.path[:] = json.loads(sys.argv[1])['path']; "
           "from moroccan_eval.runs.runner import work; work()")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one: a
    container's share, not the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count(asked: int, limit: int | None, varieties: int) -> int:
    """``asked``, or fewer when the run's ``--limit`` leaves fewer chunks than workers: a
    task then holds at most ``limit`` items of each of ``varieties`` varieties, and a worker
    dealt no chunk would load the suite and build the model for nothing."""
    if limit is None:
        return asked
    return min(asked, -(-limit * varieties // CHUNK_ITEMS))


class Job(TypedDict):
    """What a worker needs to run its share (no secret: those stay in the environment the
    worker inherits)."""

    path: list[str]  # the parent's sys.path: where the model's module is found
    suite: str  # the suite's folder
    allow_unanonymized: bool
    spec: JSONObject  # the model
    options: JSONObject  # what selects and renders the items (RunOptions' fields)
    index: int  # this worker's (0-based), of ``count``
    count: int


#: Sends a task's records (judged, in the order of the items dealt) to the parent.
Outbox = Callable[[AsyncIterator[PredictionRecord]], Awaitable[None]]


def dealt(items: Iterable[T], index: int, count: int) -> Iterator[T]:
    """The items of chunks ``index``, ``index + count``, ``index + 2 * count``... (chunks of
    :data:`CHUNK_ITEMS`): worker ``index``'s share of ``count``."""
    for position, item in enumerate(items):
        if position // CHUNK_ITEMS % count == index:
            yield item


class Workers:
    """Worker processes, one per job, started at once; :meth:`records` gives each task's
    records in turn."""

    def __init__(self, jobs: list[Job]):
        if os.name != "posix":  # a pipe passed to a child by its number
            raise ConfigError("--processes needs Linux or macOS; leave it out here")
        self._processes: list[subprocess.Popen[bytes]] = []
        self._pipes: list[Connection] = []
        try:
            for job in jobs:
                reading, writing = os.pipe()
                try:
                    self._processes.append(subprocess.Popen(
                        [sys.executable, "-c", _WORKER, json.dumps(job), str(writing)],
                        stdin=subprocess.DEVNULL, pass_fds=(writing,)))
                finally:
                    os.close(writing)  # the worker's end only: a worker that dies is an EOF
                self._pipes.append(Connection(reading, writable=False))
        except OSError as exc:
            self.close()
            raise RunError(f"cannot start worker processes: {exc}") from None
        except BaseException:
            self.close()
            raise

    async def records(self) -> AsyncIterator[tuple[str, list[PredictionRecord]]]:
        """The next task's records, a chunk at a time in the order the task's items were
        dealt (suite order): the chunk's JSON lines (one text, without its last newline)
        and its records read back from them, as the file will read. The next chunk is
        received in a thread while the caller handles this one."""
        loop = asyncio.get_running_loop()
        count = len(self._pipes)
        turn = 0
        pending = loop.run_in_executor(None, self._receive, 0)
        try:
            while (text := await pending) is not None:
                turn += 1
                pending = loop.run_in_executor(None, self._receive, turn % count)
                yield text, _parsed(text)
        finally:  # a consumer that stopped early: close() ends the wait, nothing reads it
            pending.add_done_callback(_ignore_outcome)
        for offset in range(1, count):  # the task is over for every other worker too
            if await loop.run_in_executor(None, self._receive,
                                          (turn + offset) % count) is not None:
                raise RunError("worker processes disagree on the task's items (a suite file "
                               "changed during the run?); run again")

    def _receive(self, index: int) -> str | None:
        """Worker ``index``'s next chunk, ``None`` at the end of its task."""
        try:
            message = self._pipes[index].recv_bytes()
        except (EOFError, OSError):
            code = self._processes[index].wait()
            raise RunError(f"worker process {index + 1} of {len(self._processes)} stopped "
                           f"(exit code {code}); see what it printed above") from None
        kind, body = message[:1], message[1:]
        if kind == _DATA:
            return body.decode("utf-8")
        if kind == _END:
            return None
        try:
            error = pickle.loads(body)
        except Exception:  # not an error this process can rebuild: its message, then
            error = RunError(f"worker process {index + 1} failed")
        raise error

    def close(self) -> None:
        """Stop the workers (at once if they are still working) and release their pipes."""
        for process in self._processes:
            try:
                process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait()
        for pipe in self._pipes:
            pipe.close()


def _parsed(text: str) -> list[PredictionRecord]:
    """A chunk's records, read back from its lines (what :func:`~moroccan_eval.io.json_line`
    writes, pydantic's parser reads), in one parse of the chunk as a JSON array."""
    return pydantic_core.from_json("[" + text.replace("\n", ",") + "]")  # type: ignore[no-any-return]


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def serve(answer: Callable[[Job, Outbox], Coroutine[Any, Any, None]]) -> None:
    """A worker process's main (see :data:`_WORKER`): ``answer`` its job, sending each
    task's records through the outbox it is given, then exit. An error is sent to the
    parent, which raises it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent to handle
    job: Job = json.loads(sys.argv[1])
    pipe = Connection(int(sys.argv[2]), readable=False)

    async def send(records: AsyncIterator[PredictionRecord]) -> None:
        lines: list[str] = []
        async for record in records:
            lines.append(json_line(record))
            if len(lines) == CHUNK_ITEMS:
                pipe.send_bytes(_DATA + "\n".join(lines).encode("utf-8"))
                lines = []
        if lines:
            pipe.send_bytes(_DATA + "\n".join(lines).encode("utf-8"))
        pipe.send_bytes(_END)

    try:
        with collector.rarer(10_000, freeze=True):
            asyncio.run(answer(job, send))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone (stopped, or failed elsewhere): nothing to tell
    except BaseException as exc:
        if not isinstance(exc, MoroccanEvalError):
            exc = RunError(f"worker process {job['index'] + 1} of {job['count']} failed: "
                           f"{type(exc).__name__}: {exc}")
        with suppress(OSError, pickle.PicklingError):
            pipe.send_bytes(_FAILED + pickle.dumps(exc))
    finally:
        pipe.close()
