"""Untrusted endpoints: real runs against a real server on 127.0.0.1 that misbehaves in
every way moroccan_eval.mockserver.FAULTS knows. Whatever the endpoint does, the run ends,
every item has exactly one prediction record, a failure is a recorded error (never dropped,
never duplicated), a transient fault is retried, a response cannot grow past
``limits.max_response_bytes``, a redirect is never followed with credentials, and no
secret (the API key, custom header values) is stored, exported, reported or printed."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import write_model

from moroccan_eval.adapters import build_adapter, load_model
from moroccan_eval.adapters.base import (
    Adapter,
    Limits,
    ModelSpec,
    NoOptions,
    Request,
    Response,
    TaskContext,
)
from moroccan_eval.cli import main
from moroccan_eval.mockserver import FAULTS, Behaviour, MockServer
from moroccan_eval.runs.requests import RateLimiter, call_with_retries
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite

MIB = 1024 * 1024
#: Faults a retry may cure, and those it cannot (a server that answers garbage once
#: answers it again: retrying would only multiply the cost).
RETRYABLE: list[int | str] = [500, 502, 503, 429, "429-bare", "hang", "reset", "echo"]
FINAL: list[int | str] = ["truncated", "malformed", "empty", "huge", "huge-declared",
                          "gzip-bomb", "redirect"]
#: A phrase each fault's recorded error must contain (it says what went wrong).
MESSAGES: dict[int | str, str] = {
    500: "HTTP 500", 502: "HTTP 502", 503: "HTTP 503", 429: "HTTP 429", "429-bare": "HTTP 429",
    "hang": "timed out after 2 s", "reset": "connection to", "echo": "HTTP 500",
    "truncated": "malformed JSON", "malformed": "malformed JSON", "empty": "has no choices",
    "huge": "limits.max_response_bytes", "huge-declared": "limits.max_response_bytes",
    "gzip-bomb": "over limits.max_response_bytes",
    "redirect": "set base_url to the final URL",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def other_server() -> Iterator[MockServer]:
    """A second server on another port: another origin, for redirects."""
    with MockServer(Behaviour()) as srv:
        yield srv


def _serve(server: MockServer, fault: int | str, count: int) -> None:
    """Make the next ``count`` requests meet ``fault``."""
    if fault == "429-bare":
        fault, server.behaviour.retry_after = 429, None
    server.behaviour.failures = [fault] * count


def _test_ids(suite: Path) -> Counter[str]:
    items = [json.loads(line) for line in
             (suite / "data" / "intents.jsonl").read_text("utf-8").splitlines()]
    return Counter(item["id"] for item in items if item["split"] == "test")


def _run(tmp_path: Path, suite: Path | str, model: Path, *, limit: int | None = None,
         name: str = "run") -> tuple[Path, list[dict[str, Any]]]:
    """A real run: its folder and its prediction records as written to disk."""
    [result] = run(RunOptions(suite=load_suite(str(suite)), out_dir=tmp_path / name,
                              cache_dir=tmp_path / f"{name}-cache", limit=limit,
                              progress=False), [load_model(str(model))])
    records = [json.loads(line) for line in
               (result.path / "predictions.jsonl").read_text("utf-8").splitlines()]
    return result.path, records


def _model(tmp_path: Path, server: MockServer, **limits: Any) -> Path:
    return write_model(tmp_path / "m.yaml", server.base_url, limits={
        "concurrency": 4, "timeout_s": 2, "retries": 2, "backoff_base_s": 0.01, **limits})


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("fault", RETRYABLE)
def test_a_transient_fault_is_retried_and_the_run_completes(
        tmp_path: Path, mini_suite: Path, server: MockServer, fault: int | str) -> None:
    _serve(server, fault, 4)
    _, records = _run(tmp_path, mini_suite, _model(tmp_path, server))
    assert Counter(r["id"] for r in records) == _test_ids(mini_suite)
    assert [r["error"] for r in records if r["error"]] == []
    assert sum(r["attempts"] for r in records) == len(records) + 4
    assert server.requests == len(records) + 4


@pytest.mark.parametrize("fault", RETRYABLE + FINAL)
def test_a_persistent_fault_is_one_recorded_error_per_item(
        tmp_path: Path, mini_suite: Path, server: MockServer, fault: int | str) -> None:
    server.behaviour.huge_bytes = 8 * MIB
    _serve(server, fault, 1000)
    # every item at once, so that hanging requests time out together
    _, records = _run(tmp_path, mini_suite, _model(tmp_path, server, retries=1,
                                                   max_response_bytes=MIB, concurrency=12))
    assert Counter(r["id"] for r in records) == _test_ids(mini_suite)
    errors = [str(r["error"]) for r in records]
    assert all(MESSAGES[fault] in error for error in errors), errors[0]
    assert all(r["output"] is None for r in records)
    tries = 2 if fault in RETRYABLE else 1
    assert all(r["attempts"] == tries for r in records)
    assert all(f"(after {tries} attempt(s))" in error for error in errors)
    assert server.requests == tries * len(records)


def test_the_fault_server_serves_every_named_fault() -> None:
    """Every fault FAULTS names is exercised by a run above or below."""
    covered = set(RETRYABLE) | set(FINAL) | {"bad-tool-args", "echo-ok"}
    assert set(FAULTS) <= covered


def test_tool_calls_with_broken_arguments_are_a_scored_answer(tmp_path: Path,
                                                              server: MockServer) -> None:
    """Invalid JSON arguments are the model's mistake, scored as such, not a crash."""
    model = write_model(tmp_path / "agent.yaml", server.base_url, name="agent")
    server.behaviour.failures = ["bad-tool-args"] * 1000
    _, records = _run(tmp_path, "agent", model, limit=2)
    assert records and all(r["error"] is None for r in records)
    assert all(r["tool_calls"][0]["function"]["arguments"] == '{"order_id": "CMD-1'
               for r in records)
    assert all(r["parsed"]["valid_json"] is False for r in records)
    assert all(r["correct"] is False for r in records)
    assert len({r["id"] for r in records}) == len(records) == server.requests


# --------------------------------------------------------------------------- size cap


def test_the_size_cap_defaults_to_4_mib_and_says_how_to_raise_it() -> None:
    assert Limits().max_response_bytes == 4 * MIB
    description = Limits.model_fields["max_response_bytes"].description or ""
    assert "4 MiB" in description


@pytest.mark.parametrize("fault", ["huge", "huge-declared", "gzip-bomb"])
def test_a_huge_answer_is_cut_off_while_it_streams(tmp_path: Path, mini_suite: Path,
                                                   server: MockServer, fault: str) -> None:
    """15 × 10 MB answers once made a 151 MB predictions file and a 301 MB cache: now the
    body is read only up to the cap, then the connection is dropped."""
    server.behaviour.huge_bytes = 64 * MIB
    _serve(server, fault, 1000)
    run_dir, records = _run(tmp_path, mini_suite, _model(tmp_path, server, concurrency=1,
                                                         max_response_bytes=MIB, timeout_s=20))
    assert all("over limits.max_response_bytes (1048576 bytes)" in str(r["error"])
               for r in records), records[0]["error"]
    assert server.requests == len(records)  # not retried: it would only come back as big
    assert server.huge_sent < 24 * MIB  # stopped reading near 1 MiB; the rest is buffers
    assert (run_dir / "predictions.jsonl").stat().st_size < 64 * 1024
    assert sum(p.stat().st_size for p in (tmp_path / "run-cache").rglob("*")) < MIB


def test_an_answer_under_the_cap_is_read_whole(tmp_path: Path, mini_suite: Path,
                                               server: MockServer) -> None:
    server.behaviour.huge_bytes = 3 * MIB
    _serve(server, "huge", 1)
    _, records = _run(tmp_path, mini_suite, _model(tmp_path, server, concurrency=1,
                                                   timeout_s=20))
    assert [len(r["output"]) for r in records if len(r["output"]) > MIB] == [
        3 * MIB - len('{"choices": [{"message": {"role": "assistant", "content": "') - 5]
    assert all(r["error"] is None for r in records)


# --------------------------------------------------------------------------- secrets


def _secrets(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    key = "sk-live-" + secrets.token_hex(16)
    header = "org-" + secrets.token_hex(12)
    monkeypatch.setenv("ENDPOINT_KEY", key)
    return key, header


def _files_containing(folder: Path, secret: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_no_secret_is_stored_exported_reported_or_printed(
        tmp_path: Path, mini_suite: Path, server: MockServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The server echoes the request's headers in 500 errors and in 200 answers (text,
    tool call, extra fields): the key and the custom header value are redacted before the
    run writes, caches, exports, reports or prints anything."""
    key, header = _secrets(monkeypatch)
    model = write_model(tmp_path / "m.yaml", server.base_url, api_key_env="ENDPOINT_KEY",
                        headers={"X-Org-Secret": header},
                        limits={"concurrency": 2, "retries": 1, "backoff_base_s": 0.01})
    server.behaviour.failures = [*["echo-ok"] * 6, *["echo"] * 1000]
    cli = CliRunner()
    out = tmp_path / "out"
    ran = cli.invoke(main, ["run", "--suite", str(mini_suite), "--model", str(model),
                            "--out", str(out / "runs"), "--cache-dir", str(out / "cache"),
                            "--no-progress"])
    assert ran.exit_code == 0, ran.output
    assert server.received(key) and server.received(header)  # the server did echo them
    [run_dir] = (out / "runs").iterdir()
    records = [json.loads(line) for line in
               (run_dir / "predictions.jsonl").read_text("utf-8").splitlines()]
    assert sum("[REDACTED]" in str(r["output"]) for r in records) == 6
    assert sum("[REDACTED]" in str(r["error"]) for r in records) == len(records) - 6
    outputs = [ran.output]
    for what, fmt in [("predictions", "jsonl"), ("predictions", "csv"), ("scores", "json")]:
        done = cli.invoke(main, ["export", str(run_dir), "--what", what, "--format", fmt,
                                 "-o", str(out / "exports" / f"{what}.{fmt}")])
        assert done.exit_code == 0, done.output
        outputs.append(done.output)
    done = cli.invoke(main, ["report", str(run_dir), "-o", str(out / "report.html")])
    assert done.exit_code == 0, done.output
    outputs.append(done.output)
    for secret in (key, header):
        assert _files_containing(out, secret) == []
        assert not any(secret in text for text in outputs)


@pytest.mark.parametrize("fault", ["echo", "echo-ok"])
def test_models_check_prints_no_secret(tmp_path: Path, server: MockServer,
                                       monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    key, header = _secrets(monkeypatch)
    model = write_model(tmp_path / "m.yaml", server.base_url, api_key_env="ENDPOINT_KEY",
                        headers={"X-Org-Secret": header}, limits={"retries": 0})
    server.behaviour.failures = [fault]
    done = CliRunner().invoke(main, ["models", "check", str(model)])
    # echo: an error; echo-ok: an answer, but not the 'ok' asked for: the check fails too
    assert done.exit_code == 1, done.output
    assert "[REDACTED]" in done.output  # output holds stdout and stderr, as a terminal
    assert "[REDACTED]" in done.stderr  # the error goes to stderr
    assert fault == "echo" or "did not follow the instruction" in done.stderr
    assert key not in done.output and header not in done.output
    assert key[-12:] not in done.output and header[-12:] not in done.output


def test_a_key_cut_by_the_error_snippet_leaves_no_fragment(
        tmp_path: Path, mini_suite: Path, server: MockServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Error messages quote the first 200 characters of a body: a key straddling that cut
    must not leave its first half behind (redaction comes before the cut)."""
    key, _ = _secrets(monkeypatch)
    model = write_model(tmp_path / "m.yaml", server.base_url, api_key_env="ENDPOINT_KEY",
                        limits={"retries": 0, "concurrency": 1})
    errors = []
    for padding in range(0, 200, 9):
        server.behaviour.echo_padding = padding
        server.behaviour.failures = ["echo"] * 1000
        _, records = _run(tmp_path, mini_suite, model, limit=1, name=f"pad{padding}")
        errors += [str(r["error"]) for r in records]
    fragments = [key[i:i + 8] for i in range(len(key) - 8)]
    assert not [e for e in errors if any(f in e for f in fragments)]


# --------------------------------------------------------------------------- redirects


def test_a_redirect_is_not_followed_with_credentials(
        tmp_path: Path, mini_suite: Path, server: MockServer, other_server: MockServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    key, header = _secrets(monkeypatch)
    target = other_server.base_url + "/chat/completions"
    server.behaviour.redirect_to = target
    server.behaviour.failures = ["redirect"] * 1000
    model = write_model(tmp_path / "m.yaml", server.base_url, api_key_env="ENDPOINT_KEY",
                        headers={"X-Org-Secret": header}, limits={"retries": 2})
    _, records = _run(tmp_path, mini_suite, model)
    assert other_server.seen == []  # never asked, so never given the header or the key
    assert not other_server.received(header) and not other_server.received(key)
    assert server.requests == len(records)  # not retried
    for record in records:
        assert f"HTTP 307 redirect from {server.base_url}/chat/completions to {target}" in \
            record["error"]
        assert "set base_url to the final URL" in record["error"]


def test_a_transcription_redirect_is_not_followed(
        tmp_path: Path, server: MockServer, other_server: MockServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    key, header = _secrets(monkeypatch)
    server.behaviour.redirect_to = other_server.base_url + "/audio/transcriptions"
    server.behaviour.failures = ["redirect", "huge"]
    server.behaviour.huge_bytes = 8 * MIB
    spec = load_model(str(write_model(
        tmp_path / "asr.yaml", server.base_url, adapter="openai_audio",
        api_key_env="ENDPOINT_KEY", headers={"X-Org-Secret": header},
        limits={"retries": 0, "max_response_bytes": MIB})))
    (tmp_path / "a.wav").write_bytes(b"RIFF" + bytes(64))

    async def ask() -> list[str | None]:
        adapter = build_adapter(spec)
        await adapter.start_task(TaskContext(name="asr", type="asr", labels=[],
                                             input_fields=["audio"], root=str(tmp_path)))
        request = Request(messages=[], input={"audio": "a.wav"})
        try:
            return [(await call_with_retries(adapter, request, spec, RateLimiter(None)))[1]
                    for _ in range(2)]
        finally:
            await adapter.aclose()

    redirected, huge = asyncio.run(ask())
    assert other_server.seen == []
    assert redirected is not None and "HTTP 307 redirect" in redirected
    assert "set base_url to the final URL" in redirected
    assert key not in redirected and header not in redirected
    assert huge is not None and "over limits.max_response_bytes (1048576 bytes)" in huge


# --------------------------------------------------------------------------- bad endpoints


@pytest.mark.parametrize(("endpoint", "message"), [
    ("http://", "base_url 'http://' has no host"),
    ("http://:80/v1", "base_url 'http://:80/v1' is not a valid URL"),
    ("http://127.0.0.1:99999/v1", "base_url 'http://127.0.0.1:99999/v1' is not a valid URL"),
    ("closed-port", "is the server running, and are the host and port in base_url right?"),
    ("401", "bad credentials; check the key in $ENDPOINT_KEY"),
])
def test_a_misconfigured_endpoint_gives_a_clear_error_per_item(
        tmp_path: Path, mini_suite: Path, server: MockServer,
        monkeypatch: pytest.MonkeyPatch, endpoint: str, message: str) -> None:
    key, header = _secrets(monkeypatch)
    server.behaviour.require_key = "the-right-key"
    url = {"closed-port": f"http://127.0.0.1:{_free_port()}/v1",
           "401": server.base_url}.get(endpoint, endpoint)
    model = write_model(tmp_path / "m.yaml", url, api_key_env="ENDPOINT_KEY",
                        headers={"X-Org-Secret": header},
                        limits={"retries": 1, "backoff_base_s": 0.01, "timeout_s": 2})
    _, records = _run(tmp_path, mini_suite, model)
    assert Counter(r["id"] for r in records) == _test_ids(mini_suite)
    for record in records:
        assert message in record["error"], record["error"]
        assert key not in record["error"] and header not in record["error"]
    # only a dropped connection may come back: a bad URL or key will not fix itself
    assert {r["attempts"] for r in records} == {2 if endpoint == "closed-port" else 1}
    assert not [r for r in records if "adapter crashed" in r["error"]]


# --------------------------------------------------------------------------- hostile 200s


def _answer(message: Any = None, usage: Any = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {"choices": [{"message": message}], **extra}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


def _deep(levels: int) -> bytes:
    """An answer nested ``levels`` deep: its object, then lists inside ``x``."""
    return (b'{"choices": [{"message": {"content": "ok"}}], "x": ' + b"[" * (levels - 1)
            + b"]" * (levels - 1) + b"}")


#: 200 answers an endpoint may send: name → (body, the answer's text or the error phrase).
PAYLOADS: dict[str, tuple[bytes, str]] = {
    "a list": (b"[1, 2]", "has no choices"),
    "choices a string": (b'{"choices": "ok"}', "has no choices"),
    "choice a string": (b'{"choices": ["ok"]}', "has no choices"),
    "message a string": (_answer("ok"), "message is not an object"),
    "content a number": (_answer({"content": 42}), "content is not text"),
    "content an object": (_answer({"content": {"a": 1}}), "content is not text"),
    "content parts": (_answer({"content": [{"type": "text", "text": "ref"},
                                           {"type": "text", "text": "und"}]}), "=refund"),
    "content null": (_answer({"content": None}), "="),
    "tool_calls a string": (_answer({"content": "", "tool_calls": "abc"}),
                            "tool_calls is not a list of objects"),
    "tool_calls of strings": (_answer({"content": "", "tool_calls": ["abc"]}),
                              "tool_calls is not a list of objects"),
    "usage a string": (_answer({"content": "refund"}, "lots"), "usage is not an object"),
    "tokens negative": (_answer({"content": "refund"}, {"prompt_tokens": -5}),
                        "usage.prompt_tokens is not a token count"),
    "tokens text": (_answer({"content": "refund"}, {"completion_tokens": "many"}),
                    "usage.completion_tokens is not a token count"),
    "tokens NaN": (b'{"choices": [{"message": {"content": "refund"}}], '
                   b'"usage": {"prompt_tokens": NaN}}', "usage.prompt_tokens is not a token"),
    "tokens 1e30": (_answer({"content": "refund"}, {"prompt_tokens": 10**30}),
                    "usage.prompt_tokens is not a token count"),
    "tokens true": (_answer({"content": "refund"}, {"prompt_tokens": True}),
                    "usage.prompt_tokens is not a token count"),
    "nested 900 deep": (_deep(901), "nested deeper than"),
    "nested 65 deep": (_deep(65), "nested deeper than"),
    "nested 64 deep": (_deep(64), "=ok"),
    "many brackets, shallow": (_answer({"content": "ok"}, x=[{"a": []}] * 100), "=ok"),
    "nested 100000 deep": (b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                           "malformed JSON"),
    "not UTF-8": (b'{"choices": [{"message": {"content": "\xff\xfe"}}]}', "malformed JSON"),
    "lone surrogate": (_answer({"content": "ref\ud800und"}), "=ref\ufffdund"),
    # the raw answer is cached: no lone surrogate anywhere in it either
    "lone surrogate in a tool call": (_answer({"content": "", "tool_calls": [
        {"function": {"name": "x\udfff", "arguments": "{}"}}]}), "="),
    "lone surrogate outside the message": (_answer({"content": "refund"}, x="\ud800"),
                                           "=refund"),
    "control characters": (_answer({"content": "ref\u0000\u001bund"}), "=ref\u0000\u001bund"),
    "bidi override": (_answer({"content": "\u202erefund"}), "=\u202erefund"),
}


def test_hostile_answers_are_an_answer_or_one_clear_error(
        tmp_path: Path, mini_suite: Path, server: MockServer) -> None:
    """Every shape a 200 may take: read as an answer, or recorded as a clear error (never
    an "adapter crashed", never a run that stops)."""
    names = list(PAYLOADS)
    model = _model(tmp_path, server, concurrency=1, retries=0)
    by_name: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), 12):  # the mini suite has 12 test items
        batch = names[start:start + 12]
        server.behaviour.failures = [PAYLOADS[name][0] for name in batch]
        _, records = _run(tmp_path, mini_suite, model, name=f"batch{start}")
        assert Counter(r["id"] for r in records) == _test_ids(mini_suite)
        # concurrency 1: the items are sent in order, each meets the next payload
        by_name.update(zip(batch, records, strict=False))
    assert len(by_name) == len(names)
    for name, record in by_name.items():
        expected = PAYLOADS[name][1]
        if expected.startswith("="):
            assert record["error"] is None and record["output"] == expected[1:], name
        else:
            assert expected in str(record["error"]), (name, record["error"])
            assert "adapter crashed" not in str(record["error"])


class _Verbose(Adapter[NoOptions]):
    """A plugin-style adapter that reads no HTTP body through the capped reader."""

    async def generate(self, request: Request) -> Response:
        size = int(request.input["size"])
        if request.input.get("tools"):
            return Response(text="", tool_calls=[{"function": {"arguments": "x" * size}}])
        return Response(text="é" * (size // 2))


@pytest.mark.parametrize("tools", [False, True])
def test_the_size_cap_holds_for_any_adapter(tools: bool) -> None:
    spec = ModelSpec(name="verbose", adapter="python",
                     limits=Limits(max_response_bytes=MIB, retries=3))
    adapter = _Verbose(spec, NoOptions())

    def ask(size: int) -> tuple[Response | None, str | None, int]:
        request = Request(messages=[], input={"size": size, "tools": tools})
        return asyncio.run(call_with_retries(adapter, request, spec, RateLimiter(None)))

    response, error, attempts = ask(MIB + 2)
    assert response is None and attempts == 1
    assert error == ("response from model 'verbose' is over limits.max_response_bytes "
                     "(1048576 bytes); raise limits.max_response_bytes in the model YAML if "
                     "answers this long are expected (after 1 attempt(s))")
    response, error, _ = ask(MIB - 100)
    assert response is not None and error is None


def test_a_long_key_echoed_past_the_read_prefix_leaves_no_fragment(
        server: MockServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the first 8 KiB of an error body are read. A long token (a JWT, say) echoed a
    few times shrinks so much once redacted that a fragment cut at 8 KiB would come within
    the quoted 200 characters: the cut tail is dropped, not quoted."""
    key = "eyJ" + secrets.token_hex(1000)
    monkeypatch.setenv("ENDPOINT_KEY", key)
    spec = ModelSpec.model_validate({
        "name": "jwt", "adapter": "openai_compat", "base_url": server.base_url, "model": "m",
        "api_key_env": "ENDPOINT_KEY", "headers": {c: key for c in "ABCDE"},
        "limits": {"retries": 0}})
    server.behaviour.failures = ["echo"]

    async def ask() -> str | None:
        adapter = build_adapter(spec)
        try:
            request = Request(messages=[{"role": "user", "content": "hi"}], input={})
            return (await call_with_retries(adapter, request, spec, RateLimiter(None)))[1]
        finally:
            await adapter.aclose()

    error = asyncio.run(ask())
    assert error is not None and "[REDACTED]" in error
    assert not [i for i in range(len(key) - 8) if key[i:i + 8] in error]


def test_a_retry_after_longer_than_backoff_max_is_not_obeyed(
        tmp_path: Path, mini_suite: Path, server: MockServer) -> None:
    """A hostile or broken endpoint sending ``Retry-After: 3600`` to every request must
    not stall a run for hours: the wait is at most ``limits.backoff_max_s``."""
    server.behaviour.retry_after = "3600"
    _serve(server, 429, 1000)
    started = time.monotonic()
    _, records = _run(tmp_path, mini_suite, _model(tmp_path, server, retries=2,
                                                   backoff_max_s=0.2))
    assert time.monotonic() - started < 10
    assert all("HTTP 429" in r["error"] and r["attempts"] == 3 for r in records)


def lone_surrogate_answer(request: dict[str, Any]) -> dict[str, Any]:
    """A plugin model answering text no UTF-8 file can hold (a lone UTF-16 surrogate)."""
    return {"text": "ref\ud800und", "tool_calls": [{"function": {"name": "x\udfff"}}]}


def test_an_answer_no_utf8_file_can_hold_does_not_stop_the_run(
        tmp_path: Path, mini_suite: Path) -> None:
    model = tmp_path / "plugin.yaml"
    model.write_text("name: plugin\nadapter: python\n"
                     f"callable: {__name__}:lone_surrogate_answer\n", encoding="utf-8")
    _, records = _run(tmp_path, mini_suite, model)
    assert Counter(r["id"] for r in records) == _test_ids(mini_suite)
    assert {r["output"] for r in records} == {"ref\ufffdund"}
    assert records[0]["tool_calls"] == [{"function": {"name": "x\ufffd"}}]
