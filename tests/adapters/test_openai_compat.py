"""openai_compat against a real HTTP server on 127.0.0.1, counting requests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from moroccan_eval.adapters import build_adapter
from moroccan_eval.adapters.base import ModelSpec, Request, Response, TaskContext
from moroccan_eval.adapters.openai_compat import parse_retry_after
from moroccan_eval.errors import ConfigError
from moroccan_eval.mockserver import MockServer
from moroccan_eval.runs.requests import RateLimiter, call_with_retries


def spec_for(server: MockServer, **limits: Any) -> ModelSpec:
    return ModelSpec.model_validate({
        "name": "mock", "adapter": "openai_compat", "base_url": server.base_url,
        "model": "mock-model", "params": {"temperature": 0},
        "limits": {"timeout_s": 5, "retries": 2, "backoff_base_s": 0.01, **limits},
    })


def ask(spec: ModelSpec, n: int = 1) -> list[tuple[Response | None, str | None, int]]:
    async def go() -> list[tuple[Response | None, str | None, int]]:
        adapter = build_adapter(spec)
        limiter = RateLimiter(spec.limits.requests_per_minute)
        try:
            return list(await asyncio.gather(*(
                call_with_retries(adapter, Request(
                    messages=[{"role": "user", "content": f"- refund: money back\n#{i}"}],
                    input={"text": str(i)}), spec, limiter)
                for i in range(n))))
        finally:
            await adapter.aclose()
    return asyncio.run(go())


def test_success_reads_text_usage_and_tool_calls(server: MockServer) -> None:
    server.behaviour.tool_calls = [{"id": "c1", "type": "function",
                                    "function": {"name": "create_ticket", "arguments": "{}"}}]
    [(response, error, attempts)] = ask(spec_for(server))
    assert error is None and attempts == 1 and response is not None
    assert response.text == "refund"
    assert response.input_tokens > 0 and response.output_tokens == 1
    assert response.tool_calls[0]["function"]["name"] == "create_ticket"
    assert response.latency_ms > 0
    assert server.requests == 1


def test_429_is_retried_after_the_servers_retry_after(server: MockServer) -> None:
    server.behaviour.failures = [429]
    server.behaviour.retry_after = "1"
    started = time.monotonic()
    [(response, error, attempts)] = ask(spec_for(server))
    assert response is not None and error is None and attempts == 2
    assert time.monotonic() - started >= 0.95
    assert server.requests == 2


def test_500_then_success(server: MockServer) -> None:
    server.behaviour.failures = [500, 503]
    [(response, _, attempts)] = ask(spec_for(server))
    assert response is not None and attempts == 3 and server.requests == 3


def test_persistent_500_becomes_a_recorded_error(server: MockServer) -> None:
    server.behaviour.failures = [500] * 10
    [(response, error, attempts)] = ask(spec_for(server, retries=2))
    assert response is None and attempts == 3 and server.requests == 3
    assert error is not None and "HTTP 500" in error and "after 3 attempt(s)" in error


def test_timeout_is_retried_then_reported(server: MockServer) -> None:
    server.behaviour.failures = ["hang", "hang"]
    [(response, error, _)] = ask(spec_for(server, timeout_s=0.3, retries=1))
    assert response is None and error is not None
    assert "timed out after 0.3 s (after 2 attempt(s))" in error


@pytest.mark.parametrize(("failure", "message"),
                         [("malformed", "malformed JSON"), ("empty", "has no choices")])
def test_bad_bodies_are_errors_without_retry(server: MockServer, failure: str,
                                             message: str) -> None:
    server.behaviour.failures = [failure]
    [(response, error, attempts)] = ask(spec_for(server))
    assert response is None and error is not None and message in error
    assert attempts == 1 and server.requests == 1


def test_key_comes_from_the_named_env_var(server: MockServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server.behaviour.require_key = "sk-test-123"
    spec = spec_for(server).model_copy(update={"api_key_env": "MOCK_KEY"})
    monkeypatch.setenv("MOCK_KEY", "wrong")
    [(response, error, attempts)] = ask(spec)
    assert response is None and error is not None and attempts == 1
    assert "bad credentials; check the key in $MOCK_KEY" in error
    assert "wrong" not in error
    monkeypatch.setenv("MOCK_KEY", "sk-test-123")
    [(response, error, _)] = ask(spec)
    assert response is not None and error is None


def test_missing_key_env_var_is_a_config_error(server: MockServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOCK_KEY", raising=False)
    spec = spec_for(server).model_copy(update={"api_key_env": "MOCK_KEY"})
    with pytest.raises(ConfigError, match="environment variable MOCK_KEY is not set"):
        build_adapter(spec)


def test_unreachable_endpoint_is_a_recorded_error() -> None:
    spec = ModelSpec.model_validate({
        "name": "down", "adapter": "openai_compat", "base_url": "http://127.0.0.1:9/v1",
        "model": "x", "limits": {"retries": 1, "backoff_base_s": 0.01}})
    [(response, error, attempts)] = ask(spec)
    assert response is None and attempts == 2 and error is not None
    assert "cannot reach http://127.0.0.1:9/v1/chat/completions" in error


def test_concurrency_and_rate_limits_are_honoured(server: MockServer) -> None:
    server.behaviour.latency_s = 0.1
    ask(spec_for(server, concurrency=3), n=12)
    assert server.max_in_flight == 3
    started = time.monotonic()
    ask(spec_for(server, requests_per_minute=600), n=6)  # one start every 0.1 s
    assert time.monotonic() - started >= 0.5


def test_the_identity_request_takes_no_requests_connection(server: MockServer) -> None:
    """GET /models (as slow as the chats here) goes out beside the first requests: all
    ``concurrency`` of them go out at once, none waits for a connection it holds."""
    server.behaviour.latency_s, server.behaviour.models = 0.4, ["mock-model"]
    spec = spec_for(server, concurrency=4)

    async def go() -> Any:
        adapter = build_adapter(spec)
        limiter = RateLimiter(None)
        try:
            await adapter.start_task(TaskContext(name="intents", type="classification",
                                                 labels=[], input_fields=["text"]))
            await asyncio.gather(*(call_with_retries(adapter, Request(
                messages=[{"role": "user", "content": f"#{i}"}], input={"text": str(i)}),
                spec, limiter) for i in range(4)))
            await adapter.settle_identity()
            return adapter.identity()
        finally:
            await adapter.aclose()

    assert asyncio.run(go()) == {"adapter": "openai_compat", "models": ["mock-model"]}
    assert [method for method, path, _ in server.seen].count("GET") == 1
    assert max(server.arrivals) - min(server.arrivals) < 0.2  # not a round (0.4 s) apart


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


@pytest.mark.parametrize("base_url", ["http://user:sk-secret-123@127.0.0.1:9/v1",
                                      "https://sk-secret-123@api.example/v1"])
def test_credentials_in_base_url_are_refused(tmp_path: Any, base_url: str) -> None:
    """A key written into base_url would be in every error message and in the manifest:
    the model file is refused, pointing to api_key_env."""
    from conftest import write_model

    from moroccan_eval.adapters import load_model

    with pytest.raises(ConfigError, match="api_key_env") as raised:
        load_model(str(write_model(tmp_path / "m.yaml", base_url)))
    assert "sk-secret-123" not in str(raised.value)


@pytest.mark.parametrize(("headers", "problem"), [
    ({"X-Key": "sk-secret-123\r\nX-Evil: 1"},
     "headers: Value error, the value of X-Key holds a line break"),
    ({"Bad Name": "sk-secret-123"}, "headers: Value error, 'Bad Name' is not a header name"),
])
def test_malformed_headers_are_refused_without_their_value(
        tmp_path: Any, headers: dict[str, str], problem: str) -> None:
    """A line break in a header value (header injection) or a malformed name is a config
    error naming the header, never showing its value; not a per-item crash."""
    from conftest import write_model

    from moroccan_eval.adapters import load_model

    with pytest.raises(ConfigError) as raised:
        load_model(str(write_model(tmp_path / "m.yaml", "http://127.0.0.1:9/v1",
                                   headers=headers)))
    assert problem in str(raised.value)
    assert "sk-secret-123" not in str(raised.value)


@pytest.mark.parametrize("kind", ["json_schema", "gbnf"])
def test_constrained_output_restricts_answers_to_the_task_labels(
        kind: str, tmp_path: Any, mini_suite: Any, server: MockServer) -> None:
    """An endpoint that honours the constraint (as vLLM's response_format or llama.cpp's
    grammar do) can only answer a label: every answer parses."""
    import json

    from conftest import write_model

    from moroccan_eval.adapters import load_model
    from moroccan_eval.runs.runner import RunOptions, run
    from moroccan_eval.suites.loader import load_suite

    seen: list[dict[str, Any]] = []

    def honour(body: dict[str, Any]) -> dict[str, Any]:
        seen.append(body)
        if kind == "gbnf":  # the grammar's first alternative
            return {"content": json.loads(body["grammar"].split(" ::= ")[1].split(" | ")[0])}
        enum = body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"]
        return {"content": json.dumps({"label": enum[-1]})}

    server.behaviour.answer = honour
    spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url,
                                      constrained_output=kind)))
    [result] = run(RunOptions(suite=load_suite(mini_suite), out_dir=tmp_path / "runs",
                              progress=False), [spec])
    entry = result.scores.tasks["intents"]
    assert sum(v.unparsed for v in entry.varieties.values()) == 0
    assert len(seen) == 12
    if kind == "gbnf":
        assert seen[0]["grammar"] == 'root ::= "refund" | "delivery_status" | "other"'
    else:
        assert seen[0]["response_format"]["json_schema"]["schema"]["properties"]["label"][
            "enum"] == ["refund", "delivery_status", "other"]


def test_no_constraint_without_labels_or_when_not_asked() -> None:
    from moroccan_eval.adapters.openai_compat import label_constraint

    assert label_constraint(None, ["a", "b"]) == {}
    assert label_constraint("gbnf", []) == {}
    assert label_constraint("gbnf", ['say "hi"']) == {"grammar": 'root ::= "say \\"hi\\""'}
