"""The ``transformers`` adapter on tiny random causal LMs (Llama with a chat template, GPT-2
without) built here by ``tests/tiny_hf.py``, offline: batching, templates, errors, and a whole
``moroccan-eval run``. Skipped without the hf extra (torch, transformers)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tiny_hf import make_tiny_llm

from moroccan_eval.adapters import build_adapter, load_model
from moroccan_eval.adapters.base import Request, TaskContext
from moroccan_eval.cli import main
from moroccan_eval.errors import AdapterError, ConfigError

from .test_transformers import write_spec as write_any_spec

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def write_spec(path: Path, **fields: Any) -> Path:
    """A spec on one CPU thread: on a shared machine (CI, 2 cores), two threads spin-wait on
    each other and run several times slower."""
    return write_any_spec(path, **{"threads": 1, **fields})


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_tiny_llm(tmp_path_factory.mktemp("hf") / "tiny-llama")  # random weights
    # a sampling default in the folder must not make runs random: decoding stays greedy
    config = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    config.update(do_sample=True, temperature=0.7, top_p=0.9)
    (folder / "generation_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llm(tmp_path_factory.mktemp("hf") / "tiny-gpt2", kind="gpt2",
                         chat_template=False)


def direct_greedy(folder: Path, text_prompt: str, new: int) -> list[int]:
    """What transformers itself generates for one prompt, unbatched, greedily."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    ids = tokenizer(text_prompt, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=new, do_sample=False, temperature=None,
                             top_p=None, eos_token_id=2, pad_token_id=0)
    tokens = out[0, ids["input_ids"].shape[1]:].tolist()
    return tokens[:tokens.index(2)] if 2 in tokens else tokens


PROMPTS = ["salam", "fin wsal lcommande dyali? bghit nerje3 flousi daba",
           "واش كاين هاد الموديل بالأزرق؟", "Bonjour, je veux une facture avec ICE",
           "ⴰⵣⵓⵍ", "ok"]


def test_batched_greedy_answers_equal_unbatched_generation(tiny_llama: Path,
                                                           tmp_path: Path) -> None:
    spec = load_model(str(write_spec(tmp_path / "m.yaml", model_path=str(tiny_llama),
                                     max_new_tokens=6, limits={"concurrency": 6})))
    adapter = build_adapter(spec)
    tokenizer = adapter.tokenizer  # type: ignore[attr-defined]

    async def ask_all() -> list[Any]:
        requests = [Request(messages=[{"role": "system", "content": "Answer."},
                                      {"role": "user", "content": p}], input={"text": p})
                    for p in PROMPTS]
        try:
            return list(await asyncio.gather(*(adapter.generate(r) for r in requests)))
        finally:
            await adapter.aclose()

    responses = asyncio.run(ask_all())
    measured = adapter.measurements()
    assert measured["items"] == 6 and measured["batches"] < 6  # they were batched
    assert measured["mean_batch_size"] > 1 and measured["output_tokens_per_s"] > 0
    for prompt, response in zip(PROMPTS, responses, strict=True):
        rendered = f"<|system|>Answer.</s><|user|>{prompt}</s><|assistant|>"  # the template
        assert response.input_tokens == len(tokenizer(rendered, add_special_tokens=False)
                                             ["input_ids"])
        expected = direct_greedy(tiny_llama, rendered, 6)
        assert response.output_tokens == len(expected)
        assert response.text == tokenizer.decode(expected, skip_special_tokens=True).strip()
    assert any(r.text for r in responses)  # random weights: garbage, but not nothing
    identity = adapter.identity()
    assert identity is not None
    weights = (tiny_llama / "model.safetensors").read_bytes()
    assert identity["model"]["files"]["model.safetensors"] == hashlib.sha256(  # type: ignore[index, call-overload]
        weights).hexdigest()


def test_without_a_template_the_prompt_is_a_transcript_and_a_template_file_applies(
        tiny_gpt2: Path, tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "Classify."}, {"role": "user", "content": "salam"}]
    plain = build_adapter(load_model(str(write_spec(
        tmp_path / "a.yaml", model_path=str(tiny_gpt2), max_new_tokens=3))))
    tokenizer = plain.tokenizer  # type: ignore[attr-defined]
    assert plain.identity()["chat_template_sha256"] is None  # type: ignore[index]
    assert plain.prompt_ids(messages) == tokenizer(  # type: ignore[attr-defined]
        "System: Classify.\n\nUser: salam\n\nAssistant:")["input_ids"]
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n"
                        "{% endfor %}[assistant]", encoding="utf-8")
    templated = build_adapter(load_model(str(write_spec(
        tmp_path / "b.yaml", model_path=str(tiny_gpt2), chat_template_file=str(template)))))
    assert templated.prompt_ids(messages) == tokenizer(  # type: ignore[attr-defined]
        "[system] Classify.\n[user] salam\n[assistant]", add_special_tokens=False)["input_ids"]


def test_a_template_refusing_system_messages_gets_them_folded(tiny_gpt2: Path,
                                                              tmp_path: Path) -> None:
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}{% if m['role'] == 'system' %}"
                        "{{ raise_exception('System role not supported') }}{% endif %}"
                        "<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>",
                        encoding="utf-8")
    adapter = build_adapter(load_model(str(write_spec(
        tmp_path / "m.yaml", model_path=str(tiny_gpt2), chat_template_file=str(template)))))
    ids = adapter.prompt_ids([{"role": "system", "content": "Be brief."},  # type: ignore[attr-defined]
                              {"role": "user", "content": "salam"}])
    assert adapter.tokenizer.decode(ids) == "<user>Be brief.\n\nsalam<assistant>"  # type: ignore[attr-defined]


def test_a_prompt_beyond_the_context_fails_alone_and_native_tools_are_refused(
        tiny_gpt2: Path, tmp_path: Path) -> None:
    adapter = build_adapter(load_model(str(write_spec(
        tmp_path / "m.yaml", model_path=str(tiny_gpt2), max_new_tokens=4))))
    long = Request(messages=[{"role": "user", "content": "x" * 5000}], input={})
    with pytest.raises(AdapterError, match=r"exceeds the model's context of 4096 tokens"):
        asyncio.run(adapter.generate(long))
    task = TaskContext(name="agent", type="tool_call", labels=[], input_fields=["text"],
                       tools=[{"type": "function", "function": {"name": "f"}}])
    with pytest.raises(AdapterError, match="tool_calling: json"):
        asyncio.run(adapter.start_task(task))


def test_a_folder_without_weights_or_needing_remote_code_is_refused(tiny_gpt2: Path,
                                                                    tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (partial / name).write_bytes((tiny_gpt2 / name).read_bytes())
    with pytest.raises(ConfigError) as error:
        build_adapter(load_model(str(write_spec(tmp_path / "m.yaml", model_path=str(partial)))))
    assert f"cannot load {partial}" in str(error.value) and "nothing is downloaded" in str(
        error.value)
    config = json.loads((partial / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="custom-thing", auto_map={
        "AutoModelForCausalLM": "modeling_custom.CustomModel"})
    (partial / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (partial / "model.safetensors").write_bytes((tiny_gpt2 / "model.safetensors").read_bytes())
    with pytest.raises(ConfigError, match=r"custom-thing. is not built into transformers .*"
                       "needs trust_remote_code, which the toolkit never enables"):
        build_adapter(load_model(str(write_spec(tmp_path / "m.yaml", model_path=str(partial)))))
    del config["auto_map"]  # unknown, without remote code: an older transformers
    (partial / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigError,
                       match=r"does not know model_type 'custom-thing'.*pip install -U"):
        build_adapter(load_model(str(write_spec(tmp_path / "m.yaml", model_path=str(partial)))))


def test_moroccan_eval_run_end_to_end_on_a_tiny_model(tiny_llama: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "tiny.yaml", model_path=str(tiny_llama), max_new_tokens=5,
                      max_batch_tokens=4096, limits={"concurrency": 8, "retries": 0})
    args = ["run", "--suite", "support-intents", "--model", str(spec), "--limit", "4",
            "--variety", "ary_Latn", "--variety", "fra_Latn", "--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    [run] = list((tmp_path / "runs").iterdir())
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in
               (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert manifest["status"] == "complete" and len(records) == 8
    assert all(r["error"] is None and 0 < r["output_tokens"] <= 5 and r["input_tokens"] > 100
               for r in records)
    measured = manifest["model"]["serving"]["measurements"]
    assert measured["items"] == 8 and measured["output_tokens"] == sum(
        r["output_tokens"] for r in records)
    assert measured["input_tokens"] == sum(r["input_tokens"] for r in records)
    assert measured["output_tokens_per_s"] > 0 and measured["load_s"] > 0
    assert manifest["model"]["serving"]["identity"]["model"]["model_type"] == "llama"
    # a re-run is answered from the cache (keyed on the folder's files too), with the same text
    again = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    [rerun] = list((tmp_path / "again").iterdir())
    cached = [json.loads(line) for line in
              (rerun / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(r["cached"] for r in cached)
    assert sorted((r["id"], r["output"]) for r in cached) == sorted(
        (r["id"], r["output"]) for r in records)
