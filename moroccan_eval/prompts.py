"""Prompt rendering: sandboxed Jinja2 with StrictUndefined, per-variety templates,
seeded few-shot examples from the ``train`` split.

Template variables: every field of the item (``{{ text }}``), ``labels`` (list of names),
``label_descriptions`` (name → description), ``variety`` (code), ``examples`` (list of
``{"fields", "reference"}`` for k-shot prompts), ``context`` (the task's sources) and
``canary`` (the security suite's secret, see :mod:`moroccan_eval.canary`).

An item whose ``fields.history`` is a list of ``{"role", "content"}`` turns is a
conversation: those turns go between the system prompt and the rendered user message.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from functools import cache
from typing import NamedTuple

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field

from .canary import CANARY_PLACEHOLDER
from .errors import ConfigError
from .io import JSONValue, load_model_yaml
from .resources import shipped
from .suites.schema import Item, TaskSpec


class Literals(BaseModel):
    """``suites/literals.yaml``: short words templates need in each variety
    (``{{ literals.question }}``) and ways of saying "the sources do not say", which QA
    tasks count as a refusal in any variety."""

    model_config = ConfigDict(extra="forbid")
    literals: dict[str, dict[str, str]] = Field(default_factory=dict)
    refusals: list[str] = Field(default_factory=list)


@cache
def literals() -> Literals:
    """The shipped prompt literals and refusal phrases."""
    return load_model_yaml(Literals, shipped("suites", "literals.yaml"), "literals file")


Message = dict[str, str]

_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False,
                            autoescape=False)


class PromptRenderer:
    """Compiles a task's templates once; renders chat messages per item."""

    def __init__(self, spec: TaskSpec, train: list[Item] | None = None, seed: int = 0,
                 context: str | None = None):
        self.spec = spec
        self.seed = seed
        self.context = context
        self.literals = literals().literals
        self._templates: dict[str, _Templates] = {}
        try:
            self._default = self._compile(spec.prompt.system, spec.prompt.user)
            for code, override in spec.prompt.by_variety.items():
                self._templates[code] = self._compile(
                    override.get("system", spec.prompt.system),
                    override.get("user", spec.prompt.user),
                )
        except TemplateError as exc:
            raise ConfigError(f"task '{spec.name}': prompt template error: {exc}") from None
        self._by_variety: dict[str, list[Item]] = defaultdict(list)
        for item in train or []:
            self._by_variety[item["variety"]].append(item)
        self._static = {
            "labels": list(spec.labels),
            "label_descriptions": {k: v.description for k, v in spec.labels.items()},
        }

    @staticmethod
    def _compile(system: str | None, user: str) -> _Templates:
        return _Templates(_ENV.from_string(system) if system else None, _ENV.from_string(user))

    def examples(self, item: Item) -> list[dict[str, JSONValue]]:
        """``few_shot`` train examples of the item's variety, chosen by a seeded RNG that
        depends on the item id only: adding items does not change others' prompts."""
        k = self.spec.few_shot
        pool = self._by_variety.get(item["variety"], [])
        if k == 0 or not pool:
            return []
        digest = hashlib.sha256(f"{self.seed}:{item['id']}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        chosen = rng.sample(pool, min(k, len(pool)))
        return [{"fields": ex["fields"], "reference": ex["reference"]} for ex in chosen]

    def render(self, item: Item) -> list[Message]:
        """Chat messages for one item."""
        templates = self._templates.get(item["variety"], self._default)
        context = {
            **self._static,
            **item["fields"],
            "variety": item["variety"],
            "examples": self.examples(item),
            "context": self.context or "",
            "canary": CANARY_PLACEHOLDER,
            "literals": self.literals.get(item["variety"], self.literals.get("eng_Latn", {})),
        }
        try:
            messages = []
            if templates.system is not None:
                messages.append({"role": "system", "content": templates.system.render(context)})
            messages += _history(item)
            messages.append({"role": "user", "content": templates.user.render(context)})
        except TemplateError as exc:
            raise ConfigError(
                f"task '{self.spec.name}': prompt cannot be rendered for item {item['id']}: {exc}"
            ) from None
        return messages


class _Templates(NamedTuple):
    system: Template | None
    user: Template


def _history(item: Item) -> list[Message]:
    """Earlier turns of a conversation item, as chat messages."""
    turns = item["fields"].get("history")
    if not isinstance(turns, list):
        return []
    return [{"role": str(turn["role"]), "content": str(turn["content"])} for turn in turns
            if isinstance(turn, dict) and turn.get("role") in ("user", "assistant")]
