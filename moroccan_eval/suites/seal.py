"""Sealing a suite: the sha256 of every task and data file, stored in ``suite.yaml``; and
confinement: every file a suite names lies inside its folder.

A leaf module: the loader checks seals, and the consent tools reseal a suite after a
withdrawal, without either importing the other.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, SuiteError
from ..io import load_yaml, sha256_file, write_atomic

#: The folders of a suite whose files are sealed.
SEALED_FOLDERS = ("tasks", "data")

#: Fields of a task file that name a file of the suite.
TASK_FILE_FIELDS = ("data", "context_file")


def escape_problem(root: Path, rel: str) -> str | None:
    """Why ``rel`` (a path a suite names, relative to its folder ``root``) is not a file
    inside the suite, or ``None`` when it is.

    The path is resolved, symlinks followed, before the comparison: ``../..``, an absolute
    path or a symlink pointing outside would otherwise let a suite put any file the user
    can read (keys, other people's data) into prompts and reports.
    """
    try:
        target = (root / rel).resolve()
        inside = target.is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):  # symlink loop, NUL byte in the path
        return f"'{rel}' cannot be resolved inside the suite"
    if not inside:
        return (f"'{rel}' leads outside the suite (to {target}); a suite may only name "
                "files inside its own folder (no '..', absolute paths or symlinks that "
                "point out)")
    return None


def confined(root: Path, rel: str, where: str) -> Path:
    """``root / rel`` when it is inside the suite; otherwise a :class:`SuiteError` naming
    ``where`` (the file and field that gave the path)."""
    if problem := escape_problem(root, rel):
        raise SuiteError(f"{where}: {problem}")
    return root / rel


def compute_checksums(root: Path) -> dict[str, str]:
    """sha256 of every task and data file of a suite (for ``suites checksum --write``).

    Refuses (:class:`SuiteError`, every problem at once) a suite whose sealed files, or
    the files its task files name, lead outside the suite: sealing one would make the
    loader's checksum error recommend trusting it.
    """
    problems = [f"{root / sub}: {p}" for sub in SEALED_FOLDERS
                if (root / sub).exists() and (p := escape_problem(root, sub))]
    if problems:
        raise SuiteError(f"suite {root} cannot be sealed", problems)
    files = sorted(
        p for sub in SEALED_FOLDERS for p in (root / sub).rglob("*")
        if (p.is_file() or p.is_symlink()) and not p.name.startswith(".")
    )
    rels = [p.relative_to(root).as_posix() for p in files]
    problems = [f"{root / rel}: {p}" for rel in rels if (p := escape_problem(root, rel))]
    problems += _task_file_problems(root)
    if problems:
        raise SuiteError(f"suite {root} cannot be sealed", problems)
    return {rel: sha256_file(root / rel) for rel, p in zip(rels, files, strict=True)
            if p.is_file()}


def _task_file_problems(root: Path) -> list[str]:
    """Files named by the task files that lead outside the suite."""
    problems = []
    for task in sorted((root / "tasks").glob("*.yaml")):
        try:
            spec = load_yaml(task, "task file")
        except ConfigError:  # an unreadable task file is the loader's to report
            continue
        if not isinstance(spec, dict):
            continue
        for key in TASK_FILE_FIELDS:
            value = spec.get(key)
            if isinstance(value, str) and (p := escape_problem(root, value)):
                problems.append(f"{task}: {key}: {p}")
    return problems


def write_checksums(root: Path) -> dict[str, str]:
    """Reseal a suite after an intended edit: store the new checksums in suite.yaml."""
    import yaml

    sums = compute_checksums(root)
    spec = load_yaml(root / "suite.yaml", "suite.yaml")
    spec["checksums"] = sums
    write_atomic(root / "suite.yaml",
                 yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100))
    return sums
