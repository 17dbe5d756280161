"""Seed the leaderboard with real submissions made by the toolkit itself: every built-in
offline baseline on every suite holding a task it applies to, never a hand-written number.

Each task type names its offline baselines (``TaskType.baselines``: majority and char-ngram
for classification, retrieval for QA, rules for extraction, copy for translation,
tool-router for agent tasks), as the demo does. For each baseline model the script runs it
through the real runner on the test split of every selected suite (only the tasks it
applies to, whole test sets: no ``--limit``), then packages that model's runs as one
submission with the code of ``leaderboard submit``
(:func:`moroccan_eval.leaderboard.package.package`), which verifies them by rescoring before
writing ``<out>/baseline-<model>/``. Suites whose
task types have no offline baseline (ASR, prompt injection) get no seed row.

    python leaderboard/seed.py [--suite NAME ...] [--out leaderboard/submissions]
                               [--work DIR] [--replace] [--date YYYY-MM-DD]

Re-run it whenever a suite's data or version changes: a seed made against an older suite
version no longer validates. ``--replace`` first removes the seed submissions this script
wrote earlier (only folders whose ``submission.yaml`` names the organisation below);
without it an existing ``baseline-<model>`` folder is an error, never overwritten.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from moroccan_eval.adapters import load_model
from moroccan_eval.errors import MoroccanEvalError
from moroccan_eval.leaderboard.package import package
from moroccan_eval.leaderboard.submission import INFO, load_info
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite, suite_dirs
from moroccan_eval.version import __version__

#: The organisation of every seed row: how the script recognises its own submissions.
ORGANISATION = "moroccan-eval baselines"
NOTES = ("Offline baseline shipped with moroccan-eval {version} (adapter '{adapter}'), run "
         "by leaderboard/seed.py on the whole test split of each listed suite at its installed "
         "version. Not a language model: the floor a real model must beat. Numbers produced "
         "by the tool, never typed.")


def plan(suite_names: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """{baseline model: {suite: [its tasks]}}: each suite's tasks grouped by the offline
    baselines their task type names."""
    todo: dict[str, dict[str, list[str]]] = {}
    for name in suite_names:
        suite = load_suite(name)
        for task_name, task in suite.tasks.items():
            for model in task.task_type.baselines:
                todo.setdefault(model, {}).setdefault(name, []).append(task_name)
    return todo


def info_for(model: str, suites: Sequence[str], date: dt.date) -> dict[str, object]:
    """The submission.yaml of a seed row: honest about what the model is."""
    spec = load_model(model)
    return {
        "model": spec.name, "organisation": ORGANISATION,
        "parameters_b": 0,  # no neural parameters: a rule, a count or a small classifier
        "licence": "Apache-2.0",  # the toolkit's (the baselines are its code)
        "weights": "open", "adapter": spec.adapter, "hosting": "on-prem",
        "contact": "the moroccan-eval maintainers (see CONTRIBUTING.md)",
        "date": date.isoformat(), "suites": sorted(suites),
        "notes": NOTES.format(version=__version__, adapter=spec.adapter),
    }


def remove_seeds(out: Path) -> list[Path]:
    """Delete the seed submissions under ``out`` (their info names :data:`ORGANISATION`)."""
    removed = []
    for folder in sorted(out.glob("baseline-*")) if out.is_dir() else []:
        try:
            ours = load_info(folder / INFO).organisation == ORGANISATION
        except MoroccanEvalError:
            ours = False
        if ours and not folder.is_symlink():
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def seed(suite_names: Sequence[str], out: Path, work: Path, *, replace: bool = False,
         date: dt.date | None = None) -> list[Path]:
    """Run every applicable baseline on ``suite_names`` into ``work/runs`` and package one
    submission per baseline model into ``out``; returns the submission folders."""
    date = date or dt.date.today()
    todo = plan(suite_names)
    if not todo:
        raise MoroccanEvalError(f"no offline baseline applies to {', '.join(suite_names)}")
    targets = {model: out / f"baseline-{model}" for model in todo}
    taken = [str(p) for p in targets.values() if p.exists()]
    if taken and not replace:  # before running anything: fail fast, write nothing
        raise MoroccanEvalError(f"{', '.join(taken)} exist(s); pass --replace to rebuild "
                                "the seed submissions")
    runs: dict[str, list[Path]] = {}
    for model, suites in todo.items():  # every run first: a failure leaves the old seeds
        for name, tasks in suites.items():
            options = RunOptions(suite=load_suite(name), out_dir=work / "runs", tasks=tasks,
                                 progress=False)
            [result] = run(options, [load_model(model)])
            if result.status != "complete":
                raise MoroccanEvalError(f"{model} on {name}: run {result.status} "
                                        f"({result.path})")
            runs.setdefault(model, []).append(result.path)
    if replace:
        for folder in remove_seeds(out):
            print(f"removed {folder}")
    written = []
    for model, suites in todo.items():
        info = work / f"{model}.submission.yaml"
        info.write_text(yaml.safe_dump(info_for(model, list(suites), date), allow_unicode=True,
                                       sort_keys=False), encoding="utf-8")
        target = package(runs[model], info, out, targets[model].name)
        print(f"{model}: {len(runs[model])} suite(s) -> {target}")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", dest="suites",
                        help="suite name (repeatable) [default: every installed suite]")
    parser.add_argument("--out", type=Path, default=Path("leaderboard/submissions"))
    parser.add_argument("--work", type=Path,
                        help="folder keeping the runs [default: a temporary folder]")
    parser.add_argument("--replace", action="store_true",
                        help="remove this script's earlier seed submissions first")
    parser.add_argument("--date", type=dt.date.fromisoformat,
                        help="submission date [default: today]")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="seed-") as tmp:
            work = args.work or Path(tmp)
            seed(args.suites or list(suite_dirs()), args.out, work, replace=args.replace,
                 date=args.date)
    except MoroccanEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
