"""Replacing personal data: typed placeholders, keyed pseudonyms, or redaction.

- ``placeholder``: ``<PERSON_1>``, ``<PHONE_1>`` ... numbered in reading order within one
  record (a JSONL line, a CSV row, a text line); the same value gets the same placeholder
  everywhere in the record.
- ``pseudonym``: ``<PERSON_3fa9c2d1>``, an HMAC-SHA256 of the value under a key read from
  the environment variable the policy names, so the same person gets the same pseudonym
  across a whole corpus, and nobody without the key can link it back.
- ``redact``: ``<PERSON>``, the type only.

The replacement itself is done by Presidio's anonymizer with one custom operator per
entity type.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from ..errors import ConfigError
from ..text import normalize
from .scanner import Finding, Scanner

Operator = Literal["placeholder", "pseudonym", "redact"]
OPERATORS: tuple[Operator, ...] = ("placeholder", "pseudonym", "redact")


def _value_key(entity: str, value: str) -> str:
    """The identity of a value: separators, case and accents do not make a new person."""
    if entity == "PERSON" or entity == "ADDRESS":
        return normalize(value)
    return re.sub(r"[\s.\-/|()]", "", value).casefold()


class Anonymizer:
    """Scans and rewrites records. Never logs or returns the values it removes."""

    def __init__(self, scanner: Scanner, operator: Operator = "placeholder"):
        from presidio_anonymizer import AnonymizerEngine

        if operator not in OPERATORS:
            raise ConfigError(f"--operator: unknown operator '{operator}'; choose one of "
                              + ", ".join(OPERATORS))
        self.scanner = scanner
        self.policy = scanner.policy
        self.operator = operator
        self._engine = AnonymizerEngine()  # type: ignore[no-untyped-call]
        self._key: bytes | None = None
        if operator == "pseudonym":
            env = self.policy.pseudonym_key_env
            key = os.environ.get(env, "")
            if len(key) < 16:
                raise ConfigError(
                    f"--operator pseudonym needs a secret key of at least 16 characters in "
                    f"the environment variable {env} (e.g. export {env}=$(openssl rand -hex "
                    "32)); keep it out of files: whoever holds it can re-link pseudonyms")
            self._key = key.encode("utf-8")

    def _label(self, entity: str, value: str, numbering: dict[str, str],
               counts: Counter[str]) -> str:
        kind = self.policy.placeholder_type(entity)
        if self.operator == "redact":
            return f"<{kind}>"
        key = f"{kind}\x00{_value_key(entity, value)}"
        if self.operator == "pseudonym":
            assert self._key is not None
            digest = hmac.new(self._key, key.encode("utf-8"), hashlib.sha256).hexdigest()
            return f"<{kind}_{digest[:8]}>"
        if key not in numbering:
            counts[kind] += 1
            numbering[key] = f"<{kind}_{counts[kind]}>"
        return numbering[key]

    def record(self, texts: dict[str, str]) -> tuple[dict[str, str], Counter[str]]:
        """Anonymize the text fields of one record; returns the new texts and the count
        of findings per entity type."""
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        numbering: dict[str, str] = {}
        per_kind: Counter[str] = Counter()
        found: Counter[str] = Counter()
        out: dict[str, str] = {}
        for name, text in texts.items():
            findings: list[Finding] = self.scanner.scan(text)
            if not findings:
                out[name] = text
                continue
            labels: dict[tuple[int, int], str] = {}
            for f in findings:  # reading order: numbering follows the text
                found[f.entity] += 1
                labels[(f.start, f.end)] = self._label(f.entity, text[f.start:f.end],
                                                       numbering, per_kind)
            # Presidio's custom operator receives only the value; the span picks its label.
            operators = {}
            results = []
            for i, f in enumerate(findings):
                entity = f"E{i}"
                label = labels[(f.start, f.end)]
                operators[entity] = OperatorConfig("custom", {"lambda": _constant(label)})
                results.append(RecognizerResult(entity, f.start, f.end, f.score))
            out[name] = self._engine.anonymize(text=text, analyzer_results=results,
                                               operators=operators).text
        return out, found


def _constant(label: str) -> Callable[[Any], str]:
    return lambda _value: label
