"""A small OpenAI-compatible chat server for tests, benchmarks and trying a setup offline.

It answers ``POST /v1/chat/completions`` after a fixed latency with a scripted reply, and
can be told to fail: a list of HTTP statuses served to the first requests (``429`` comes
with ``Retry-After``), a malformed body, empty choices, or a hang. It counts requests per
body so tests can prove that a resumed run never re-sends a completed request.

Run standalone: ``python -m moroccan_eval.mockserver --port 8000 --latency 0.2``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


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
    failures: list[int | str] = field(default_factory=list)  # served first, one per request
    retry_after: str = "0"
    require_key: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    #: builds the whole assistant message (content, tool_calls) from the request body
    answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: /v1/audio/transcriptions: file name → transcript (unknown files transcribe as "")
    transcripts: dict[str, str] = field(default_factory=dict)


class MockServer:
    """The server; ``start()`` runs it on 127.0.0.1 in a background thread."""

    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.requests = 0
        self.bodies: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        return app

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        behaviour = self.behaviour
        with self._lock:
            self.requests += 1
            self.bodies[hashlib.sha256(raw).hexdigest()] += 1
            failure = behaviour.failures.pop(0) if behaviour.failures else None
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
            if failure == "empty":
                return web.json_response({"choices": []})
            if isinstance(failure, int):
                headers = {"Retry-After": behaviour.retry_after} if failure == 429 else {}
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
            text = str(message.get("content") or "")
            prompt_tokens = sum(len(str(m.get("content", "")).split())
                                for m in body.get("messages", []))
            return web.json_response({
                "id": "chatcmpl-mock", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                          "total_tokens": prompt_tokens + len(text.split())},
            })
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _transcribe(self, request: web.Request) -> web.StreamResponse:
        """A scripted ASR server: answers the transcript registered for the file's name."""
        form = await request.post()
        with self._lock:
            self.requests += 1
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
