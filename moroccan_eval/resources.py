"""Where the shipped data folders (suites, models, report templates ...) live.

In a wheel they are force-included under ``moroccan_eval/_data``; in a source checkout
(editable install, tests) they sit at the repository root next to the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_root() -> Path:
    """The folder holding ``suites/``, ``models/``, ``reports/``, ``anonymize/``."""
    bundled = _PACKAGE_DIR / "_data"
    return bundled if bundled.is_dir() else _PACKAGE_DIR.parent


def shipped(*parts: str) -> Path:
    """Path of a shipped resource, e.g. ``shipped("suites", "varieties.yaml")``."""
    return data_root().joinpath(*parts)
