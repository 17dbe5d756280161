"""The privacy gate the suite loader applies: no residual personal data, no withdrawn or
expired consent, consents backed by a register.

A clean result is remembered per (suite content hash, policy fingerprint) in the cache
folder (:mod:`moroccan_eval.verdicts`), so a sealed suite is scanned once, not at every
load; so is a suite whose items are all authored (they rely on no consent). Consents
from a register are checked at every load: one may have expired since the last.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from .. import collector, verdicts
from ..io import JSONValue
from ..suites.schema import CardSpec, Item, SuiteSpec
from .consent import AUTHORED, consent_problems
from .files import leaves, strings
from .policy import load_policy, policy_fingerprint, policy_path
from .scanner import Finding, Scanner


class GatedSuite(Protocol):
    """What the gate reads of a suite (the loader's ``Suite``; the gate never imports the
    loader, which calls it)."""

    path: Path
    spec: SuiteSpec
    card: CardSpec
    sha256: str

    def iter_items(self) -> Iterator[tuple[str, Item]]: ...

    def text_files(self) -> Iterator[tuple[str, str]]: ...

    def consent_ids(self) -> Iterator[tuple[str, str]]: ...


# Part of the clean marker's name: a suite found clean by an older gate, which scanned
# less, is scanned again.
GATE_VERSION = 2


def default_scanner() -> Scanner:
    """The scanner of the policy :func:`~.policy.load_policy` loads, one per policy and
    process: building Presidio's engine is the expensive part."""
    return _scanner(policy_path())


@cache
def _scanner(policy: Path) -> Scanner:
    return Scanner(load_policy(policy))


def gate_problems(suite: GatedSuite, *, allow_unanonymized: bool = False) -> list[str]:
    """Everything that keeps ``suite`` from loading on privacy grounds."""
    problems = [] if verdicts.passed("authored-only", [suite.sha256, GATE_VERSION]) else \
        _consent_gate(suite)
    if not allow_unanonymized:
        problems += residual_pii(suite)
    return problems


def _consent_gate(suite: GatedSuite) -> list[str]:
    """The consents the items rely on, checked against the register (today: a consent
    may have expired since yesterday). A suite whose items are all authored relies on
    none, whatever the date: that is remembered per suite content, so a warm start-up
    does not read every item for it."""
    usage: dict[str, list[str]] = defaultdict(list)
    for consent_id, item_id in suite.consent_ids():
        usage[consent_id].append(item_id)
    if set(usage) <= {AUTHORED}:
        verdicts.remember_pass("authored-only", [suite.sha256, GATE_VERSION])
        return []
    problems = consent_problems(suite.path, usage)
    if suite.card.consent.basis != "consent_register":
        problems.append(f"{suite.path / 'CARD.md'}: consent: basis is "
                        f"'{suite.card.consent.basis}' but items rely on a consent register; "
                        "set basis: consent_register")
    return problems


def residual_pii(suite: GatedSuite) -> list[str]:
    """High-confidence personal data left in any string the suite ships: every key of
    every item (fields, references at any depth such as transcripts, translations and
    tool-call arguments, meta), and every line of the context files given to models.

    Each problem names the file, the item id (or line) and the dotted path of the string
    (``reference.calls[0].arguments.phone``), with the entity type, never the value.
    """
    # the verdict is looked up before the scanner is built: building Presidio's engine
    # (seconds of imports) would be most of a warm start-up otherwise
    verdict: JSONValue = [suite.sha256, policy_fingerprint(), GATE_VERSION]
    if verdicts.passed("pii-gate", verdict):
        return []
    with collector.resumed():  # seconds of scanning: not a start-up's few objects
        problems = _scan(suite)
    if not problems:
        verdicts.remember_pass("pii-gate", verdict)
    return problems


def _scan(suite: GatedSuite) -> list[str]:
    """The problems :func:`residual_pii` reports, found by the scanner."""
    scanner = default_scanner()
    allowed = set(suite.spec.pii_allowed)
    # Suites repeat strings a lot (a label per item, the same source text in every
    # translation direction): each distinct string is scanned once.
    seen: dict[str, list[Finding]] = {}

    def findings(text: str) -> list[Finding]:
        if text not in seen:
            seen[text] = [f for f in scanner.high_confidence(scanner.scan(text))
                          if f.entity not in allowed]
        return seen[text]

    problems = []
    for data, item in suite.iter_items():
        for path, text in _texts(item):
            for f in findings(text):
                problems.append(
                    f"{suite.path / data}: item {item['id']}: {path}: {f.entity} at "
                    f"characters {f.start}-{f.end} (score {f.score:.2f}); anonymize the file "
                    f"(`moroccan-eval anonymize apply {data} -o anonymized.jsonl --field "
                    f"{path}`) or remove the item")
    for rel, content in suite.text_files():
        for number, line in enumerate(content.splitlines(), start=1):
            for f in findings(line):
                kind = scanner.policy.placeholder_type(f.entity)
                problems.append(
                    f"{suite.path / rel}:{number}: {f.entity} at characters {f.start}-{f.end} "
                    f"(score {f.score:.2f}); replace it with a placeholder such as "
                    f"<{kind}_1> or remove it")
    return problems


def _texts(item: Any) -> Iterator[tuple[str, str]]:
    """Every string of an item with its path, and long integers as text too: a phone
    number or an account number may be stored as a JSON number."""
    yield from strings(item)
    yield from ((path, str(number)) for path, number in leaves(item)
                if isinstance(number, int) and not isinstance(number, bool)
                and len(str(abs(number))) >= 9)


