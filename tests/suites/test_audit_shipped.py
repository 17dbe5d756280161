"""Every shipped suite passes its audit (``moroccan-eval suites audit``): no check fails
at the thresholds its card states, and the card states them (``--update-card``).
Warnings are allowed; the card prints them."""

from __future__ import annotations

import pytest

from moroccan_eval.suites.audit import AUDIT_BEGIN, audit_suite, thresholds_line, thresholds_of
from moroccan_eval.suites.loader import load_suite, suite_dirs


@pytest.mark.parametrize("name", sorted(suite_dirs()))
def test_shipped_suite_passes_its_audit(name: str) -> None:
    # the privacy gate has its own tests (test_loader): the audit only counts
    suite = load_suite(name, allow_unanonymized=True)
    audit = audit_suite(suite)
    failures = [line for line in audit["summary"]["problems"] if line.startswith("FAIL")]
    assert not failures, f"{name}: {len(failures)} check(s) fail:\n" + "\n".join(failures)
    card = (suite.path / "CARD.md").read_text(encoding="utf-8")
    assert AUDIT_BEGIN in card and thresholds_line(thresholds_of(suite)) in card, (
        f"{name}: the card must state its audit thresholds and figures: run "
        f"moroccan-eval suites audit {name} --update-card")
    assert f"**Status: {audit['summary']['status']}**" in card, (
        f"{name}: the card's audit is stale: run moroccan-eval suites audit {name} --update-card")
