"""The suite file formats: ``suite.yaml``, the front matter of ``CARD.md``,
``tasks/<task>.yaml`` and one item of ``data/<task>.jsonl``.

Pure pydantic models with ``extra="forbid"``: a leaf module that the loader, the privacy
gate and the run records import, and that imports nothing of theirs.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from ..errors import ConfigError
from ..io import JSONObject, JSONValue

_NAME = r"^[a-z0-9][a-z0-9_.-]*$"


def check_suite_name(name: str) -> None:
    """Refuse a suite name a new suite (``--name`` of the importers) may not have."""
    if not re.fullmatch(_NAME, name):
        raise ConfigError(f"--name: '{name}' must be lowercase letters, digits, _ . -")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuditSettings(_Strict):
    """``audit:`` in ``suite.yaml``: the thresholds of ``moroccan-eval suites audit`` this
    suite states instead of the audit's defaults (``moroccan_eval.suites.audit.DEFAULTS``),
    and why. A figure above a ``*_warn`` threshold warns, above ``*_fail`` fails."""

    reason: str = Field(default="", description="why this suite's thresholds differ from "
                        "the defaults (required when any is set)")
    tifinagh_allow: list[str] = Field(
        default_factory=list, description="characters or whole words Tifinagh text may hold "
        "besides the IRCAM letters (e.g. a brand name written in Latin letters)")
    contrast_words: list[str] = Field(
        default_factory=list, description="more contrast words ('but') for the shortcut "
        "check's cue-only baseline, in this suite's languages")
    near_duplicate_similarity: float | None = Field(
        default=None, gt=0, le=1, description="character 3-gram Jaccard similarity from "
        "which two normalised texts count as near-duplicates")
    leak_across_splits_warn: float | None = Field(default=None, ge=0)
    leak_across_splits_fail: float | None = Field(default=None, ge=0)
    duplicates_within_split_warn: float | None = Field(default=None, ge=0)
    duplicates_within_split_fail: float | None = Field(default=None, ge=0)
    shared_groups_warn: float | None = Field(default=None, ge=0)
    shared_groups_fail: float | None = Field(default=None, ge=0)
    shared_answer_keys_warn: float | None = Field(default=None, ge=0)
    shared_answer_keys_fail: float | None = Field(default=None, ge=0)
    label_leakage_warn: float | None = Field(default=None, ge=0)
    label_leakage_fail: float | None = Field(default=None, ge=0)
    shortcut_warn: float | None = Field(default=None, ge=0)
    shortcut_fail: float | None = Field(default=None, ge=0)
    shortcut_margin: float | None = Field(default=None, ge=0)
    shortcut_min_gain: float | None = Field(default=None, ge=0)
    script_mixing_warn: float | None = Field(default=None, ge=0)
    script_mixing_fail: float | None = Field(default=None, ge=0)
    tifinagh_latin_words_warn: float | None = Field(default=None, ge=0)
    tifinagh_latin_words_fail: float | None = Field(default=None, ge=0)
    parallel_identity_warn: float | None = Field(default=None, ge=0)
    parallel_identity_fail: float | None = Field(default=None, ge=0)
    reference_is_source_warn: float | None = Field(default=None, ge=0)
    reference_is_source_fail: float | None = Field(default=None, ge=0)
    rewrites_warn: float | None = Field(default=None, ge=0)
    rewrites_fail: float | None = Field(default=None, ge=0)
    short_key_chars: int | None = Field(default=None, ge=0)
    accidental_keys_warn: float | None = Field(default=None, ge=0)
    accidental_keys_fail: float | None = Field(default=None, ge=0)
    ci_half_width_warn: float | None = Field(default=None, ge=0)
    ci_half_width_fail: float | None = Field(default=None, ge=0)
    copies_warn: float | None = Field(default=None, ge=0)
    copies_fail: float | None = Field(default=None, ge=0)

    def overrides(self) -> dict[str, float]:
        """The thresholds this suite sets, by name."""
        return {name: float(value) for name, value in self.model_dump(
            exclude={"reason", "tifinagh_allow", "contrast_words"}, exclude_none=True).items()}

    @field_validator("reason")
    @classmethod
    def _filled_reason(cls, value: str) -> str:
        return _not_placeholder(value)

    @model_validator(mode="after")
    def _reason_given(self) -> AuditSettings:
        if (self.overrides() or self.tifinagh_allow or self.contrast_words) and len(
                self.reason.strip()) < 10:
            raise ValueError("reason: say why this suite's audit thresholds or allow-list "
                             "differ from the defaults")
        return self


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
    audit: AuditSettings = Field(
        default_factory=AuditSettings, description="thresholds of `suites audit` this "
        "suite states instead of the defaults, with the reason")

    @field_validator("pii_allowed")
    @classmethod
    def _reasons(cls, value: dict[str, str]) -> dict[str, str]:
        for entity, reason in value.items():
            if len(reason.strip()) < 10:
                raise ValueError(f"'{entity}': say why this entity type is not personal data "
                                 "in this suite")
        return value

    def placeholder_problems(self) -> list[str]:
        """Fields still holding a ``TODO`` placeholder. Not a validator, so that the
        loader reports them together with the card's and the consent register's."""
        texts = {"description": self.description, "license": self.license,
                 **{f"pii_allowed.{k}": v for k, v in self.pii_allowed.items()}}
        return [f"{name}: {problem}" for name, text in texts.items()
                if (problem := placeholder_problem(text))]

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


#: Imported suites start with metadata fields that begin with this marker; the loader
#: refuses the word anywhere in suite metadata (suite.yaml, the card, the consent register)
#: until a person has written what really happened (licence, consent, anonymization ...).
TODO_MARKER = "TODO"

_PLACEHOLDER = re.compile(rf"\b{TODO_MARKER}\b")


def placeholder_problem(value: str) -> str | None:
    """Why ``value`` is still a placeholder (it holds the word ``TODO``), or ``None``."""
    if not _PLACEHOLDER.search(value):
        return None
    return (f"still the import skeleton's placeholder ({value.strip()[:60]!r}); write what is "
            f"true for this data (no {TODO_MARKER} may remain)")


def _not_placeholder(value: str) -> str:
    if problem := placeholder_problem(value):
        raise ValueError(problem)
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

    @field_validator("sources", "authors", "anonymization", "retention", "validation_status",
                     "known_gaps")
    @classmethod
    def _filled(cls, value: str) -> str:
        return _not_placeholder(value)

    @field_validator("validation_by_variety")
    @classmethod
    def _filled_by_variety(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            _not_placeholder(text)
        return value


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
    type: str = Field(description="a registered task type (moroccan-eval tasks list)")
    description: str = Field(min_length=1)
    data: str = Field(description="data file path relative to the suite")
    input_fields: list[str] = Field(min_length=1)
    labels: dict[str, LabelSpec] = Field(default_factory=dict)
    prompt: PromptSpec
    parser: str | None = Field(
        default=None, exclude=True, description="deprecated and ignored: "
        "the task type chooses its parser; still accepted because it is part of task files")
    metrics: list[str] = Field(
        default_factory=list, description="metrics to compute (default: the type's own)")
    few_shot: int = Field(default=0, ge=0, le=32)
    version: str = "1"
    context_file: str | None = Field(
        default=None, description="a file of the suite (e.g. data/kb.md) given to the prompt "
        "as {{ context }}: the sources a grounded QA task must answer from")
    reference_variety: str | None = Field(
        default=None, description="overrides the suite's reference variety for this task "
        "(e.g. a translation task whose sources exclude the suite's reference)")
    tools: list[JSONObject] = Field(
        default_factory=list, description="OpenAI-style function tools the model may call "
        "(tool_call and injection tasks)")
    tool_policy: ToolPolicy = Field(default_factory=ToolPolicy)
    breakdown_by: str | None = Field(
        default=None, description="meta.KEY: also score the task per value of each item's "
        "meta.KEY, all varieties pooled (e.g. meta.amazigh_variety: one row per dialect)")

    @field_validator("breakdown_by")
    @classmethod
    def _meta_key(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"meta\.[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"write meta.KEY, the item meta field to score by (e.g. "
                             f"meta.amazigh_variety), not {value!r}")
        return value

    @model_serializer(mode="wrap")
    def _breakdown_when_set(self, handler: SerializerFunctionWrapHandler) -> Any:
        # manifests of tasks without it (every run before it existed) must read back unchanged
        data = handler(self)
        if self.breakdown_by is None and isinstance(data, dict):
            data.pop("breakdown_by", None)
        return data

    @property
    def breakdown_key(self) -> str | None:
        """The ``meta`` key of :attr:`breakdown_by`, if the task sets one."""
        return self.breakdown_by.removeprefix("meta.") if self.breakdown_by else None

    @field_validator("tools")
    @classmethod
    def _function_tools(cls, value: list[JSONObject]) -> list[JSONObject]:
        for i, tool in enumerate(value):
            function = tool.get("function") if tool.get("type") == "function" else None
            if not isinstance(function, dict) or not function.get("name") or not isinstance(
                    function.get("parameters", {}), dict):
                raise ValueError(f"tool {i + 1}: write {{type: function, function: {{name, "
                                 "description, parameters: <JSON schema>}}}}")
        return value

    @property
    def tool_names(self) -> list[str]:
        return [str(function["name"]) for tool in self.tools
                if isinstance(function := tool.get("function"), dict)]


class Item(TypedDict):
    """One row of a data file (the hot path uses plain dicts, not pydantic objects)."""

    id: str
    group: str
    split: str
    variety: str
    fields: JSONObject
    reference: JSONValue
    consent_id: str
    meta: JSONObject


ITEM_KEYS = frozenset(Item.__annotations__)
REQUIRED_ITEM_KEYS = ITEM_KEYS - {"meta"}

#: Splits that hold the same meanings as another split, written differently: each item
#: re-types the item of the same ``group`` and ``variety`` in the split it shadows (e.g.
#: ``test_noisy``: the clean test message as users really type it, with elongation,
#: spelling variants, typos, emoji, code-switching). A run of such a split is reported as a
#: degradation row beside the run of the split it shadows, paired by group.
SHADOW_SPLITS: dict[str, str] = {"test_noisy": "test"}

SPLITS = ("test", "train", "dev", *SHADOW_SPLITS)


def clean_split(split: str) -> str | None:
    """The split that ``split`` re-types (``test`` for ``test_noisy``), or ``None``."""
    return SHADOW_SPLITS.get(split)


