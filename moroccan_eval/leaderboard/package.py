"""``leaderboard submit``: package finished runs of one model as a submission folder,
refusing runs the board cannot rank, checked as ``leaderboard validate`` will check them."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from ..errors import MoroccanEvalError, RunError
from ..runs.rundir import Run, load_run
from .submission import (
    INFO,
    RUN_FILES,
    RUNS,
    SubmissionInfo,
    load_info,
    run_problems,
    submission_id,
    write_checksums,
)
from .validate import verify_problems


def package(run_dirs: Sequence[Path], info_path: Path, out: Path,
            ident: str | None = None) -> Path:
    """Copy finished runs and their ``submission.yaml`` into ``out/<id>/`` with
    ``SHA256SUMS``; refuses runs that are unfinished, limited, perturbed, unanonymized,
    of different models, or that do not verify against the suites installed here."""
    info = load_info(info_path)
    runs = [load_run(path) for path in run_dirs]
    problems = [p for run in runs for p in run_problems(run)]
    models = sorted({run.manifest.model.cache_hash[:8] + " " + run.model for run in runs})
    if len(models) > 1:
        problems.append(f"runs of {len(models)} different models ({', '.join(models)}); "
                        "one submission is one model")
    suites = sorted({run.manifest.suite.name for run in runs})
    if info.suites and sorted(info.suites) != suites:
        problems.append(f"{INFO} lists suites {sorted(info.suites)}, the runs hold {suites}")
    if len({run.path.name for run in runs}) < len(runs):
        problems.append("two runs have the same directory name")
    if problems:
        raise RunError("these runs cannot be submitted", problems)
    problems = verify_problems(runs)
    if problems:
        raise RunError("these runs do not verify", problems)
    target = out / (ident or submission_id(info))
    if target.exists():
        raise MoroccanEvalError(f"{target} exists; remove it or pass another --id")
    _write_package(target, info, runs)
    return target


def _write_package(target: Path, info: SubmissionInfo, runs: Sequence[Run]) -> None:
    """Write into a temporary folder beside ``target``, then rename: never half-written."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    except OSError as exc:
        raise MoroccanEvalError(f"cannot write {target}: {exc.strerror}") from None
    try:
        data = info.model_dump(mode="json", exclude_none=True)
        (staging / INFO).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                    encoding="utf-8")
        for run in runs:
            folder = staging / RUNS / run.path.name
            folder.mkdir(parents=True)
            for name in RUN_FILES:
                shutil.copyfile(run.path / name, folder / name)
        write_checksums(staging)
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise MoroccanEvalError(f"cannot write {target}: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
