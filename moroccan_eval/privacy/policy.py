"""The anonymization policy (``anonymize/policy.yaml``), validated."""

from __future__ import annotations

import hashlib
import os
import re
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import ConfigError
from ..io import load_model_yaml, load_yaml, read_text
from ..resources import shipped


class _Strict(BaseModel):
    # built on first use: a warm start-up reads the policy's fingerprint only
    model_config = ConfigDict(extra="forbid", defer_build=True)


class PatternSpec(_Strict):
    name: str
    regex: str
    score: float = Field(ge=0, le=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class EntitySpec(_Strict):
    patterns: list[PatternSpec] = Field(min_length=1)
    context: list[str] = Field(default_factory=list)
    validator: Literal["luhn", "iban"] | None = None


class PersonSpec(_Strict):
    first_names: str
    family_names: str
    not_names: str
    first_name_variants: str | None = Field(
        default=None, description="gazetteer of 'Canonical: chat variant, ...' lines")
    places: str | None = Field(
        default=None, description="gazetteer of place names that contain a person's name")
    score_full_name: float = Field(ge=0, le=1)
    score_first_name: float = Field(ge=0, le=1)
    score_first_and_surname: float = Field(default=0.65, ge=0, le=1)
    score_common_word: float = Field(ge=0, le=1)
    score_after_cue: float = Field(ge=0, le=1)
    cues: list[str]
    weak_cues: list[str] = Field(default_factory=list)
    never_names: list[str] = Field(default_factory=list)
    honorifics: list[str] = Field(default_factory=list)
    regnal: list[str] = Field(default_factory=list)
    particles: list[str] = Field(default_factory=list)
    not_surnames: list[str] = Field(default_factory=list)
    place_words: list[str] = Field(default_factory=list)

    def gazetteers(self) -> list[str]:
        """Every gazetteer file the person recognizer reads."""
        return [name for name in (getattr(self, key) for key in GAZETTEERS) if name]


#: The fields of ``person`` naming gazetteer files, in the order the fingerprint reads them.
GAZETTEERS = ("first_names", "family_names", "not_names", "first_name_variants", "places")


class Policy(_Strict):
    """What counts as personal data and how it is found and replaced."""

    version: str
    min_score: float = Field(ge=0, le=1)
    high_confidence: float = Field(ge=0, le=1)
    context_window: int = Field(ge=0)
    context_boost: float = Field(ge=0, le=1)
    placeholder_types: dict[str, str]
    pseudonym_key_env: str
    structured: list[str]
    entities: dict[str, EntitySpec]
    person: PersonSpec
    root: Path = Field(default=Path("."), exclude=True)
    fingerprint: str = Field(default="", exclude=True)

    def words(self, relative: str) -> list[str]:
        """A gazetteer: one entry per line; ``#`` starts a comment line."""
        text = read_text(self.root / relative, "gazetteer")
        return [line.strip() for line in text.splitlines()
                if line.strip() and not line.startswith("#")]

    def placeholder_type(self, entity: str) -> str:
        return self.placeholder_types.get(entity, entity)


@cache
def _load(path: Path) -> Policy:
    policy = load_model_yaml(Policy, path, "anonymization policy")
    policy.root = path.parent
    policy.fingerprint = _fingerprint(path, policy.person.gazetteers())
    return policy


def _fingerprint(path: Path, gazetteers: list[str]) -> str:
    """What identifies a policy: its file and the gazetteer files it names."""
    digest = hashlib.sha256(path.read_bytes())
    for name in gazetteers:
        file = path.parent / name
        if not file.is_file():
            raise ConfigError(f"{path}: person: gazetteer {name} is missing")
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def policy_path(path: Path | None = None) -> Path:
    """``path``, ``$MOROCCAN_EVAL_ANONYMIZE_POLICY``, or the shipped policy."""
    chosen = path or os.environ.get("MOROCCAN_EVAL_ANONYMIZE_POLICY")
    return Path(chosen).resolve() if chosen else shipped("anonymize", "policy.yaml")


def load_policy(path: Path | None = None) -> Policy:
    """The policy at ``path``, ``$MOROCCAN_EVAL_ANONYMIZE_POLICY``, or the shipped one."""
    return _load(policy_path(path))


def policy_fingerprint(path: Path | None = None) -> str:
    """:attr:`Policy.fingerprint` of the policy :func:`load_policy` would load, read
    without validating it (what a remembered privacy verdict is looked up by)."""
    return _unvalidated_fingerprint(policy_path(path))


@cache
def _unvalidated_fingerprint(path: Path) -> str:
    data = load_yaml(path, "anonymization policy")
    person = data.get("person") if isinstance(data, dict) else None
    names = [person.get(key) for key in GAZETTEERS] if isinstance(person, dict) else None
    if names is None or not all(isinstance(name, str | None) for name in names):
        return _load(path).fingerprint  # which gazetteers is unclear: its errors say why
    return _fingerprint(path, [name for name in names if name])
