"""command, python, baselines and the adapter registry (incl. a real entry-point plugin)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from moroccan_eval.adapters import adapter_names, build_adapter, load_model
from moroccan_eval.adapters.base import ModelSpec, Request, TaskContext
from moroccan_eval.errors import AdapterError, ConfigError
from moroccan_eval.runs.requests import RateLimiter, call_with_retries

FIXTURES = Path(__file__).parent.parent / "fixtures"


def answers(spec: ModelSpec, texts: list[str], task: TaskContext | None = None) -> list[Any]:
    async def go() -> list[Any]:
        adapter = build_adapter(spec)
        try:
            if task is not None:
                await adapter.start_task(task)
            return list(await asyncio.gather(*(
                call_with_retries(adapter, Request(messages=[], input={"text": t}), spec,
                                  RateLimiter(None)) for t in texts)))
        finally:
            await adapter.aclose()
    return asyncio.run(go())


def command_spec() -> ModelSpec:
    return ModelSpec.model_validate({
        "name": "cmd", "adapter": "command",
        "command": [sys.executable, str(FIXTURES / "command_model.py")],
        "limits": {"retries": 0}})


def test_command_adapter_matches_answers_by_id() -> None:
    results = answers(command_spec(), ["pair-a", "pair-b", "salam", "boom"])
    texts = [r[0].text if r[0] else r[1] for r in results]
    assert texts[:3] == ["PAIR-A", "PAIR-B", "SALAM"]
    assert "cannot answer" in texts[3]
    assert results[2][0].input_tokens == 5


def test_command_that_dies_fails_pending_requests_with_its_stderr() -> None:
    [(response, error, _)] = answers(command_spec(), ["die"])
    assert response is None and error is not None
    assert "exited with code 3" in error and "model file corrupted" in error


def test_missing_command_is_a_clear_error() -> None:
    spec = ModelSpec.model_validate({"name": "x", "adapter": "command",
                                     "command": ["/nonexistent/model-binary"],
                                     "limits": {"retries": 0}})
    [(response, error, _)] = answers(spec, ["hi"])
    assert response is None and error is not None and "cannot start command" in error


def test_python_callable_sync_async_and_failure() -> None:
    def spec(target: str) -> ModelSpec:
        return ModelSpec.model_validate({"name": "py", "adapter": "python", "callable": target,
                                         "limits": {"retries": 0}})

    [(ok, _, _)] = answers(spec("toy_models:keyword_router"), ["fin wsel?"])
    assert ok is not None and ok.text == "Intent: delivery_status" and ok.input_tokens == 20
    [(ok, _, _)] = answers(spec("toy_models:slow_async"), ["x"])
    assert ok is not None and ok.text == "other"
    [(bad, error, _)] = answers(spec("toy_models:keyword_router"), ["vous recrutez"])
    assert bad is None and error is not None and "RuntimeError: model crashed" in error
    with pytest.raises(ConfigError, match="cannot be imported"):
        build_adapter(spec("toy_models:nope"))


TRAIN = [
    {"fields": {"text": t}, "reference": lab}
    for t, lab in [("bghit nrj3 lflous", "refund"), ("rembourse moi", "refund"),
                   ("استرجاع المال", "refund"), ("fin wsel lcolis", "delivery_status"),
                   ("ou est mon colis", "delivery_status"), ("أين الطلب", "delivery_status"),
                   ("wach kayn had lmodel", "other")]
]
TASK = TaskContext(name="t", type="classification", labels=["refund", "delivery_status", "other"],
                   input_fields=["text"], train=TRAIN)


def test_char_ngram_learns_from_train_and_majority_predicts_the_mode() -> None:
    char = answers(load_model("char-ngram"), ["bghit lflous dyali", "fin lcolis dyali"], TASK)
    assert [r[0].text for r in char] == ["refund", "delivery_status"]
    majority = answers(load_model("majority"), ["anything", "else"], TASK)
    assert {r[0].text for r in majority} == {"refund"}  # 3 refund vs 3 delivery: first label


def test_baselines_refuse_tasks_they_cannot_do() -> None:
    task = TaskContext(name="tr", type="translation", labels=[], input_fields=["text"])
    with pytest.raises(AdapterError, match="only handles classification"):
        answers(load_model("char-ngram"), ["x"], task)


def test_unknown_adapter_suggests_a_name(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("name: x\nadapter: openai_compta\nbase_url: http://x/v1\nmodel: m\n")
    with pytest.raises(ConfigError, match=r"unknown adapter 'openai_compta' \(did you mean "
                                          r"'openai_compat'\?\)"):
        load_model(str(path))


def test_model_file_errors_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("name: x\nadapter: openai_compat\nbase_url: localhost\nmodle: m\n")
    with pytest.raises(ConfigError) as err:
        load_model(str(path))
    message = str(err.value)
    assert "base_url: String should match pattern" in message
    assert "model: Field required" in message and "modle: unknown field" in message


def test_unknown_model_name_suggests_a_builtin() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'char-ngram'"):
        load_model("char-ngrams")


def test_third_party_adapter_registered_by_entry_point(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A real installed-distribution layout: a .dist-info with entry_points.txt on sys.path."""
    (tmp_path / "echo_plugin.py").write_text(
        "from moroccan_eval.adapters.base import Adapter, Response\n"
        "class EchoAdapter(Adapter):\n"
        "    async def generate(self, request):\n"
        "        return Response(text='echo:' + request.input['text'])\n")
    dist = tmp_path / "echo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[moroccan_eval.adapters]\necho = echo_plugin:EchoAdapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "echo" in adapter_names()
    spec = ModelSpec(name="e", adapter="echo")
    [(response, _, _)] = answers(spec, ["salam"])
    assert response is not None and response.text == "echo:salam"
