"""Any program as a model: JSON lines over stdin/stdout, in any language.

The program is started once and kept running. For each request it reads one line
``{"id": 7, "messages": [...], "input": {...}, "params": {...}, "root": "/suite"}`` (``root``
is the suite folder that item paths such as ``input.audio`` are relative to) and writes one line
``{"id": 7, "text": "...", "input_tokens": 12, "output_tokens": 3}`` (or
``{"id": 7, "error": "..."}``). Answers may come back in any order; ``id`` matches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import deque
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import AdapterError
from .base import Adapter, ModelSpec, Request, Response, TaskContext


class CommandOptions(BaseModel):
    """Model YAML fields of the ``command`` adapter."""

    model_config = ConfigDict(extra="forbid")
    command: list[str] = Field(min_length=1, description='e.g. ["python", "my_model.py"]')
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict, description="extra non-secret variables")


class CommandAdapter(Adapter[CommandOptions]):
    """Talks to a long-running subprocess; many requests may be in flight at once."""

    Options = CommandOptions

    def __init__(self, spec: ModelSpec, options: CommandOptions):
        super().__init__(spec, options)
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._reader: asyncio.Task[None] | None = None
        self._stderr_reader: asyncio.Task[None] | None = None
        self._stderr_tail: deque[str] = deque(maxlen=5)
        self._start_lock = asyncio.Lock()
        self._root: str | None = None

    async def prepare(self, task: TaskContext) -> None:
        self._root = task.root

    async def _ensure_started(self) -> asyncio.subprocess.Process:
        async with self._start_lock:
            if self._proc is not None and self._proc.returncode is None:
                return self._proc
            env = {**os.environ, **self.options.env}
            key = self.spec.api_key()
            if key and self.spec.api_key_env:
                env[self.spec.api_key_env] = key
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    *self.options.command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    cwd=self.options.cwd,
                    env=env,
                    limit=16 * 1024 * 1024,
                )
            except OSError as exc:
                raise AdapterError(
                    f"cannot start command {self.options.command!r}: {exc.strerror or exc}"
                ) from None
            self._reader = asyncio.create_task(self._read_loop(self._proc))
            self._stderr_reader = asyncio.create_task(self._stderr_loop(self._proc))
            return self._proc

    async def _stderr_loop(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            self._stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    async def _read_loop(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            try:
                message = json.loads(line)
                future = self._pending.pop(int(message["id"]))
            except (ValueError, KeyError, TypeError):
                self._fail_all(f"command wrote a line that is not a JSON answer: {line[:120]!r}")
                continue
            if not future.done():
                future.set_result(message)
        await proc.wait()
        tail = " | ".join(self._stderr_tail)
        self._fail_all(
            f"command {self.options.command[0]!r} exited with code {proc.returncode}"
            + (f"; stderr: {tail}" if tail else "")
        )

    def _fail_all(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(AdapterError(reason))

    async def generate(self, request: Request) -> Response:
        proc = await self._ensure_started()
        assert proc.stdin is not None
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = json.dumps({"id": request_id, **request.to_dict(), "root": self._root},
                          ensure_ascii=False) + "\n"
        started = time.perf_counter()
        try:
            proc.stdin.write(line.encode("utf-8"))
            await proc.stdin.drain()
            message = await future
        except (BrokenPipeError, ConnectionResetError):
            raise AdapterError(f"command {self.options.command[0]!r} closed its input") from None
        finally:
            self._pending.pop(request_id, None)
        if message.get("error"):
            raise AdapterError(f"command answered with an error: {message['error']}")
        return Response(
            text=str(message.get("text") or ""),
            tool_calls=list(message.get("tool_calls") or []),
            input_tokens=int(message.get("input_tokens") or 0),
            output_tokens=int(message.get("output_tokens") or 0),
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def aclose(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        for task in (self._reader, self._stderr_reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
