"""The privacy gate the suite loader applies: no residual personal data, no withdrawn or
expired consent, consents backed by a register.

A clean result is remembered per (suite content hash, policy fingerprint) in the cache
folder, so a sealed suite is scanned once, not at every load.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import TYPE_CHECKING

from ..cache import default_cache_dir
from .consent import AUTHORED, consent_problems
from .policy import load_policy
from .scanner import Scanner

if TYPE_CHECKING:
    from ..suites import Suite


@cache
def default_scanner() -> Scanner:
    """One scanner per process: building Presidio's engine is the expensive part."""
    return Scanner(load_policy())


def gate_problems(suite: Suite, *, allow_unanonymized: bool = False) -> list[str]:
    """Everything that keeps ``suite`` from loading on privacy grounds."""
    usage: dict[str, list[str]] = defaultdict(list)
    for task in suite.tasks.values():
        for consent_id, item_id in zip(task.column("consent_id"), task.column("id"),
                                       strict=True):
            usage[str(consent_id)].append(str(item_id))
    problems = consent_problems(suite.path, usage)
    if set(usage) - {AUTHORED} and suite.card.consent.basis != "consent_register":
        problems.append(f"{suite.path / 'CARD.md'}: consent: basis is "
                        f"'{suite.card.consent.basis}' but items rely on a consent register; "
                        "set basis: consent_register")
    if not allow_unanonymized:
        problems += residual_pii(suite)
    return problems


def residual_pii(suite: Suite) -> list[str]:
    """High-confidence personal data left in any text field of any item."""
    scanner = default_scanner()
    marker = (default_cache_dir() / "pii-gate"
              / f"{suite.sha256[:24]}-{scanner.policy.fingerprint}.clean")
    if marker.is_file():
        return []
    problems = []
    allowed = set(suite.spec.pii_allowed)
    for task in suite.tasks.values():
        for item_id, fields in zip(task.column("id"), task.column("fields"), strict=True):
            for name, value in (fields or {}).items():
                if not isinstance(value, str):
                    continue
                for f in scanner.high_confidence(scanner.scan(value)):
                    if f.entity in allowed:
                        continue
                    problems.append(
                        f"{suite.path / task.spec.data}: item {item_id}, field {name}: "
                        f"{f.entity} at characters {f.start}-{f.end} (score {f.score:.2f}); "
                        f"anonymize the file (`moroccan-eval anonymize apply "
                        f"{task.spec.data} -o anonymized.jsonl --field fields.{name}`) or "
                        "remove the item")
    if not problems:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass  # a read-only cache only costs a re-scan next time
    return problems
