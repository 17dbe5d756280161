"""The Redactor: what counts as a secret and how a snippet of an untrusted body is cut."""

from __future__ import annotations

import pytest

from moroccan_eval.adapters.base import ModelSpec, Response
from moroccan_eval.adapters.redact import REDACTED, Redactor


def test_the_secrets_of_a_spec_are_its_key_and_header_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_KEY", "sk-from-the-environment")
    spec = ModelSpec.model_validate({
        "name": "m", "adapter": "openai_compat", "base_url": "http://127.0.0.1:9/v1",
        "model": "m", "api_key_env": "SOME_KEY",
        "headers": {"X-Org": "org-0123456789", "X-Version": "2"}})
    assert spec.secret_values() == ["sk-from-the-environment", "org-0123456789", "2"]
    redact = Redactor.for_spec(spec)
    # a 1-character header value is no secret: redacting every "2" would corrupt answers
    assert redact.text("2 keys: sk-from-the-environment org-0123456789") == \
        f"2 keys: {REDACTED} {REDACTED}"
    monkeypatch.delenv("SOME_KEY")
    assert spec.secret_values() == ["org-0123456789", "2"]


def test_values_keys_and_responses_are_redacted() -> None:
    redact = Redactor(["secret-value", "secret-value-longer"])
    assert redact.text("a secret-value-longer b") == f"a {REDACTED} b"  # longest first
    assert redact.value({"secret-value": ["x secret-value", 3, None]}) == \
        {REDACTED: [f"x {REDACTED}", 3, None]}
    response = redact.response(Response(
        text="secret-value", tool_calls=[{"arguments": '{"k": "secret-value"}'}],
        input_tokens=3, raw={"echo": "secret-value"}))
    assert response.text == REDACTED and response.input_tokens == 3
    assert response.tool_calls == [{"arguments": f'{{"k": "{REDACTED}"}}'}]
    assert response.raw == {"echo": REDACTED}
    assert not Redactor([]) and Redactor([]).text("secret-value") == "secret-value"


def test_a_snippet_is_redacted_before_it_is_cut() -> None:
    redact = Redactor(["sk-0123456789abcdef"])
    text = "x" * 10 + "sk-0123456789abcdef" + "y" * 10
    assert redact.snippet(text, 15) == "x" * 10 + REDACTED[:5]
    # the start of a body may end with the start of a secret: that end is dropped
    assert redact.snippet("error: sk-0123", 100, complete=False) == "error: "
    assert redact.snippet("error: sk-0123", 100) == "error: sk-0123"  # a whole text
    assert redact.snippet("error: done", 100, complete=False) == "error: done"
