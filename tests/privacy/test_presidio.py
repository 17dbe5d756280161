"""Presidio is imported without torch and transformers, which it imports only because the
``hf`` extra installed them (they took four of the scanner's five seconds to build)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("transformers")  # what is checked: that an installed one is left alone

SCRIPT = """
import json, sys
from moroccan_eval.privacy.anonymizer import Anonymizer
from moroccan_eval.privacy.scanner import Scanner
scanner = Scanner()
found = [f.entity for f in scanner.scan("Call me at 0612345678 or ali@example.com")]
anonymized, _ = Anonymizer(scanner).record({"text": "Call me at 0612345678"})
imported = sorted(name for name in ("torch", "transformers") if name in sys.modules)
import torch, transformers  # still importable afterwards, for the hf adapters
print(json.dumps({"found": found, "anonymized": anonymized, "imported": imported,
                  "torch": torch.__name__, "transformers": transformers.__name__}))
"""


def test_the_scanner_and_the_anonymizer_are_built_without_torch_or_transformers() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "found": ["MA_PHONE", "EMAIL"], "anonymized": {"text": "Call me at <PHONE_1>"},
        "imported": [], "torch": "torch", "transformers": "transformers"}


def test_a_library_imported_before_stays_as_it_is() -> None:
    script = """
import sys, torch
from moroccan_eval.privacy.presidio import importing_presidio
with importing_presidio():
    import torch as inside
print(inside is torch and sys.modules["torch"] is torch and "transformers" not in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
