"""A leaderboard submission: ``submission.yaml`` (who and what), the run directories made
by ``moroccan-eval run``, and ``SHA256SUMS`` over every file (``sha256sum -c`` reads it).

``<submissions>/<submission-id>/``
  ``submission.yaml``
  ``SHA256SUMS``
  ``runs/<run-id>/manifest.json``, ``predictions.jsonl``, ``scores.json``

:func:`moroccan_eval.leaderboard.package.package` builds one from finished runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import ConfigError
from ..io import load_model_yaml, sha256_file
from ..runs.rundir import MANIFEST, PREDICTIONS, SCORES, Run

INFO = "submission.yaml"
CHECKSUMS = "SHA256SUMS"
RUNS = "runs"
RUN_FILES = (MANIFEST, PREDICTIONS, SCORES)

#: What a submission may weigh: a board is cloned by everyone who reviews it.
MAX_FILE_BYTES = {INFO: 64 * 1024, CHECKSUMS: 64 * 1024, MANIFEST: 256 * 1024,
                  SCORES: 4 * 1024 * 1024, PREDICTIONS: 64 * 1024 * 1024}
MAX_SUBMISSION_BYTES = 256 * 1024 * 1024
MAX_RUNS = 64

# Markup, script URLs and characters that reorder or hide text: free text on the board is
# escaped when rendered anyway, but a submission carrying them is refused outright.
_MARKUP = re.compile(r"<\s*[A-Za-z/!?]|javascript:|data:text/html", re.IGNORECASE)
_HIDDEN = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f"
                     "\u202a-\u202e\u2066-\u2069\ufeff]")
_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")


def inert_problem(value: str) -> str | None:
    """Why a free-text value cannot be shown on the board, or ``None``."""
    if _MARKUP.search(value):
        return "contains markup or a script URL (plain text only)"
    if _HIDDEN.search(value):
        return "contains control, zero-width or bidirectional-override characters"
    return None


def _plain(value: str) -> str:
    problem = inert_problem(value)
    if problem:
        raise ValueError(problem)
    return value.strip()


class SubmissionInfo(BaseModel):
    """``submission.yaml``: the model card of a leaderboard row."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=120, description="model name shown on the board")
    organisation: str = Field(min_length=1, max_length=120)
    parameters_b: float | None = Field(default=None, ge=0, le=10_000,
                                       description="parameters in billions (None: undisclosed)")
    licence: str = Field(min_length=1, max_length=80, description="the model's licence")
    weights: Literal["open", "closed"]
    adapter: str = Field(min_length=1, max_length=80,
                         description="how it was run (openai_compat, llamacpp ...)")
    hosting: Literal["on-prem", "api"] = Field(description="deployment: on-prem or API")
    quantisation: str | None = Field(default=None, max_length=40)
    contact: str = Field(min_length=3, max_length=200, description="an e-mail or a URL")
    date: dt.date
    link: str | None = Field(default=None, max_length=300, description="paper or model page")
    suites: list[str] = Field(default_factory=list, max_length=64,
                              description="suites submitted (default: those of the runs)")
    notes: str = Field(default="", max_length=2000)

    @field_validator("model", "organisation", "licence", "adapter", "quantisation", "contact",
                     "notes")
    @classmethod
    def _inert(cls, value: str | None) -> str | None:
        return None if value is None else _plain(value)

    @field_validator("link")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = _plain(value)
        if not re.fullmatch(r"https?://[^\s\"'<>]+", value):
            raise ValueError("must be an http(s):// URL")
        return value

    @field_validator("suites")
    @classmethod
    def _suite_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _SLUG.fullmatch(name):
                raise ValueError(f"'{name}' is not a suite name")
        return value


def load_info(path: Path) -> SubmissionInfo:
    """Read and validate ``submission.yaml``, every problem at once."""
    return load_model_yaml(SubmissionInfo, path, INFO)


def submission_id(info: SubmissionInfo) -> str:
    """``<organisation>-<model>-<date>`` as a folder name."""
    text = f"{info.organisation}-{info.model}-{info.date.isoformat()}".lower()
    return re.sub(r"[^a-z0-9.]+", "-", text).strip("-.")[:80]


def run_problems(run: Run) -> list[str]:
    """Why a finished run cannot be ranked (it may still be a fine private run)."""
    manifest, selection = run.manifest, run.manifest.selection
    problems = []
    if manifest.status != "complete":
        problems.append(f"status is '{manifest.status}', not 'complete'")
    if selection.limit is not None:
        problems.append(f"made with --limit {selection.limit}: the board ranks whole test sets")
    if selection.varieties:
        problems.append("made with --variety: the board ranks every variety")
    if selection.shard:
        problems.append(f"shard {selection.shard} of a sharded run: join the shards first "
                        "with `moroccan-eval merge`")
    if selection.split != "test":
        problems.append(f"split '{selection.split}', not 'test'")
    if selection.perturb:
        problems.append(f"perturbed with --perturb {selection.perturb}")
    if manifest.allow_unanonymized:
        problems.append("made with --allow-unanonymized")
    if problem := inert_problem(run.model):
        problems.append(f"model name {problem}")
    return [f"{run.path.name}: {p}" for p in problems]


def payload_files(root: Path) -> Iterator[Path]:
    """Every file of a submission but ``SHA256SUMS``, relative, in a stable order."""
    yield Path(INFO)
    for run in sorted((root / RUNS).iterdir()):
        for name in RUN_FILES:
            yield Path(RUNS) / run.name / name


def write_checksums(root: Path) -> None:
    lines = [f"{sha256_file(root / rel)}  {rel.as_posix()}\n" for rel in payload_files(root)]
    (root / CHECKSUMS).write_text("".join(lines), encoding="utf-8")


def read_checksums(root: Path) -> dict[str, str]:
    """``SHA256SUMS`` as {relative path: sha256}; a malformed line is a ConfigError."""
    found: dict[str, str] = {}
    for number, line in enumerate((root / CHECKSUMS).read_text(encoding="utf-8").splitlines(), 1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](\S.*)", line)
        if match is None:
            raise ConfigError(f"{root / CHECKSUMS}:{number}: not '<sha256>  <path>'")
        found[match[2]] = match[1]
    return found


def digest(root: Path) -> str:
    """One hash naming a submission's exact content (its ``SHA256SUMS``)."""
    return hashlib.sha256((root / CHECKSUMS).read_bytes()).hexdigest()
