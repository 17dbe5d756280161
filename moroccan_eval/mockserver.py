"""A small OpenAI-compatible chat server for tests, benchmarks and trying a setup offline.

It answers ``POST /v1/chat/completions`` after a fixed latency with a scripted reply, and
can be told to misbehave: :attr:`Behaviour.failures` lists the faults served to the first
requests, one per request (see :data:`FAULTS`): HTTP statuses (``429`` comes with
``Retry-After`` unless it is ``None``), a hang, a connection reset mid-body, truncated or
malformed JSON, empty choices, a huge body, tool calls with broken arguments, a redirect
to another origin, and bodies echoing the request's headers (its API key). It counts
requests per body so tests can prove that a resumed run never re-sends a completed request,
and records the headers of every request it receives (:attr:`MockServer.seen`) so tests
can prove a secret never reached it.

Run standalone: ``python -m moroccan_eval.mockserver --port 8000 --latency 0.2``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

#: The named faults :attr:`Behaviour.failures` may hold (an ``int`` is an HTTP status).
FAULTS = (
    "hang",           # never answers: the client's timeout must fire
    "reset",          # declares a full body, sends half, then drops the connection
    "truncated",      # a 200 whose JSON stops halfway (with a matching Content-Length)
    "malformed",      # a 200 that is not JSON at all (an HTML page)
    "empty",          # a 200 with ``choices: []``
    "huge",           # a 200 streamed without Content-Length, ``huge_bytes`` long
    "huge-declared",  # the same with a Content-Length announcing its size
    "gzip-bomb",      # a small gzip body that inflates to ``huge_bytes``
    "bad-tool-args",  # a tool call whose ``arguments`` are not JSON
    "redirect",       # a 307 to ``redirect_to`` (another origin)
    "echo",           # a 500 whose error message echoes the request's headers
    "echo-ok",        # a 200 whose answer (content, tool call, usage) echoes them
)
_CHUNK = b"x" * 65536


@functools.lru_cache(maxsize=4)
def _gzip_bomb(size: int) -> bytes:
    """A gzip stream inflating to a ``size``-byte chat answer (about 1/1000 of it)."""
    head = b'{"choices": [{"message": {"role": "assistant", "content": "'
    tail = b'"}}]}'
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header
    parts = [packer.compress(head)]
    left = size - len(head) - len(tail)
    while left > 0:
        parts.append(packer.compress(_CHUNK[:left]))
        left -= len(_CHUNK)
    parts += [packer.compress(tail), packer.flush()]
    return b"".join(parts)


def first_label_reply(messages: list[dict[str, Any]]) -> str:
    """Default reply: the first ``- label:`` line of the prompt (a deterministic answer)."""
    for message in messages:
        for line in str(message.get("content", "")).splitlines():
            if line.startswith("- ") and ":" in line:
                return line[2:].split(":", 1)[0].strip()
    return "ok"


@dataclass
class Behaviour:
    """What the server does; tests mutate it between requests."""

    latency_s: float = 0.0
    reply: Callable[[list[dict[str, Any]]], str] = first_label_reply
    #: served first, one per request: an HTTP status, a name of FAULTS, or bytes served as
    #: a 200 JSON body (a hostile answer, byte for byte)
    failures: list[int | str | bytes] = field(default_factory=list)
    retry_after: str | None = "0"  # sent with every 429; None: a 429 without Retry-After
    #: the size of a "huge" answer (default 64 MiB, streamed, never held in memory)
    huge_bytes: int = 64 * 1024 * 1024
    #: where "redirect" sends the client (e.g. another MockServer's chat URL)
    redirect_to: str = "http://127.0.0.1:9/v1/chat/completions"
    #: characters put before the echoed headers of "echo" (to push them past a cut-off)
    echo_padding: int = 0
    require_key: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    #: builds the whole assistant message (content, tool_calls) from the request body
    answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: /v1/audio/transcriptions: file name → transcript (unknown files transcribe as "")
    transcripts: dict[str, str] = field(default_factory=dict)
    #: GET /v1/models: the model ids served (None: no such route, a 404)
    models: list[str] | None = None
    #: chat requests served at once; more get a 429 (an endpoint with limited slots)
    capacity: int | None = None


class MockServer:
    """The server; ``start()`` runs it on 127.0.0.1 in a background thread."""

    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.requests = 0
        self.bodies: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.rejected = 0  # 429s served for want of capacity
        #: (method, path, headers) of every request received, on any route
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        #: body bytes the last "huge" answer managed to send before the client hung up
        self.huge_sent = 0
        #: time.time() when the first chat request arrived and the last answer (of any
        #: route) was sent (benchmarks: start-up, and the request phase of a run)
        self.first_request_at: float | None = None
        #: time.time() of every chat request's arrival (rate-limit tests)
        self.arrivals: list[float] = []
        self.last_answer_at: float | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @web.middleware
    async def _record(self, request: web.Request,
                      handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """Record every request, also those to unknown routes (a redirect's target)."""
        with self._lock:
            self.seen.append((request.method, request.path, dict(request.headers)))
        response: web.StreamResponse = await handler(request)
        self.last_answer_at = time.time()
        return response

    def received(self, secret: str) -> bool:
        """Whether ``secret`` appeared in any header this server received."""
        return any(secret in f"{name}: {value}" for _, _, headers in self.seen
                   for name, value in headers.items())

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        app.router.add_get("/v1/models", self._models)
        return app

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        behaviour = self.behaviour
        with self._lock:
            self.requests += 1
            self.arrivals.append(time.time())
            if self.first_request_at is None:
                self.first_request_at = self.arrivals[-1]
            self.bodies[hashlib.sha256(raw).hexdigest()] += 1
            failure = behaviour.failures.pop(0) if behaviour.failures else None
            if behaviour.capacity is not None and self.in_flight >= behaviour.capacity:
                failure = failure or 429
                self.rejected += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if behaviour.require_key and (
                request.headers.get("Authorization") != f"Bearer {behaviour.require_key}"
            ):
                return web.json_response({"error": {"message": "invalid api key"}}, status=401)
            if behaviour.latency_s:
                await asyncio.sleep(behaviour.latency_s)
            if failure == "hang":
                await asyncio.sleep(3600)
            if failure == "malformed":
                return web.Response(text="<html>not json", content_type="text/html")
            if isinstance(failure, bytes):
                return web.Response(body=failure, content_type="application/json")
            if failure == "empty":
                return web.json_response({"choices": []})
            if failure in ("huge", "huge-declared"):
                return await self._huge(request, declared=failure == "huge-declared")
            if failure == "gzip-bomb":
                return web.Response(body=_gzip_bomb(behaviour.huge_bytes),
                                    headers={"Content-Encoding": "gzip",
                                             "Content-Type": "application/json"})
            if failure == "redirect":
                return web.Response(status=307, headers={"Location": behaviour.redirect_to})
            if failure == "echo":
                return web.json_response({"error": {"message": self._echo(request)}},
                                         status=500)
            if isinstance(failure, int):
                headers = ({"Retry-After": behaviour.retry_after}
                           if failure == 429 and behaviour.retry_after is not None else {})
                return web.json_response({"error": {"message": f"scripted {failure}"}},
                                         status=failure, headers=headers)
            body = json.loads(raw)
            if behaviour.answer is not None:
                message: dict[str, Any] = {"role": "assistant", **behaviour.answer(body)}
            else:
                text = behaviour.reply(body.get("messages", []))
                message = {"role": "assistant", "content": text}
            if behaviour.tool_calls is not None:
                message["tool_calls"] = behaviour.tool_calls
            if failure == "bad-tool-args":
                message["tool_calls"] = [{"id": "c1", "type": "function", "function": {
                    "name": "lookup_order", "arguments": '{"order_id": "CMD-1'}}]
            if failure == "echo-ok":
                echoed = self._echo(request)
                message = {"role": "assistant", "content": echoed, "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "echo", "arguments": json.dumps({"h": echoed})}}]}
            text = str(message.get("content") or "")
            prompt_tokens = sum(len(str(m.get("content", "")).split())
                                for m in body.get("messages", []))
            answer = json.dumps({
                "id": "chatcmpl-mock", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                          "total_tokens": prompt_tokens + len(text.split())},
                **({"echo": dict(request.headers)} if failure == "echo-ok" else {}),
            }).encode()
            if failure == "truncated":
                return web.Response(body=answer[: len(answer) // 2],
                                    content_type="application/json")
            if failure == "reset":
                return await self._reset(request, answer)
            return web.Response(body=answer, content_type="application/json")
        finally:
            with self._lock:
                self.in_flight -= 1

    def _echo(self, request: web.Request) -> str:
        """What a careless server puts in an error: the request's headers, key included."""
        headers = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
        return "x" * self.behaviour.echo_padding + f"request headers were {headers}"

    async def _reset(self, request: web.Request, answer: bytes) -> web.StreamResponse:
        """Announce the whole answer, send half of it, then drop the connection."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(answer)
        await response.prepare(request)
        await response.write(answer[: len(answer) // 2])
        # abort(), not close(): the client must see the connection die mid-body, not a
        # graceful end of stream
        if request.transport is not None:
            request.transport.abort()
        return response

    async def _huge(self, request: web.Request, *, declared: bool) -> web.StreamResponse:
        """A valid but enormous answer, written chunk by chunk until the client hangs up;
        :attr:`huge_sent` tells how much of it the client let through."""
        total = self.behaviour.huge_bytes
        head = b'{"choices": [{"message": {"role": "assistant", "content": "'
        tail = b'"}}]}'
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declared:
            response.content_length = total
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        self.huge_sent = 0
        try:
            await response.write(head)
            self.huge_sent = len(head)
            while self.huge_sent < total - len(tail):
                chunk = _CHUNK[: total - len(tail) - self.huge_sent]
                await response.write(chunk)
                self.huge_sent += len(chunk)
            await response.write(tail)
            self.huge_sent += len(tail)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up, as it should past its size cap
        return response

    async def _models(self, request: web.Request) -> web.StreamResponse:
        models = self.behaviour.models
        if models is None:
            raise web.HTTPNotFound()
        await asyncio.sleep(self.behaviour.latency_s)
        return web.json_response({"object": "list", "data": [
            {"id": model, "object": "model"} for model in models]})

    async def _transcribe(self, request: web.Request) -> web.StreamResponse:
        """A scripted ASR server: answers the transcript registered for the file's name."""
        form = await request.post()
        with self._lock:
            self.requests += 1
            failure = self.behaviour.failures.pop(0) if self.behaviour.failures else None
        # the faults an HTTP adapter must survive whatever it asks (see FAULTS)
        if failure in ("huge", "huge-declared"):
            return await self._huge(request, declared=failure == "huge-declared")
        if failure == "redirect":
            return web.Response(status=307, headers={"Location": self.behaviour.redirect_to})
        if failure == "echo":
            return web.json_response({"error": {"message": self._echo(request)}}, status=500)
        if isinstance(failure, int):
            return web.json_response({"error": {"message": f"scripted {failure}"}},
                                     status=failure)
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return web.json_response({"error": {"message": "no file"}}, status=400)
        if self.behaviour.latency_s:
            await asyncio.sleep(self.behaviour.latency_s)
        return web.json_response({"text": self.behaviour.transcripts.get(upload.filename, "")})

    def start(self) -> MockServer:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True,
                                        shutdown_timeout=0.2)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
            loop.run_until_complete(site.start())
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                self.port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    args = parser.parse_args()
    server = MockServer(Behaviour(latency_s=args.latency))
    server.port = args.port
    server.start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
