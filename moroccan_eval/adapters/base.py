"""The adapter protocol: how the runner talks to any model.

An adapter turns a :class:`Request` into a :class:`Response`. It raises
:class:`~moroccan_eval.errors.AdapterError` on failure, with ``retryable=True`` for
transient failures; the runner owns concurrency, rate limits, timeouts, retries and the
cache, so an adapter stays a thin translation layer.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from ..costing import Pricing
from ..errors import AdapterError, ConfigError
from ..io import JSONObject, JSONValue, WrittenWhenSet, sha256_json
from ..suites.schema import Item

#: What a secret is replaced by wherever it would be stored or shown.
REDACTED = "[REDACTED]"
#: What ``limits.max_response_bytes`` defaults to: far above any chat answer or
#: transcript, far below what fills a disk when multiplied by a suite's items.
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024


#: ``concurrency: auto``: the most requests in flight the adaptive gate ever tries, and
#: the level it starts from (also what a cost estimate assumes of an ``auto`` model).
AUTO_MAXIMUM, AUTO_START = 256, 4


class Limits(BaseModel):
    """How hard the runner may push a model."""

    model_config = ConfigDict(extra="forbid")
    concurrency: Annotated[int, Field(ge=1, le=4096)] | Literal["auto"] = Field(
        default=8, description="requests in flight, or auto: found while running (starts "
        f"at {AUTO_START}, up to {AUTO_MAXIMUM}, backs off on 429s, errors and climbing "
        "latency)")
    requests_per_minute: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=4, ge=0, le=20)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(
        default=30.0, ge=0, description="the longest wait before a retry, in seconds, also "
        "when the server's Retry-After asks for longer")
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES, ge=1024,
        description="the largest response body an HTTP adapter reads, in bytes (default "
        "4 MiB = 4194304); a longer one is read no further and recorded as an error, so a "
        "runaway or hostile endpoint cannot fill the disk. Raise it for models whose "
        "answers are meant to be longer")

    @property
    def in_flight(self) -> int:
        """The most requests in flight: ``concurrency``, or the ``auto`` ceiling."""
        return AUTO_MAXIMUM if self.concurrency == "auto" else self.concurrency

    @property
    def nominal(self) -> int:
        """``concurrency``, or where ``auto`` starts (a cost estimate's assumption)."""
        return AUTO_START if self.concurrency == "auto" else self.concurrency

    @model_serializer(mode="wrap")
    def _default_cap_unwritten(self, handler: SerializerFunctionWrapHandler) -> Any:
        """The default size cap is left out of manifests, so that the manifests of runs
        made before the setting existed read back and compare unchanged; reading one back
        gives the same default."""
        data = handler(self)
        if isinstance(data, dict) and data.get("max_response_bytes") == \
                DEFAULT_MAX_RESPONSE_BYTES:
            del data["max_response_bytes"]
        return data


class ModelInfo(WrittenWhenSet):
    """Facts about the model shown in reports (size, where it runs, who sells it)."""

    model_config = ConfigDict(extra="forbid")
    parameters_b: float | None = Field(default=None, ge=0)
    deployment: str | None = None  # "api" for a hosted API; anything else runs on-prem
    vendor: str | None = None
    notes: str | None = None
    # model-card facts a leaderboard row states (leaderboard/seed.py copies them)
    licence: str | None = None
    weights: Literal["open", "closed"] | None = None
    quantisation: str | None = None
    link: str | None = None
    written_when_set = ("licence", "weights", "quantisation", "link")


class ModelSpec(BaseModel):
    """A model YAML file. Fields other than the common ones below are the adapter's own
    options and are validated by that adapter's ``Options`` model."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    adapter: str = Field(min_length=1)
    params: JSONObject = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    info: ModelInfo = Field(default_factory=ModelInfo)
    pricing: Pricing = Field(default_factory=Pricing)
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )
    tool_calling: Literal["native", "json"] = Field(
        default="native", description="how the model is given tools: OpenAI 'tools' (native) "
        "or, for models without tool calling, described in the prompt with a JSON answer format"
    )

    @property
    def options(self) -> JSONObject:
        """The adapter-specific fields."""
        return dict(self.model_extra or {})

    @property
    def cache_hash(self) -> str:
        """Hash of what determines a model's answers (adapter, options, params), not of
        limits, prices or display name: changing concurrency must not invalidate the cache.
        (The tool-calling mode changes the request itself, hence its hash.)"""
        return sha256_json({"adapter": self.adapter, "options": self.options,
                            "params": self.params})

    @model_serializer(mode="wrap")
    def _without_header_values(self, handler: SerializerFunctionWrapHandler,
                               info: SerializationInfo) -> Any:
        """In JSON (manifests, exports, reports) the custom ``headers:`` keep their names
        but not their values, which are often keys: :meth:`secret_values`."""
        data = handler(self)
        headers = data.get("headers") if isinstance(data, dict) else None
        if info.mode == "json" and isinstance(headers, dict):
            data["headers"] = {name: REDACTED for name in headers}
        return data

    def public_dict(self) -> JSONObject:
        """The spec as written to manifests: holds the env var *name*, never its value,
        and the custom headers' names, never their values."""
        return self.model_dump(mode="json")

    def secret_values(self) -> list[str]:
        """The values no file, cache or message may hold: the API key (if its environment
        variable is set) and every value of the custom ``headers:``, which people use for
        keys too (``X-Api-Key``, ``api-key``) whatever the docs say."""
        values = [os.environ.get(self.api_key_env, "")] if self.api_key_env else []
        headers = (self.model_extra or {}).get("headers")  # not .options: asked per request
        if isinstance(headers, dict):
            values += [str(value) for value in headers.values()]
        return [value for value in values if value]

    def api_key(self) -> str | None:
        """The API key from the environment variable the spec names."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise ConfigError(
                f"model '{self.name}': environment variable {self.api_key_env} is not set; "
                f"export {self.api_key_env}=... (keys are read only from the environment)"
            )
        return value


@dataclass
class Request:
    """What the runner asks a model. ``input`` holds the item's raw fields, which
    non-prompted models (baselines) use instead of ``messages``."""

    messages: list[dict[str, str]]
    input: JSONObject
    params: JSONObject = field(default_factory=dict)
    tools: list[JSONObject] | None = None

    def to_dict(self) -> dict[str, object]:
        """A shallow dict (``dataclasses.asdict`` deep-copies: too slow for the hot path)."""
        return {"messages": self.messages, "input": self.input, "params": self.params,
                "tools": self.tools}

    def hash(self) -> str:
        """Stable hash of the request, the second half of the cache key."""
        return sha256_json(self.to_dict())


@dataclass
class Response:
    """A model's answer and what it cost."""

    text: str
    tool_calls: list[JSONObject] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    raw: JSONValue = None

    def to_dict(self) -> dict[str, Any]:
        """A shallow dict: ``dataclasses.asdict`` deep-copies ``raw``, the whole body an
        endpoint sent (a tenth of a request's CPU at c = 256, to store the answer)."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Response:
        return cls(**data)


@dataclass
class TaskContext:
    """What an adapter may learn about a task before answering (baselines train on it)."""

    name: str
    type: str
    labels: list[str]
    input_fields: list[str]
    train: list[Item] = field(default_factory=list)
    context: str | None = None  # the task's sources (grounded QA), if it has any
    root: str | None = None  # the suite folder, which item paths (audio files) are relative to
    tools: list[JSONObject] = field(default_factory=list)  # tool tasks: what may be called
    #: what each label means (the task file's ``labels.<name>.description``), when written
    label_descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """The folder item paths (audio files) are relative to."""
        return Path(self.root or ".")


class NoOptions(BaseModel):
    """Adapters without options of their own."""

    model_config = ConfigDict(extra="forbid")


OptionsT = TypeVar("OptionsT", bound=BaseModel)


class Adapter(ABC, Generic[OptionsT]):
    """Base class of every adapter. Subclasses set ``Options`` (and the matching type
    parameter, e.g. ``Adapter[MyOptions]``) and implement ``generate``."""

    #: pydantic model validating the adapter-specific fields of the model YAML.
    Options: ClassVar[type[BaseModel]] = NoOptions
    #: whether responses are worth caching (false for instant, deterministic local models).
    cacheable: ClassVar[bool] = True
    #: whether ``generate`` computes its answer on the event loop's thread and never
    #: waits (the ``python`` adapter's plain functions, the built-in baselines): the
    #: runner then awaits it in place, since overlapping such calls gains nothing and
    #: costs a task and loop turns per item; ``run --processes`` runs it in worker
    #: processes.
    answers_inline: bool = False
    #: whether every response ``generate`` returns is already free of lone UTF-16
    #: surrogates (its parser replaces them, as ``openai_compat``'s does): the run then
    #: does not walk each answer for them (no UTF-8 file or cache can hold one).
    replaces_lone_surrogates: ClassVar[bool] = False
    #: the task types the adapter can answer (``None``: any, e.g. a chat model); a task of
    #: another type is refused before any request.
    task_types: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, spec: ModelSpec, options: OptionsT):
        self.spec = spec
        self.options = options

    async def start_task(self, task: TaskContext) -> None:
        """Refuse a task of a type the adapter cannot answer, then :meth:`prepare` it."""
        if self.task_types is not None and task.type not in self.task_types:
            raise AdapterError(
                f"adapter '{self.spec.adapter}' only handles {' and '.join(self.task_types)} "
                f"tasks, not '{task.name}' ({task.type})")
        await self.prepare(task)

    async def prepare(self, task: TaskContext) -> None:
        """Called once per task before any request (e.g. to train a baseline)."""

    @abstractmethod
    async def generate(self, request: Request) -> Response:
        """Answer one request or raise ``AdapterError``."""

    #: Whether :meth:`identity` is part of the cache key (a managed local model: the same
    #: YAML over another GGUF must not reuse old answers); otherwise a changed identity is
    #: only warned about (an endpoint may change what it serves without telling).
    identity_keys_cache: ClassVar[bool] = False

    async def settle_identity(self) -> None:
        """Wait for an :meth:`identity` still being fetched (bounded by the adapter's own
        timeout), so the run's record holds it; nothing to wait for by default."""

    def identity(self) -> JSONObject | None:
        """What serves the answers, as far as the adapter can tell once :meth:`start_task`
        has run: e.g. a local model file's sha256 and the server's own description of the
        model. ``None`` (the default) when unknown. Never raises, never holds a secret."""
        return None

    def measurements(self) -> JSONObject:
        """Figures the adapter measured about its serving side (e.g. the seconds a local
        server took to load its model, its peak memory), for the run's manifest; empty by
        default. Callable at any time, also after :meth:`aclose`."""
        return {}

    async def aclose(self) -> None:
        """Release connections, processes and other resources."""
