"""The variety registry (data in ``suites/varieties.yaml``) and script detection helpers."""

from __future__ import annotations

import os
import unicodedata
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .errors import ConfigError, did_you_mean
from .io import load_yaml, validate
from .resources import shipped


class VarietyNames(BaseModel):
    """Display names of a variety in the report languages."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    en: str
    fr: str
    ar: str


class Variety(BaseModel):
    """One language variety: a code such as ``ary_Latn`` and how to display it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    names: VarietyNames
    language: str
    script: str
    direction: Literal["ltr", "rtl", "auto"]
    optional: bool = False

    def name(self, lang: str = "en") -> str:
        """Display name in ``en``, ``fr`` or ``ar``."""
        return str(getattr(self.names, lang, self.names.en))


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    varieties: dict[str, dict[str, object]]


def _load_file(path: Path) -> dict[str, Variety]:
    raw = validate(_RegistryFile, load_yaml(path, "variety registry"), str(path))
    return {
        code: validate(Variety, {"code": code, **fields}, f"{path}: varieties.{code}")
        for code, fields in raw.varieties.items()
    }


@cache
def registry() -> dict[str, Variety]:
    """All known varieties: the shipped registry plus ``$MOROCCAN_EVAL_VARIETIES`` if set."""
    varieties = _load_file(shipped("suites", "varieties.yaml"))
    extra = os.environ.get("MOROCCAN_EVAL_VARIETIES")
    if extra:
        varieties.update(_load_file(Path(extra)))
    return varieties


def get(code: str) -> Variety:
    """Look up a variety; an unknown code raises a :class:`ConfigError` with a suggestion."""
    known = registry()
    if code not in known:
        raise ConfigError(
            f"unknown variety '{code}'{did_you_mean(code, known)}. "
            f"Known: {', '.join(known)}"
        )
    return known[code]


def core_codes() -> list[str]:
    """The non-optional varieties, in registry order."""
    return [code for code, v in registry().items() if not v.optional]


Script = Literal["Arab", "Latn", "Tfng", "mixed", "none"]


def detect_script(text: str) -> Script:
    """The dominant script of ``text`` by letter count; ``mixed`` when two scripts each
    hold at least a quarter of the letters."""
    counts = {"Arab": 0, "Latn": 0, "Tfng": 0}
    for char in text:
        if not char.isalpha():
            continue
        code = ord(char)
        if 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0xFB50 <= code <= 0xFEFF:
            counts["Arab"] += 1
        elif 0x2D30 <= code <= 0x2D7F:
            counts["Tfng"] += 1
        elif unicodedata.name(char, "").startswith("LATIN"):
            counts["Latn"] += 1
    total = sum(counts.values())
    if total == 0:
        return "none"
    ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
    if ranked[1][1] >= 0.25 * total:
        return "mixed"
    return ranked[0][0]  # type: ignore[return-value]
