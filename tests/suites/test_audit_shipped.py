"""Every shipped suite passes its audit (``moroccan-eval suites audit``): no check fails
at the thresholds its card states. Warnings are allowed; they are printed in the card."""

from __future__ import annotations

import pytest

from moroccan_eval.suites.audit import audit_suite
from moroccan_eval.suites.loader import load_suite, suite_dirs


@pytest.mark.parametrize("name", sorted(suite_dirs()))
def test_shipped_suite_passes_its_audit(name: str) -> None:
    # the privacy gate has its own tests (test_loader): the audit only counts
    audit = audit_suite(load_suite(name, allow_unanonymized=True))
    failures = [line for line in audit["summary"]["problems"] if line.startswith("FAIL")]
    assert not failures, f"{name}: {len(failures)} check(s) fail:\n" + "\n".join(failures)
