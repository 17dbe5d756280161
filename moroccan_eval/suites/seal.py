"""Sealing a suite: the sha256 of every task and data file, stored in ``suite.yaml``.

A leaf module: the loader checks seals, and the consent tools reseal a suite after a
withdrawal, without either importing the other.
"""

from __future__ import annotations

from pathlib import Path

from ..io import load_yaml, sha256_file, write_atomic

#: The folders of a suite whose files are sealed.
SEALED_FOLDERS = ("tasks", "data")


def compute_checksums(root: Path) -> dict[str, str]:
    """sha256 of every task and data file of a suite (for ``suites checksum --write``)."""
    files = sorted(
        p for sub in SEALED_FOLDERS for p in (root / sub).rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in files}


def write_checksums(root: Path) -> dict[str, str]:
    """Reseal a suite after an intended edit: store the new checksums in suite.yaml."""
    import yaml

    sums = compute_checksums(root)
    spec = load_yaml(root / "suite.yaml", "suite.yaml")
    spec["checksums"] = sums
    write_atomic(root / "suite.yaml",
                 yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100))
    return sums
