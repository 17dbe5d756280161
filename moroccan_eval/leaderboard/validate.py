"""Validating submissions: what a pull-request check runs before a row reaches the board.

Per submission, in order (a later check is not run when an earlier one makes reading
unsafe):

- **layout**: only the expected files, no symlink, no other name, each file and the whole
  under its size cap;
- **checksums**: ``SHA256SUMS`` lists exactly those files and each matches;
- **info**: ``submission.yaml`` against its schema, free text plain (no markup, no hidden
  or reordering characters);
- **runs**: each run finished, whole test split, not limited, not perturbed, anonymized,
  one model, the suites the info names;
- **verify**: :func:`moroccan_eval.verify.verify_run` on each run against the suites
  installed here: one record per item, every score, interval, latency and cost recomputed
  from raw outputs, signatures, suite version and checksums, prompts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MoroccanEvalError
from ..io import sha256_file, write_json
from ..runs.rundir import Run, load_run
from ..suites.loader import Suite, load_suite
from ..verify import Check, Expectations, summarize_problems, verify_run
from ..version import __version__
from .submission import (
    CHECKSUMS,
    INFO,
    MAX_FILE_BYTES,
    MAX_RUNS,
    MAX_SUBMISSION_BYTES,
    RUN_FILES,
    RUNS,
    SubmissionInfo,
    digest,
    load_info,
    payload_files,
    read_checksums,
    run_problems,
)


@dataclass
class SubmissionReport:
    """The verdict on one submission."""

    path: Path
    checks: list[Check] = field(default_factory=list)
    info: SubmissionInfo | None = None
    runs: list[Run] = field(default_factory=list)

    @property
    def ident(self) -> str:
        return self.path.name

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {"submission": self.ident, "path": str(self.path), "ok": self.ok,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                           for c in self.checks]}


class VerdictCache:
    """Verify verdicts of submissions already checked, by exact content: a submission whose
    ``SHA256SUMS`` (re-checked against its files every time), toolkit version and installed
    suites are unchanged is not rescored again. A board of a thousand submissions is then
    rebuilt in seconds; only new or changed submissions cost a full rescoring."""

    def __init__(self, directory: Path | None = None):
        from ..cache import default_cache_dir

        self.directory = directory or default_cache_dir() / "leaderboard-verdicts"

    def _path(self, root: Path) -> Path:
        key = hashlib.sha256(f"{__version__}|{digest(root)}".encode()).hexdigest()
        return self.directory / f"{key}.json"

    @staticmethod
    def _suites(runs: Sequence[Run], suites: SuiteCache) -> dict[str, str | None]:
        return {run.manifest.suite.name: suites.sha256(run.manifest.suite.name) for run in runs}

    def read(self, root: Path) -> dict[str, object]:
        """What was recorded for this exact content (empty when nothing usable)."""
        try:
            data = json.loads(self._path(root).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def info(self, record: dict[str, object]) -> SubmissionInfo | None:
        """The ``submission.yaml`` recorded with the verdict, validated again (parsing YAML
        costs more than everything else of an unchanged submission)."""
        try:
            return SubmissionInfo.model_validate(record["info"]) if "info" in record else None
        except ValueError:  # pydantic's ValidationError: read the file instead
            return None

    def get(self, root: Path, runs: Sequence[Run], suites: SuiteCache,
            record: dict[str, object] | None = None) -> list[str] | None:
        """The problems found last time, or ``None`` when there is no usable verdict."""
        data = self.read(root) if record is None else record
        if data.get("suites") != self._suites(runs, suites):
            return None
        problems = data.get("problems")
        return [str(p) for p in problems] if isinstance(problems, list) else None

    def put(self, root: Path, runs: Sequence[Run], suites: SuiteCache,
            problems: list[str], info: SubmissionInfo | None = None) -> None:
        record: dict[str, object] = {"suites": self._suites(runs, suites),
                                     "problems": problems}
        if info is not None:
            record["info"] = info.model_dump(mode="json")
        with contextlib.suppress(MoroccanEvalError):  # a read-only cache only costs speed
            write_json(self._path(root), record)


class SuiteCache:
    """Installed suites loaded once per validation session (loading runs the privacy
    gate); a suite that cannot be loaded is remembered with its reason."""

    def __init__(self) -> None:
        self._loaded: dict[str, Suite | str] = {}
        self._hashes: dict[str, str | None] = {}
        self.expectations = Expectations()

    def sha256(self, name: str) -> str | None:
        """The installed suite's content hash, from its sealed ``suite.yaml`` only (no item
        is read): enough to tell whether a cached verdict still applies."""
        if name not in self._hashes:
            loaded = self._loaded.get(name)
            if isinstance(loaded, Suite):
                self._hashes[name] = loaded.sha256
            else:
                try:
                    self._hashes[name] = load_suite(name, load_data=False).sha256
                except MoroccanEvalError:
                    self._hashes[name] = None
        return self._hashes[name]

    def get(self, name: str) -> Suite | str:
        if name not in self._loaded:
            try:
                self._loaded[name] = load_suite(name)
            except MoroccanEvalError as exc:
                self._loaded[name] = str(exc).splitlines()[0]
        return self._loaded[name]


def _check(name: str, problems: Sequence[str], ok_detail: str) -> Check:
    return Check(name, not problems, summarize_problems(problems) if problems else ok_detail)


def layout_problems(root: Path) -> list[str]:
    """Files that should not be there, symlinks, and sizes over the caps."""
    if root.is_symlink() or not root.is_dir():
        return [f"{root.name}: not a folder"]
    allowed = {INFO, CHECKSUMS}
    problems, total, runs = [], 0, 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder).relative_to(root)
        for name in sorted(dirs + files):
            rel = here / name
            info = (Path(folder) / name).lstat()
            if stat.S_ISLNK(info.st_mode):
                problems.append(f"{rel}: a symlink (submissions hold plain files only)")
            elif stat.S_ISDIR(info.st_mode):
                depth_ok = rel.parts[0] == RUNS and len(rel.parts) <= 2
                if not depth_ok:
                    problems.append(f"{rel}/: unexpected folder (only {RUNS}/<run-id>/)")
                elif len(rel.parts) == 2:
                    runs += 1
            elif not stat.S_ISREG(info.st_mode):
                problems.append(f"{rel}: not a regular file")
            else:
                expected = (len(rel.parts) == 1 and name in allowed) or (
                    len(rel.parts) == 3 and rel.parts[0] == RUNS and name in RUN_FILES)
                if not expected:
                    problems.append(f"{rel}: unexpected file")
                elif info.st_size > MAX_FILE_BYTES[name]:
                    problems.append(f"{rel}: {info.st_size:,} bytes, over the "
                                    f"{MAX_FILE_BYTES[name]:,}-byte cap")
                total += info.st_size
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
    if total > MAX_SUBMISSION_BYTES:
        problems.append(f"{total:,} bytes in all, over the {MAX_SUBMISSION_BYTES:,}-byte cap")
    if runs > MAX_RUNS:
        problems.append(f"{runs} runs, over the cap of {MAX_RUNS}")
    for name in (INFO, CHECKSUMS):
        if not (root / name).is_file():
            problems.append(f"{name} is missing")
    if not (root / RUNS).is_dir() or runs == 0:
        problems.append(f"no run under {RUNS}/")
    return problems


def checksum_problems(root: Path) -> list[str]:
    listed = read_checksums(root)
    present = {rel.as_posix() for rel in payload_files(root)}
    problems = [f"{rel}: not in {CHECKSUMS}" for rel in sorted(present - set(listed))]
    problems += [f"{rel}: listed in {CHECKSUMS} but absent"
                 for rel in sorted(set(listed) - present)]
    problems += [f"{rel}: sha256 does not match {CHECKSUMS}"
                 for rel in sorted(present & set(listed))
                 if sha256_file(root / rel) != listed[rel]]
    return problems


def verify_problems(runs: Iterable[Run], suites: SuiteCache | None = None) -> list[str]:
    """Every failed :func:`verify_run` check of the runs, against installed suites."""
    suites = suites or SuiteCache()
    problems = []
    for run in runs:
        suite = suites.get(run.manifest.suite.name)
        if isinstance(suite, str):
            problems.append(f"{run.path.name}: suite '{run.manifest.suite.name}' is not "
                            f"installed here ({suite})")
            continue
        try:
            checks = verify_run(run, suite_ref=suite, expectations=suites.expectations).checks
        except MoroccanEvalError as exc:  # a file verify cannot read: this run fails
            reason = str(exc).replace(f"{run.path}{os.sep}", "").replace("\n", " ")
            problems.append(f"{run.path.name}: {reason}")
            continue
        problems += [f"{run.path.name}: {check.name}: {check.detail}"
                     for check in checks if not check.ok]
    return problems


def _runs(root: Path, info: SubmissionInfo | None) -> tuple[list[Run], list[str]]:
    runs, problems = [], []
    for folder in sorted((root / RUNS).iterdir()):
        try:
            runs.append(load_run(folder))
        except MoroccanEvalError as exc:
            problems.append(str(exc).replace("\n", " "))
    problems += [p for run in runs for p in run_problems(run)]
    if len({run.manifest.model.cache_hash for run in runs}) > 1:
        problems.append("runs of different models; one submission is one model")
    suites = sorted({run.manifest.suite.name for run in runs})
    if info is not None and info.suites and sorted(info.suites) != suites:
        problems.append(f"{INFO} lists suites {sorted(info.suites)}, the runs hold {suites}")
    return runs, problems


def validate_submission(root: Path, suites: SuiteCache | None = None,
                        verdicts: VerdictCache | None = None) -> SubmissionReport:
    """Every check of one submission folder (see the module docstring). With ``verdicts``,
    the verify step of an unchanged submission is read from the cache."""
    suites = suites or SuiteCache()
    report = SubmissionReport(root)
    layout = layout_problems(root)
    report.checks.append(_check("layout", layout, "plain files only, within the size caps"))
    if layout:
        return report
    try:
        checksums = checksum_problems(root)
    except MoroccanEvalError as exc:
        checksums = [str(exc)]
    report.checks.append(_check("checksums", checksums, f"every file matches {CHECKSUMS}"))
    if checksums:
        return report
    # The checksums matched: a verdict recorded for this exact content still applies.
    record = verdicts.read(root) if verdicts else {}
    try:
        report.info = (verdicts.info(record) if verdicts else None) or load_info(root / INFO)
        info_problems: list[str] = []
    except MoroccanEvalError as exc:
        info_problems = [str(exc).replace("\n", " ")]
    report.checks.append(_check("info", info_problems, f"{INFO} is valid plain text"))
    report.runs, problems = _runs(root, report.info)
    report.checks.append(_check("runs", problems, f"{len(report.runs)} finished whole-test-set "
                                "run(s) of one model"))
    if problems:
        return report
    verified = verdicts.get(root, report.runs, suites, record) if verdicts else None
    if verified is None:
        verified = verify_problems(report.runs, suites)
        if verdicts is not None:
            verdicts.put(root, report.runs, suites, verified, report.info)
    report.checks.append(_check("verify", verified, "every run verifies: one record per item; "
                                "scores, latency and cost recomputed from raw outputs; "
                                "signatures, suite and prompts match"))
    return report


_WORKER: tuple[SuiteCache, VerdictCache | None] | None = None


def _start_worker(verdicts: VerdictCache | None) -> None:
    global _WORKER
    _WORKER = (SuiteCache(), verdicts)


def _validate_in_worker(root: Path) -> SubmissionReport:
    assert _WORKER is not None, "worker not initialised"
    return validate_submission(root, *_WORKER)


def validate_all(roots: Sequence[Path], verdicts: VerdictCache | None = None,
                 jobs: int | None = None) -> list[SubmissionReport]:
    """:func:`validate_submission` on every root, in ``jobs`` processes (default: one per
    CPU); each process loads each suite once. Reports come back in the order of ``roots``."""
    jobs = min(jobs or os.cpu_count() or 1, len(roots))
    if jobs <= 1:
        suites = SuiteCache()
        return [validate_submission(root, suites, verdicts) for root in roots]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork: workers start at once, without re-importing the toolkit; nothing heavy (no
    # suite, no thread) has been loaded in this process yet.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                             initargs=(verdicts,)) as pool:
        return list(pool.map(_validate_in_worker, roots,
                             chunksize=max(1, len(roots) // (jobs * 4))))


def submission_dirs(paths: Iterable[Path]) -> list[Path]:
    """Submission folders among ``paths`` (a submission, or a folder of submissions)."""
    found: list[Path] = []
    for path in paths:
        if (path / INFO).exists() or (path / CHECKSUMS).exists() or (path / RUNS).exists():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir() if not p.name.startswith("."))
        else:
            raise MoroccanEvalError(f"{path}: no such submission or folder of submissions")
    return found
