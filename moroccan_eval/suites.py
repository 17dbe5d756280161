"""Suite and task schema, and the suite loader with its gates.

A suite folder holds ``suite.yaml`` (identity, tasks, sha256 of every file), ``CARD.md``
(a datasheet whose YAML front matter records sources, consent, anonymization, retention
and validation status), ``tasks/<task>.yaml`` and ``data/<task>.jsonl``. The loader checks
everything and reports every problem at once; a suite that fails a check never loads.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dt_time
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import varieties
from .errors import ConfigError, SuiteError, did_you_mean
from .io import (
    format_validation_errors,
    iter_jsonl,
    load_yaml,
    read_text,
    sha256_file,
    write_atomic,
)
from .resources import shipped

TaskType = Literal[
    "classification", "extraction", "qa", "translation", "tool_call", "injection", "asr"
]
Split = Literal["test", "train", "dev"]
Metric = Literal["accuracy", "macro_f1", "chrf", "bleu", "answer_accuracy", "refusal_accuracy",
                 "field_f1", "exact_match", "wer", "cer", "wer_raw", "answer_chrf", "tool_accuracy",
                 "argument_f1", "valid_json_rate", "over_escalation_rate",
                 "under_escalation_rate", "unsafe_action_rate", "attack_success_rate",
                 "canary_leak_rate", "benign_completion", "over_refusal_rate"]
_DEFAULT_METRICS: tuple[Metric, ...] = ("accuracy", "macro_f1")
#: Task types the runner can score today, and the metrics each takes.
METRICS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "macro_f1"),
    "translation": ("chrf", "bleu"),
    "qa": ("answer_accuracy", "refusal_accuracy", "answer_chrf"),
    "extraction": ("field_f1", "exact_match"),
    "asr": ("wer", "cer", "wer_raw"),
    "tool_call": ("tool_accuracy", "argument_f1", "valid_json_rate", "over_escalation_rate",
                  "under_escalation_rate", "unsafe_action_rate"),
    "injection": ("attack_success_rate", "canary_leak_rate", "benign_completion",
                  "over_refusal_rate"),
}
TOOL_TYPES = ("tool_call", "injection")
#: What a coordinator item expects of the model.
BEHAVIOURS = ("act", "escalate", "confirm", "decline")
#: Where a security item's attack sits (``none``: a benign control item), and what it wants.
ATTACKS = ("direct", "indirect", "none")
GOALS = ("exfiltration", "tool_abuse", "hijack", "none")
IMPLEMENTED_TYPES = tuple(METRICS_BY_TYPE)
_NAME = r"^[a-z0-9][a-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuiteSpec(_Strict):
    """``suite.yaml``."""

    name: str = Field(pattern=_NAME)
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    description: str = Field(min_length=1)
    license: str = Field(min_length=1)
    reference_variety: str
    tasks: list[str] = Field(min_length=1)
    checksums: dict[str, str] = Field(description="path relative to the suite -> sha256")
    pii_allowed: dict[str, str] = Field(
        default_factory=dict, description="entity types the privacy gate lets through, each "
        "with the reason (e.g. MA_ICE: company identifiers of fictitious suppliers)")

    @field_validator("pii_allowed")
    @classmethod
    def _reasons(cls, value: dict[str, str]) -> dict[str, str]:
        for entity, reason in value.items():
            if len(reason.strip()) < 10:
                raise ValueError(f"'{entity}': say why this entity type is not personal data "
                                 "in this suite")
        return value

    @field_validator("checksums")
    @classmethod
    def _hex(cls, value: dict[str, str]) -> dict[str, str]:
        for path, digest in value.items():
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(f"'{path}': sha256 must be 64 lowercase hex digits")
        return value


class ConsentInfo(_Strict):
    """How the people behind the items agreed to their use."""

    basis: Literal["authored", "consent_register"] = Field(
        description="'authored': written by the suite's authors, no personal data, no consent "
        "needed; 'consent_register': items carry consent ids from the suite's register"
    )
    details: str = Field(min_length=1)

    @field_validator("details")
    @classmethod
    def _filled(cls, value: str) -> str:
        return _not_placeholder(value)


#: Imported suites start with card fields that begin with this marker; the loader refuses
#: them until a person has written what really happened (consent, anonymization ...).
TODO_MARKER = "TODO"


def _not_placeholder(value: str) -> str:
    if value.strip().startswith(TODO_MARKER):
        raise ValueError(f"still the import skeleton's placeholder ({value.strip()[:60]!r}); "
                         "write what is true for this data")
    return value


class CardSpec(_Strict):
    """The YAML front matter of ``CARD.md``: the fields a suite cannot load without."""

    sources: str = Field(min_length=1)
    authors: str = Field(min_length=1)
    consent: ConsentInfo
    anonymization: str = Field(min_length=1, description="what was removed, how, by whom")
    retention: str = Field(min_length=1)
    validation_status: str = Field(min_length=1)
    validation_by_variety: dict[str, str] = Field(default_factory=dict)
    known_gaps: str = ""

    @field_validator("sources", "authors", "anonymization", "retention", "validation_status")
    @classmethod
    def _filled(cls, value: str) -> str:
        return _not_placeholder(value)


class LabelSpec(_Strict):
    """A class label with its meaning and the other ways a model may write it."""

    description: str = ""
    aliases: list[str] = Field(default_factory=list)


class PromptSpec(_Strict):
    """Jinja2 templates; ``by_variety`` overrides ``system``/``user`` for one variety."""

    system: str | None = None
    user: str
    by_variety: dict[str, dict[Literal["system", "user"], str]] = Field(default_factory=dict)


class ToolPolicy(_Strict):
    """What an agent may do with its tools; the scorer judges calls against it."""

    high_impact: list[str] = Field(
        default_factory=list, description="tools to call only after the person confirmed "
        "(calling one unprompted is an unsafe action)")
    forbidden: list[str] = Field(
        default_factory=list, description="tools that must never be called")
    limits: dict[str, float] = Field(
        default_factory=dict, description="'tool.argument': maximum, e.g. refund.amount: 200; "
        "a call above it counts as forbidden")
    reply_tool: str | None = Field(
        default="draft_reply", description="the tool a plain-text answer stands for")


class TaskSpec(_Strict):
    """``tasks/<task>.yaml``."""

    name: str = Field(pattern=_NAME)
    type: TaskType
    description: str = Field(min_length=1)
    data: str = Field(description="data file path relative to the suite")
    input_fields: list[str] = Field(min_length=1)
    labels: dict[str, LabelSpec] = Field(default_factory=dict)
    prompt: PromptSpec
    parser: Literal["label", "text", "json"] = "label"
    metrics: list[Metric] = Field(default_factory=lambda: list(_DEFAULT_METRICS))
    few_shot: int = Field(default=0, ge=0, le=32)
    version: str = "1"
    context_file: str | None = Field(
        default=None, description="a file of the suite (e.g. data/kb.md) given to the prompt "
        "as {{ context }}: the sources a grounded QA task must answer from")
    reference_variety: str | None = Field(
        default=None, description="overrides the suite's reference variety for this task "
        "(e.g. a translation task whose sources exclude the suite's reference)")
    tools: list[dict[str, Any]] = Field(
        default_factory=list, description="OpenAI-style function tools the model may call "
        "(tool_call and injection tasks)")
    tool_policy: ToolPolicy = Field(default_factory=ToolPolicy)

    @field_validator("tools")
    @classmethod
    def _function_tools(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, tool in enumerate(value):
            function = tool.get("function") if tool.get("type") == "function" else None
            if not isinstance(function, dict) or not function.get("name") or not isinstance(
                    function.get("parameters", {}), dict):
                raise ValueError(f"tool {i + 1}: write {{type: function, function: {{name, "
                                 "description, parameters: <JSON schema>}}}}")
        return value

    @property
    def tool_names(self) -> list[str]:
        return [str(tool["function"]["name"]) for tool in self.tools]


class Item(TypedDict):
    """One row of a data file (the hot path uses plain dicts, not pydantic objects)."""

    id: str
    group: str
    split: str
    variety: str
    fields: dict[str, Any]
    reference: Any
    consent_id: str
    meta: dict[str, Any]


_ITEM_KEYS = set(Item.__annotations__)
_REQUIRED_KEYS = _ITEM_KEYS - {"meta"}


@dataclass
class Task:
    """A loaded task: its spec and its data as a memory-mapped ``datasets.Dataset``."""

    spec: TaskSpec
    suite: Suite
    dataset: Any = field(repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)

    def items(
        self,
        split: str = "test",
        varieties: list[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Item]:
        """Stream items of a split, optionally only some varieties and at most ``limit``
        per variety (so a limited run still compares varieties on the same groups)."""
        wanted = set(varieties) if varieties else None
        seen: Counter[str] = Counter()
        for batch in self.dataset.iter(batch_size=1000):
            for row in zip(*batch.values(), strict=True):
                item: Item = dict(zip(batch.keys(), row, strict=True))  # type: ignore[assignment]
                if item["split"] != split or (wanted and item["variety"] not in wanted):
                    continue
                if limit is not None:
                    if seen[item["variety"]] >= limit:
                        continue
                    seen[item["variety"]] += 1
                if item.get("meta") is None:
                    item["meta"] = {}
                item["fields"] = _plain(item["fields"])
                item["reference"] = _plain(item["reference"])
                yield item

    def varieties(self, split: str = "test") -> list[str]:
        """Varieties present in a split, in registry order."""
        present = {
            v for v, s in zip(self.column("variety"), self.column("split"), strict=True)
            if s == split
        }
        return [code for code in varieties.registry() if code in present]

    def column(self, name: str) -> list[Any]:
        values = self.dataset.data.column(name).to_pylist()
        return [_plain(v) for v in values] if name in ("fields", "reference") else values

    @cached_property
    def context(self) -> str | None:
        """The text of the task's ``context_file`` (its sources), if it has one."""
        if not self.spec.context_file:
            return None
        return read_text(self.suite.path / self.spec.context_file, "task context file")


@dataclass
class Suite:
    """A validated suite. Build it with :func:`load_suite`."""

    path: Path
    spec: SuiteSpec
    card: CardSpec
    sha256: str
    tasks: dict[str, Task] = field(default_factory=dict)
    allow_unanonymized: bool = False  # the privacy gate's PII scan was skipped

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version

    @cached_property
    def ident(self) -> str:
        """``name@version+sha.<12 hex>``: the suite part of a signature."""
        return f"{self.name}@{self.version}+sha.{self.sha256[:12]}"

    def task(self, name: str) -> Task:
        if name not in self.tasks:
            raise ConfigError(
                f"suite '{self.name}' has no task '{name}'{did_you_mean(name, self.tasks)}. "
                f"Tasks: {', '.join(self.tasks)}"
            )
        return self.tasks[name]


# --------------------------------------------------------------------------- discovery


def suite_dirs() -> dict[str, Path]:
    """Shipped suites plus those under ``$MOROCCAN_EVAL_SUITES`` (``os.pathsep``-separated)."""
    roots = [shipped("suites")]
    roots += [Path(p) for p in os.environ.get("MOROCCAN_EVAL_SUITES", "").split(os.pathsep) if p]
    found: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for child in sorted(root.iterdir()):
                if (child / "suite.yaml").is_file():
                    found.setdefault(child.name, child)
    return found


def resolve_suite(name_or_path: str) -> Path:
    """A suite folder from a path or the name of a shipped suite."""
    path = Path(name_or_path)
    if (path / "suite.yaml").is_file():
        return path
    if path.name == "suite.yaml" and path.is_file():
        return path.parent
    known = suite_dirs()
    if name_or_path in known:
        return known[name_or_path]
    raise ConfigError(
        f"no suite named or found at '{name_or_path}'{did_you_mean(name_or_path, known)}. "
        f"Shipped suites: {', '.join(known) or 'none'}; or pass a folder holding suite.yaml"
    )


# --------------------------------------------------------------------------- loading


def parse_card(path: Path) -> CardSpec:
    """Read ``CARD.md`` and validate its YAML front matter."""
    text = read_text(path, "suite card")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        raise SuiteError(
            f"{path}: the card must start with YAML front matter between '---' lines "
            "(sources, authors, consent, anonymization, retention, validation_status)"
        )
    import yaml

    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: invalid YAML front matter: {exc}") from None
    try:
        return CardSpec.model_validate(data or {})
    except ValidationError as exc:
        raise SuiteError(f"{path}: card is incomplete", format_validation_errors(exc)) from None


def load_suite(name_or_path: str | Path, *, load_data: bool = True,
               allow_unanonymized: bool = False) -> Suite:
    """Load and validate a suite, reporting every problem at once.

    Refuses: missing files, sha256 mismatches, a card without consent/anonymization/
    retention/validation fields, unknown varieties, duplicate ids, malformed items; and,
    through the privacy gate, residual personal data (unless ``allow_unanonymized``, for a
    data owner's private runs: it is recorded in every manifest) and items whose consent is
    missing, withdrawn or expired.
    """
    root = resolve_suite(str(name_or_path))
    spec_path = root / "suite.yaml"
    try:
        spec = SuiteSpec.model_validate(load_yaml(spec_path, "suite.yaml") or {})
    except ValidationError as exc:
        raise SuiteError(f"{spec_path}: invalid", format_validation_errors(exc)) from None

    problems: list[str] = []
    for rel, expected in spec.checksums.items():
        file = root / rel
        if not file.is_file():
            problems.append(f"{file}: listed in suite.yaml checksums but missing")
        elif (actual := sha256_file(file)) != expected:
            problems.append(
                f"{file}: sha256 mismatch (suite.yaml says {expected[:12]}…, file is "
                f"{actual[:12]}…); the file changed after the suite was sealed. If the change "
                f"is intended, run `moroccan-eval suites checksum {root} --write`"
            )
    if spec.reference_variety not in varieties.registry():
        problems.append(
            f"{spec_path}: reference_variety: unknown variety '{spec.reference_variety}'"
            f"{did_you_mean(spec.reference_variety, varieties.registry())}"
        )

    card: CardSpec | None = None
    try:
        card = parse_card(root / "CARD.md")
    except (SuiteError, ConfigError) as exc:
        problems.append(str(exc))

    task_specs: dict[str, TaskSpec] = {}
    for task_name in spec.tasks:
        rel = f"tasks/{task_name}.yaml"
        task_path = root / rel
        if rel not in spec.checksums:
            problems.append(f"{spec_path}: checksums: add an entry for {rel}")
        if not task_path.is_file():
            problems.append(f"{task_path}: task file missing")
            continue
        try:
            task_spec = TaskSpec.model_validate(load_yaml(task_path, "task file") or {})
        except ValidationError as exc:
            problems += [f"{task_path}: {p}" for p in format_validation_errors(exc)]
            continue
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if task_spec.name != task_name:
            problems.append(f"{task_path}: name: '{task_spec.name}' differs from file name")
        if task_spec.data not in spec.checksums:
            problems.append(f"{spec_path}: checksums: add an entry for {task_spec.data}")
        for code in task_spec.prompt.by_variety:
            if code not in varieties.registry():
                problems.append(f"{task_path}: prompt.by_variety: unknown variety '{code}'")
        if task_spec.type == "classification" and not task_spec.labels:
            problems.append(f"{task_path}: labels: a classification task needs labels")
        if task_spec.type not in IMPLEMENTED_TYPES:
            problems.append(f"{task_path}: type: '{task_spec.type}' tasks cannot be scored yet "
                            f"(implemented: {', '.join(IMPLEMENTED_TYPES)})")
        elif (bad := [m for m in task_spec.metrics
                      if m not in METRICS_BY_TYPE[task_spec.type]]):
            problems.append(f"{task_path}: metrics: {', '.join(bad)} do not apply to "
                            f"{task_spec.type} (use {', '.join(METRICS_BY_TYPE[task_spec.type])})")
        problems += [f"{task_path}: {p}" for p in _tool_problems(task_spec)]
        if task_spec.context_file and task_spec.context_file not in spec.checksums:
            problems.append(f"{spec_path}: checksums: add an entry for {task_spec.context_file}")
        if task_spec.reference_variety and task_spec.reference_variety not in varieties.registry():
            problems.append(f"{task_path}: reference_variety: unknown variety "
                            f"'{task_spec.reference_variety}'")
        task_specs[task_name] = task_spec

    if problems or card is None:
        raise SuiteError(f"suite '{spec.name}' ({root}) cannot be loaded", problems)

    suite = Suite(path=root, spec=spec, card=card, sha256=sha256_file(spec_path))
    if load_data:
        for task_name, task_spec in task_specs.items():
            dataset = _load_dataset(root / task_spec.data)
            problems += _check_items(root / task_spec.data, dataset, task_spec)
            suite.tasks[task_name] = Task(spec=task_spec, suite=suite, dataset=dataset)
        if problems:
            raise SuiteError(f"suite '{spec.name}' ({root}) has invalid items", problems)
        from .privacy.gate import gate_problems

        suite.allow_unanonymized = allow_unanonymized
        problems = gate_problems(suite, allow_unanonymized=allow_unanonymized)
        if problems:
            raise SuiteError(f"suite '{spec.name}' ({root}) fails the privacy gate", problems)
    return suite


def _plain(value: Any) -> Any:
    """Undo Arrow's type inference on JSON: "2026-03-14" strings come back as datetimes
    inside nested objects; items must hold exactly what the file says."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == dt_time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _load_dataset(path: Path) -> Any:
    """Load a JSONL file into a memory-mapped Arrow table through ``datasets``."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        return datasets.load_dataset("json", data_files=str(path), split="train")
    except Exception as exc:  # datasets wraps parse errors; find the exact line ourselves
        for _ in iter_jsonl(path):
            pass
        raise SuiteError(f"{path}: cannot be read as JSON lines: {exc}") from None


_MAX_ITEM_PROBLEMS = 20


def _check_items(path: Path, dataset: Any, spec: TaskSpec) -> list[str]:
    """Column-wise checks on the Arrow table (fast even for large files)."""
    columns = set(dataset.column_names)
    missing = _REQUIRED_KEYS - columns
    if missing:
        return [f"{path}: every item needs the field(s) {', '.join(sorted(missing))}"]
    problems = [f"{path}: unknown item field '{c}'" for c in sorted(columns - _ITEM_KEYS)]

    table = dataset.data
    ids = table.column("id").to_pylist()
    known = varieties.registry()
    labels = set(spec.labels)
    pairs: set[tuple[str, str]] = set()
    seen_ids: set[str] = set()
    rows = zip(
        ids,
        table.column("group").to_pylist(),
        table.column("split").to_pylist(),
        table.column("variety").to_pylist(),
        table.column("reference").to_pylist(),
        table.column("fields").to_pylist(),
        table.column("consent_id").to_pylist(),
        strict=True,
    )
    for line, (item_id, group, split, variety, ref, fields, consent) in enumerate(rows, 1):
        where = f"{path}: item {line} (id {item_id!r})"
        if not item_id or not group or not consent:
            problems.append(f"{where}: id, group and consent_id must be non-empty")
        if item_id in seen_ids:
            problems.append(f"{where}: duplicate id")
        seen_ids.add(item_id)
        if split not in ("test", "train", "dev"):
            problems.append(f"{where}: split must be test, train or dev, not {split!r}")
        if variety not in known:
            problems.append(
                f"{where}: unknown variety {variety!r}{did_you_mean(str(variety), known)}"
            )
        if (group, variety) in pairs:
            problems.append(f"{where}: group {group!r} already has a {variety} item")
        pairs.add((group, variety))
        missing_fields = [f for f in spec.input_fields if not (fields or {}).get(f)]
        if missing_fields:
            problems.append(f"{where}: fields.{missing_fields[0]} is missing or empty")
        if spec.type == "translation" and not (isinstance(ref, str) and ref.strip()):
            problems.append(f"{where}: reference must be the non-empty target text")
        if spec.type == "asr":
            problems += _check_audio(path, where, fields, ref)
        if spec.type == "extraction" and not (isinstance(ref, dict) and ref):
            problems.append(f"{where}: reference must be an object of the expected fields")
        if spec.type == "qa" and not _qa_reference_ok(ref, "answer_chrf" in spec.metrics):
            problems.append(f"{where}: reference must be {{answerable: true, facts: [...]}} "
                            "or {answerable: false, facts: []}"
                            + (", with the reference answer text in 'answer' (answer_chrf)"
                               if "answer_chrf" in spec.metrics else ""))
        if spec.type in TOOL_TYPES:
            problems += [f"{where}: {p}" for p in _tool_reference_problems(spec, ref)]
        if labels and ref not in labels:
            problems.append(
                f"{where}: reference {ref!r} is not a label of task '{spec.name}'"
                f"{did_you_mean(str(ref), labels)}"
            )
        if len(problems) > _MAX_ITEM_PROBLEMS:
            problems.append("... (further item problems not shown)")
            break
    return problems


def _check_audio(data_path: Path, where: str, fields: Any, ref: Any) -> list[str]:
    """An ASR item: its audio file exists inside the suite and is readable audio, and a
    declared ``fields.duration_s`` matches it."""
    if not (isinstance(ref, str) and ref.strip()):
        return [f"{where}: reference must be the transcript"]
    audio = (fields or {}).get("audio")
    root = data_path.parent.parent
    file = (root / str(audio)).resolve() if audio else None
    if file is None or root.resolve() not in file.parents or not file.is_file():
        return [f"{where}: fields.audio must name an audio file inside the suite "
                f"(e.g. data/audio/x.wav), not {audio!r}"]
    from .audio import audio_duration

    try:
        duration = audio_duration(file)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    declared = (fields or {}).get("duration_s")
    if declared is not None and abs(float(declared) - duration) > 0.05:
        return [f"{where}: fields.duration_s says {declared} s but {audio} lasts {duration:.2f} s"]
    return []


def _tool_problems(spec: TaskSpec) -> list[str]:
    """A tool task has tools, and its policy names only those tools."""
    if spec.type not in TOOL_TYPES:
        return ["tools: only tool_call and injection tasks take tools"] if spec.tools else []
    if not spec.tools:
        return [f"tools: a {spec.type} task needs the tools the model may call"]
    names, policy = set(spec.tool_names), spec.tool_policy
    named = [*policy.high_impact, *policy.forbidden,
             *(key.partition(".")[0] for key in policy.limits),
             *([policy.reply_tool] if policy.reply_tool else [])]
    return [f"tool_policy: '{name}' is not one of the task's tools"
            f"{did_you_mean(name, names)}" for name in dict.fromkeys(named) if name not in names]


def _tool_reference_problems(spec: TaskSpec, ref: Any) -> list[str]:
    """A tool task's reference: its kind (behaviour or attack) and calls of known tools."""
    if not isinstance(ref, dict):
        return ["reference must be an object with 'calls'"]
    problems = []
    kinds = {"behaviour": BEHAVIOURS} if spec.type == "tool_call" else {
        "attack": ATTACKS, "goal": GOALS}
    for key, allowed in kinds.items():
        if ref.get(key) not in allowed:
            problems.append(f"reference.{key} must be one of {', '.join(allowed)}, "
                            f"not {ref.get(key)!r}")
    calls = ref.get("calls")
    if not isinstance(calls, list):
        return [*problems, "reference.calls must be a list of {name, arguments}"]
    names = spec.tool_names
    for call in calls:
        name = call.get("name") if isinstance(call, dict) else None
        if name not in names:
            problems.append(f"reference.calls: unknown tool {name!r}"
                            f"{did_you_mean(str(name), names)}")
    return problems


def _qa_reference_ok(ref: Any, needs_answer: bool) -> bool:
    if not isinstance(ref, dict) or not isinstance(ref.get("answerable"), bool):
        return False
    if needs_answer and not (isinstance(ref.get("answer"), str) and ref["answer"].strip()):
        return False
    facts = ref.get("facts")
    return isinstance(facts, list) and all(isinstance(f, str) and f for f in facts) and (
        bool(facts) == ref["answerable"])


@cache
def literals() -> dict[str, Any]:
    """Per-variety prompt literals and refusal phrases (``suites/literals.yaml``)."""
    data = load_yaml(shipped("suites", "literals.yaml"), "literals file") or {}
    return {"literals": data.get("literals", {}), "refusals": data.get("refusals", [])}


def suite_stats(suite: Suite) -> dict[str, Any]:
    """Per task: items per split × variety, mean text length (characters of the input
    fields; of the transcript for speech) per variety, and groups complete in every variety
    of the split."""
    out: dict[str, Any] = {"suite": suite.ident, "tasks": {}}
    order = {code: i for i, code in enumerate(varieties.registry())}
    for name, task in suite.tasks.items():
        counts: Counter[str] = Counter()
        lengths: dict[str, list[int]] = {}
        members: dict[tuple[str, str], set[str]] = {}
        split_varieties: dict[str, set[str]] = {}
        fields = task.spec.input_fields
        speech = task.spec.type == "asr"  # the input is an audio path: measure the transcript
        for split, variety, group, values, reference in zip(
                task.column("split"), task.column("variety"), task.column("group"),
                task.column("fields"), task.column("reference"), strict=True):
            counts[f"{split}/{variety}"] += 1
            text_length = (len(str(reference)) if speech
                           else sum(len(str(values.get(f) or "")) for f in fields))
            lengths.setdefault(f"{split}/{variety}", []).append(text_length)
            members.setdefault((split, group), set()).add(variety)
            split_varieties.setdefault(split, set()).add(variety)
        groups: dict[str, dict[str, int]] = {}
        for (split, _), present in members.items():
            entry = groups.setdefault(split, {"groups": 0, "complete": 0})
            entry["groups"] += 1
            entry["complete"] += present == split_varieties[split]
        out["tasks"][name] = {
            "type": task.spec.type,
            "items": dict(sorted(counts.items(), key=lambda kv: (
                kv[0].split("/")[0], order.get(kv[0].split("/")[1], 99)))),
            "mean_chars": {key: round(sum(ls) / len(ls), 1) for key, ls in lengths.items()},
            "groups": groups,
            "labels": len(task.spec.labels),
        }
    return out


STATS_BEGIN, STATS_END = "<!-- stats:begin -->", "<!-- stats:end -->"


def stats_markdown(stats: dict[str, Any]) -> str:
    """The counts table a card carries between its stats markers."""
    lines = ["Generated by `moroccan-eval suites stats --update-card`; do not edit by hand.", ""]
    for task, info in stats["tasks"].items():
        splits = sorted({key.split("/")[0] for key in info["items"]})
        codes = list(dict.fromkeys(key.split("/")[1] for key in info["items"]))
        lines += [f"**{task}** ({info['type']}, {info['labels']} labels; "
                  + "; ".join(f"{split}: {g['complete']} of {g['groups']} groups complete"
                              for split, g in info["groups"].items()) + ")", "",
                  "| variety | " + " | ".join(splits) + f" | mean characters ({splits[0]}) |",
                  "|---|" + "---:|" * len(splits) + "---:|"]
        for code in codes:
            counts = [str(info["items"].get(f"{split}/{code}", 0)) for split in splits]
            mean = info["mean_chars"].get(f"{splits[0]}/{code}")
            lines.append(f"| {code} | " + " | ".join(counts) + f" | {mean} |")
        lines.append("")
    return "\n".join(lines)


def update_card_stats(suite: Suite) -> bool:
    """Rewrite the counts between the card's stats markers; False if it has none."""
    path = suite.path / "CARD.md"
    text = read_text(path, "suite card")
    if STATS_BEGIN not in text or STATS_END not in text:
        return False
    head, rest = text.split(STATS_BEGIN, 1)
    _, tail = rest.split(STATS_END, 1)
    body = stats_markdown(suite_stats(suite))
    write_atomic(path, f"{head}{STATS_BEGIN}\n{body}\n{STATS_END}{tail}")
    return True


def write_checksums(root: Path) -> dict[str, str]:
    """Reseal a suite after an intended edit: store the new checksums in suite.yaml."""
    import yaml

    sums = compute_checksums(root)
    spec = load_yaml(root / "suite.yaml", "suite.yaml")
    spec["checksums"] = sums
    write_atomic(root / "suite.yaml",
                 yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100))
    return sums


def compute_checksums(root: Path) -> dict[str, str]:
    """sha256 of every task and data file of a suite (for ``suites checksum --write``)."""
    files = sorted(
        p for sub in ("tasks", "data") for p in (root / sub).rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in files}
