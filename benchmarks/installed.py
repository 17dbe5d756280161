"""Benchmarks time the toolkit as an installed package runs: with its modules' bytecode
compiled, as ``pip install`` leaves it (and as Python's first import does, unless
``PYTHONDONTWRITEBYTECODE`` is set, as it is on some machines, this one included: there,
every timed command would compile the toolkit's sources again, about 60 ms)."""

from __future__ import annotations

import compileall
from pathlib import Path

import moroccan_eval


def compile_toolkit() -> None:
    """Write the bytecode of every toolkit module (a no-op when it is up to date)."""
    compileall.compile_dir(Path(moroccan_eval.__file__).parent, quiet=1)
