"""The records that cross module boundaries, typed once.

- :data:`JSONValue`: what a JSON file may hold (item fields, references, parsed answers).
- :class:`PredictionRecord`: one line of ``predictions.jsonl``. A plain ``TypedDict``, not a
  pydantic model: the runner writes hundreds of thousands of them and must not pay for a
  validation round-trip per item. Reading a run back checks each record against it.
- :class:`Manifest`, :class:`RunScores`, :class:`TaskScores`, :class:`VarietyScore`,
  :class:`Signature`: ``manifest.json`` and ``scores.json``, parsed once when a run directory
  is loaded and shared by the report, ``recommend``, ``compare``, ``verify`` and ``export``.

The JSON on disk is the format of toolkit 0.1.0: a variety's metrics are keys of its entry
beside ``n``, ``errors`` and ``unparsed`` (``{"n": 40, "accuracy": {...}}``), a signature is
a string. :class:`VarietyScore` and :class:`TaskScores` read and write exactly that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal, NotRequired, Required

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_serializer,
    model_validator,
)
from typing_extensions import TypedDict  # pydantic validates only this one before 3.12

from .adapters.base import ModelSpec
from .io import JSONObject, JSONValue, WrittenWhenSet
from .suites.schema import CardSpec, TaskSpec

__all__ = [
    "Breakdown",
    "Delta",
    "JSONObject",
    "JSONValue",
    "Manifest",
    "MetricScore",
    "PredictionRecord",
    "RunScores",
    "Signature",
    "TaskScores",
    "Usage",
    "VarietyScore",
]


class PredictionRecord(TypedDict, total=False):
    """One item's prediction: the item, the request, the raw answer, what it cost, and the
    judgements the task type derives from the answer (``parsed``, ``correct`` ...)."""

    id: Required[str]
    group: Required[str]
    task: Required[str]
    variety: Required[str]
    split: str
    fields: JSONObject
    reference: JSONValue
    request_hash: str
    tool_mode: str  # tool tasks: how the tools were given (native or json)
    output: str | None
    tool_calls: list[JSONObject] | None
    latency_ms: float | None
    input_tokens: int
    output_tokens: int
    cost: float
    error: str | None
    cached: bool
    attempts: int
    skipped: bool  # not sent: the spend cap was reached
    parsed: JSONValue
    correct: bool
    refused: bool  # qa: the answer declines
    outcomes: dict[str, list[int]]  # tool tasks: [numerator, denominator] per metric
    meta: JSONObject  # the item's meta values the task's scores are broken down by


class Judgement(TypedDict):
    """What a task type's parser says of one answer; merged into its record."""

    correct: bool
    refused: NotRequired[bool]
    outcomes: NotRequired[dict[str, list[int]]]


# --------------------------------------------------------------------------- manifest


class _Record(WrittenWhenSet):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class SuiteRef(_Record):
    """The suite a run used, as it was when the run started."""

    name: str
    version: str
    sha256: str
    ident: str
    reference_variety: str
    license: str
    card: CardSpec


class TaskRef(_Record):
    """A task of a run: its version, the sha256 of its file and its spec."""

    version: str
    sha256: str
    spec: TaskSpec


class ModelRef(_Record):
    """The model spec (environment variable names only, never their values), the hash of
    what determines its answers, and what the adapter saw of its serving side (the
    server's identity, e.g. a GGUF's sha256 and chat template, and its measurements, e.g.
    load time and peak memory), when it reports any."""

    spec: ModelSpec
    cache_hash: str
    serving: JSONObject | None = None
    written_when_set = ("serving",)


class Selection(_Record):
    """Which items of the suite the run covers."""

    split: str
    varieties: list[str] | None = None
    limit: int | None = None
    perturb: str | None = None
    #: How ``limit`` picked groups: ``stratified`` (seeded, balanced over the task type's
    #: strata); absent in runs of toolkit 0.1.0, which took the first groups in file order.
    sampling: Literal["stratified"] | None = None
    #: ``i/n``: only the groups of shard i of n (``run --shard``); ``merge`` joins them.
    shard: str | None = None
    written_when_set = ("sampling", "shard")

    @property
    def shard_part(self) -> tuple[int, int] | None:
        """``shard`` as (i, n)."""
        return parse_shard(self.shard) if self.shard else None


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) as (i, n); ``ValueError`` naming the expected form."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if match is None or not 0 <= int(match[1]) < int(match[2]):
        raise ValueError(f"shard {text!r} is not i/n with 0 <= i < n (e.g. 0/4 ... 3/4)")
    return int(match[1]), int(match[2])


class Host(_Record):
    hostname: str
    platform: str
    python: str


RunStatus = str  # "running", "complete", "interrupted", "stopped: <reason>"
#: How bootstrap resamples are drawn (see :mod:`moroccan_eval.stats.bootstrap`).
Draws = Literal["multinomial", "indices", "indices2"]


class Manifest(_Record):
    """``manifest.json``: what produced a run, written first (``running``) and last."""

    run_id: str
    toolkit_version: str
    created: str
    seed: int = Field(ge=0)
    bootstrap: int = Field(ge=0)
    bootstrap_draws: Draws | None = None  # None: runs before draws were named (multinomial)
    usd_mad: float = Field(gt=0)
    selection: Selection
    suite: SuiteRef
    tasks: dict[str, TaskRef]
    model: ModelRef
    allow_unanonymized: bool = False
    executor: str = "local"
    host: Host
    status: RunStatus = "running"
    finished: str | None = None
    wall_s: float | None = None

    @property
    def finished_ok(self) -> bool:
        """Complete, or stopped on purpose (spend cap): its results can be read."""
        return self.status == "complete" or self.status.startswith("stopped")

    def reference_variety(self, task: str) -> str:
        """The task's own reference variety if it sets one, else the suite's."""
        return self.tasks[task].spec.reference_variety or self.suite.reference_variety

    written_when_set = ("bootstrap_draws", "finished", "wall_s")

    def to_json(self) -> JSONObject:
        return self.model_dump(mode="json")


class Signature(BaseModel):
    """Exactly what produced a score, printed beside it like sacrebleu's signature::

        moroccan-eval:0.1.0|suite:support@1.0.0+sha.1a2b3c4d5e6f|task:intents@1+sha.1a2b3c4d|
        model:char-ngram+hash.9f8e7d6c|split:test|shots:0|seed:0|boot:1000+indices2
    """

    model_config = ConfigDict(frozen=True)
    toolkit: str
    suite: str
    task: str
    task_version: str
    task_sha: str
    model: str
    model_hash: str
    split: str
    perturb: str | None = None
    shard: str | None = None
    shots: int
    seed: int
    bootstrap: int
    bootstrap_draws: Draws | None = None

    @classmethod
    def of(cls, manifest: Manifest, task: str) -> Signature:
        """The signature a task of a run must carry."""
        info = manifest.tasks[task]
        return cls(
            toolkit=manifest.toolkit_version, suite=manifest.suite.ident, task=task,
            task_version=info.version, task_sha=info.sha256[:8],
            model=manifest.model.spec.name, model_hash=manifest.model.cache_hash[:8],
            split=manifest.selection.split, perturb=manifest.selection.perturb,
            shard=manifest.selection.shard, shots=info.spec.few_shot, seed=manifest.seed,
            bootstrap=manifest.bootstrap, bootstrap_draws=manifest.bootstrap_draws)

    def __str__(self) -> str:
        return "|".join([
            f"moroccan-eval:{self.toolkit}",
            f"suite:{self.suite}",
            f"task:{self.task}@{self.task_version}+sha.{self.task_sha}",
            f"model:{self.model}+hash.{self.model_hash}",
            f"split:{self.split}",
            *([f"perturb:{self.perturb}"] if self.perturb else []),
            *([f"shard:{self.shard}"] if self.shard else []),
            f"shots:{self.shots}",
            f"seed:{self.seed}",
            f"boot:{self.bootstrap}" + (f"+{self.bootstrap_draws}" if self.bootstrap_draws
                                         else ""),
        ])

    @classmethod
    def parse(cls, text: str) -> Signature:
        """Read a signature string back; ``ValueError`` when it is not one."""
        match = _SIGNATURE.fullmatch(text)
        if match is None:
            raise ValueError(f"not a moroccan-eval signature: {text[:120]!r}")
        return cls.model_validate({k: v for k, v in match.groupdict().items() if v is not None})


_SIGNATURE = re.compile(
    r"moroccan-eval:(?P<toolkit>[^|]+)\|suite:(?P<suite>[^|]+)"
    r"\|task:(?P<task>[^|@]+)@(?P<task_version>[^|+]+)\+sha\.(?P<task_sha>[0-9a-f]+)"
    r"\|model:(?P<model>[^|]+)\+hash\.(?P<model_hash>[0-9a-f]+)\|split:(?P<split>[^|]+)"
    r"(?:\|perturb:(?P<perturb>[^|]+))?(?:\|shard:(?P<shard>\d+/\d+))?\|shots:(?P<shots>\d+)\|seed:(?P<seed>-?\d+)"
    r"\|boot:(?P<bootstrap>\d+)(?:\+(?P<bootstrap_draws>[a-z0-9]+))?")


# --------------------------------------------------------------------------- scores


class MetricScore(_Record):
    """A metric's value with its 95% bootstrap interval; ``n`` for a rate counts the items
    in its denominator (under-escalation counts only the items to escalate)."""

    value: float | None
    ci: tuple[float, float] | None
    n: int | None = None
    written_when_set = ("n",)


class Delta(_Record):
    """A paired difference (variety − reference) over the groups both hold."""

    value: float | None
    ci: tuple[float, float] | None
    n_pairs: int
    significant: bool


_ENTRY_KEYS = ("n", "errors", "unparsed", "delta_vs_reference")


def _is_metric_entry(value: Any) -> bool:
    return isinstance(value, dict) and "value" in value and "ci" in value


class VarietyScore(_Record):
    """The scores of one variety (or of all items pooled) on one task.

    ``details`` holds what a task type adds beside its metrics (extraction: the accuracy
    of each field); on disk, metrics and details are keys of the entry itself.
    """

    n: int
    errors: int = 0
    unparsed: int = 0
    metrics: dict[str, MetricScore] = Field(default_factory=dict)
    deltas: dict[str, Delta] = Field(default_factory=dict)
    details: JSONObject = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_disk(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "metrics" in data:
            return data
        out: dict[str, Any] = {k: data[k] for k in ("n", "errors", "unparsed") if k in data}
        out["deltas"] = data.get("delta_vs_reference") or {}
        out["metrics"] = {k: v for k, v in data.items()
                          if k not in _ENTRY_KEYS and _is_metric_entry(v)}
        out["details"] = {k: v for k, v in data.items()
                          if k not in _ENTRY_KEYS and not _is_metric_entry(v)}
        return out

    @model_serializer(mode="plain")
    def _to_disk(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "errors": self.errors, "unparsed": self.unparsed}
        out |= {name: score.model_dump(mode="json") for name, score in self.metrics.items()}
        if self.deltas:
            out["delta_vs_reference"] = {name: delta.model_dump(mode="json")
                                         for name, delta in self.deltas.items()}
        return out | self.details

    def metric(self, name: str) -> MetricScore | None:
        return self.metrics.get(name)

    def delta(self, name: str) -> Delta | None:
        return self.deltas.get(name)


class Usage(_Record):
    """Latency, tokens, throughput and cost of a task's requests."""

    audio_s: float | None = None  # speech tasks: seconds of audio transcribed
    rtfx: float | None = None  # speech tasks: audio seconds per processing second
    n_requests: int
    n_answered: int
    n_errors: int
    n_skipped: int
    n_cached: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    throughput_per_s: float | None
    tokens_in: int
    tokens_out: int
    cost_total: float
    currency: Literal["MAD", "USD"]
    cost_per_1k: dict[Literal["MAD", "USD"], float | None]
    usd_mad: float

    @model_serializer(mode="wrap")
    def _speech_only_when_measured(self, handler: Any) -> Any:
        data = handler(self)
        if self.audio_s is None:
            data.pop("audio_s", None)
            data.pop("rtfx", None)
        return data


class Breakdown(_Record):
    """A task's scores per value of an item ``meta`` field (``breakdown_by`` in the task
    file), all varieties pooled: e.g. one row per Amazigh dialect a translation targets."""

    by: str  # "meta.amazigh_variety"
    values: dict[str, VarietyScore]


class TaskScores(_Record):
    """One task of a run: per-variety and pooled scores, usage and provenance.
    ``details`` holds what a task type adds at task level (tool tasks: ``by_kind``)."""

    signature: str  # str(Signature.of(manifest, task)); verify compares the two
    type: str
    metrics: list[str]
    metric_signatures: dict[str, str] = Field(default_factory=dict)
    reference_variety: str
    varieties: dict[str, VarietyScore]
    overall: VarietyScore
    usage: Usage
    details: JSONObject = Field(default_factory=dict)
    breakdown: Breakdown | None = None  # written only when the task sets breakdown_by

    @model_validator(mode="before")
    @classmethod
    def _from_disk(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "details" in data:
            return data
        known = set(cls.model_fields) - {"details"}
        return {**{k: v for k, v in data.items() if k in known},
                "details": {k: v for k, v in data.items() if k not in known}}

    @model_serializer(mode="wrap")
    def _to_disk(self, handler: Any) -> Any:
        data = handler(self)
        if self.breakdown is None:  # scores of tasks without breakdown_by stay as they were
            data.pop("breakdown", None)
        return {**{k: v for k, v in data.items() if k != "details"}, **self.details}

    def all_varieties(self) -> Iterator[tuple[str, VarietyScore]]:
        """Each variety, then ``all`` (every item pooled)."""
        yield from self.varieties.items()
        yield "all", self.overall


class RunScores(_Record):
    """``scores.json``."""

    run_id: str
    model: str
    suite: str
    tasks: dict[str, TaskScores]

    def to_json(self) -> JSONObject:
        return self.model_dump(mode="json")
