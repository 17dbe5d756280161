"""Remembered verdicts: a check that passed on some exact input is not run again.

A verdict is an empty marker file named by a hash of everything the check depends on
(file hashes, policy, the checking code, the variety registry) in the cache folder, beside
the response cache. Only passes are remembered, so a failing input is re-checked (and its
problems reported) every time; any change to what the key covers means a new key, a miss
and a fresh check. A read-only or missing cache folder only costs a re-check.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from .cache import default_cache_dir
from .io import JSONValue, sha256_json


def marker(kind: str, key: JSONValue) -> Path:
    """The marker file of a verdict of ``kind`` on ``key``."""
    return default_cache_dir() / "verdicts" / kind / f"{sha256_json(key)[:40]}.ok"


def passed(kind: str, key: JSONValue) -> bool:
    """Whether this exact check passed before."""
    return marker(kind, key).is_file()


def remember_pass(kind: str, key: JSONValue) -> None:
    """Record that the check passed on ``key``."""
    path = marker(kind, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass  # a read-only cache only costs a re-check next time


@cache
def code_fingerprint(*sources: str | Path) -> str:
    """A hash of Python source: folders or files, relative to the moroccan_eval package or
    absolute (a plugin's module). Editing a check, even without a version bump,
    invalidates what it passed."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for source in sources:
        path = root / source
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.as_posix().encode())
            digest.update(file.read_bytes() if file.is_file() else b"")
    return digest.hexdigest()
