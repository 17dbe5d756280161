"""Seed the leaderboard with real submissions made by the toolkit itself: every built-in
offline baseline on every suite holding a task it applies to, and real models given with
``--model`` (the local Gemma 3 270M of the ``local`` extra); never a hand-written number.

Each task type names its offline baselines (``TaskType.baselines``: majority and char-ngram
for classification, retrieval for QA, rules for extraction, copy for translation,
tool-router for agent tasks), as the demo does. For each baseline model the script runs it
through the real runner on the test split of every selected suite (only the tasks it
applies to, whole test sets: no ``--limit``), then packages that model's runs as one
submission with the code of ``leaderboard submit``
(:func:`moroccan_eval.leaderboard.package.package`), which verifies them by rescoring before
writing ``<out>/baseline-<model>/``. Suites whose
task types have no offline baseline (ASR, prompt injection) get no seed row.

A real model (``--model M.yaml``, repeatable) runs every task of the suites named by
``--suite`` (required with it: a small local model takes minutes per suite) and becomes
``<out>/seed-<model name>/``; its ``submission.yaml`` takes the model card from the YAML's
``info:`` block (``licence`` and ``weights`` required; ``parameters_b``, ``quantisation``,
``link``, ``vendor``, ``notes``; ``deployment: api`` means hosted). ``--no-baselines`` seeds
only the real models.

    python leaderboard/seed.py [--suite NAME ...] [--model M.yaml ...] [--no-baselines]
                               [--out leaderboard/submissions] [--work DIR] [--replace]
                               [--date YYYY-MM-DD]

Re-run it whenever a suite's data or version changes: a seed made against an older suite
version no longer validates. ``--replace`` first removes the seed submissions of the kind
it rebuilds (every baseline row; each real model's own row) that this script wrote earlier
(only folders whose ``submission.yaml`` names one of the organisations below); without it
an existing target folder is an error, never overwritten.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from moroccan_eval.adapters import load_model
from moroccan_eval.adapters.base import ModelSpec
from moroccan_eval.errors import MoroccanEvalError
from moroccan_eval.io import validate
from moroccan_eval.leaderboard.package import package
from moroccan_eval.leaderboard.submission import INFO, SubmissionInfo, load_info
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite, suite_dirs
from moroccan_eval.version import __version__

#: The organisation of the seed rows: how the script recognises its own submissions.
ORGANISATION = "moroccan-eval baselines"
MODEL_ORGANISATION = "moroccan-eval seed runs"
NOTES = ("Offline baseline shipped with moroccan-eval {version} (adapter '{adapter}'), run "
         "by leaderboard/seed.py on the whole test split of each listed suite at its installed "
         "version. Not a language model: the floor a real model must beat. Numbers produced "
         "by the tool, never typed.")
MODEL_NOTES = ("{about}Run by leaderboard/seed.py with moroccan-eval {version} (adapter "
               "'{adapter}') on the whole test split of each listed suite at its installed "
               "version. Numbers produced by the tool, never typed.")


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


def model_info_for(spec: ModelSpec, suites: Sequence[str], date: dt.date
                   ) -> dict[str, object]:
    """The submission.yaml of a real model's seed row, from its YAML's ``info:`` block."""
    card = spec.info
    about = " ".join(f"{text.rstrip('.')}." for text in (card.vendor, card.notes) if text)
    info = {
        "model": spec.name, "organisation": MODEL_ORGANISATION,
        "parameters_b": card.parameters_b, "licence": card.licence, "weights": card.weights,
        "adapter": spec.adapter, "hosting": "api" if card.deployment == "api" else "on-prem",
        "quantisation": card.quantisation,
        "contact": "the moroccan-eval maintainers (see CONTRIBUTING.md)",
        "date": date.isoformat(), "link": card.link, "suites": sorted(suites),
        "notes": MODEL_NOTES.format(about=f"{about} " if about else "", version=__version__,
                                    adapter=spec.adapter),
    }
    return {key: value for key, value in info.items() if value is not None}


def model_folder(spec: ModelSpec) -> str:
    """``seed-<model name>``, the name made a folder name."""
    return "seed-" + (re.sub(r"[^a-z0-9.]+", "-", spec.name.lower()).strip("-.") or "model")


def _ours(folder: Path) -> bool:
    try:
        organisation = load_info(folder / INFO).organisation
    except MoroccanEvalError:
        return False
    return organisation in (ORGANISATION, MODEL_ORGANISATION) and not folder.is_symlink()


def remove_seeds(out: Path, folders: Sequence[Path] | None = None) -> list[Path]:
    """Delete the baseline seed submissions under ``out`` (or, given ``folders``, those of
    them) that this script wrote (their info names one of its organisations)."""
    candidates = (folders if folders is not None
                  else sorted(out.glob("baseline-*")) if out.is_dir() else [])
    removed = [folder for folder in candidates if folder.is_dir() and _ours(folder)]
    for folder in removed:
        shutil.rmtree(folder)
    return removed


def seed(suite_names: Sequence[str], out: Path, work: Path, *, replace: bool = False,
         date: dt.date | None = None, models: Sequence[Path] = (),
         baselines: bool = True) -> list[Path]:
    """Run every applicable baseline on ``suite_names`` (unless ``baselines`` is false) and
    every real model of ``models`` on all their tasks into ``work/runs``, and package one
    submission per model into ``out``; returns the submission folders."""
    date = date or dt.date.today()
    todo = plan(suite_names) if baselines else {}
    if baselines and not todo:
        raise MoroccanEvalError(f"no offline baseline applies to {', '.join(suite_names)}")
    specs = {str(model): load_model(str(model)) for model in models}
    for model, spec in specs.items():  # a card the board would refuse fails before any run
        validate(SubmissionInfo, model_info_for(spec, suite_names, date),
                 f"{model}: the {INFO} made from its info: block (licence and weights are "
                 "required)")
        todo[model] = {name: list(load_suite(name).tasks) for name in suite_names}
    targets = {model: out / (model_folder(specs[model]) if model in specs
                             else f"baseline-{model}") for model in todo}
    taken = [str(p) for p in targets.values() if p.exists()]
    if taken and not replace:  # before running anything: fail fast, write nothing
        raise MoroccanEvalError(f"{', '.join(taken)} exist(s); pass --replace to rebuild "
                                "the seed submissions")
    runs: dict[str, list[Path]] = {}
    for model, suites in todo.items():  # every run first: a failure leaves the old seeds
        for name, tasks in suites.items():
            options = RunOptions(suite=load_suite(name), out_dir=work / "runs", tasks=tasks,
                                 progress=False)
            [result] = run(options, [specs.get(model) or load_model(model)])
            if result.status != "complete":
                raise MoroccanEvalError(f"{model} on {name}: run {result.status} "
                                        f"({result.path})")
            runs.setdefault(model, []).append(result.path)
    if replace:
        removed = remove_seeds(out) if baselines else []
        removed += remove_seeds(out, [targets[model] for model in specs])
        for folder in removed:
            print(f"removed {folder}")
    written = []
    for model, suites in todo.items():
        info = work / f"{targets[model].name}.submission.yaml"
        card = (model_info_for(specs[model], list(suites), date) if model in specs
                else info_for(model, list(suites), date))
        info.write_text(yaml.safe_dump(card, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
        target = package(runs[model], info, out, targets[model].name)
        print(f"{model}: {len(runs[model])} suite(s) -> {target}")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", dest="suites",
                        help="suite name (repeatable) [default: every installed suite]")
    parser.add_argument("--model", action="append", dest="models", type=Path, default=[],
                        help="a real model's YAML to seed too, on every task of the --suite "
                        "suites (repeatable; e.g. models/llamacpp-managed.yaml)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="seed only the --model models")
    parser.add_argument("--out", type=Path, default=Path("leaderboard/submissions"))
    parser.add_argument("--work", type=Path,
                        help="folder keeping the runs [default: a temporary folder]")
    parser.add_argument("--replace", action="store_true",
                        help="remove this script's earlier seed submissions first")
    parser.add_argument("--date", type=dt.date.fromisoformat,
                        help="submission date [default: today]")
    args = parser.parse_args(argv)
    if args.models and not args.suites:
        parser.error("--model needs --suite: name the suites a real model runs")
    if args.no_baselines and not args.models:
        parser.error("--no-baselines leaves nothing to seed without --model")
    try:
        with tempfile.TemporaryDirectory(prefix="seed-") as tmp:
            work = args.work or Path(tmp)
            seed(args.suites or list(suite_dirs()), args.out, work, replace=args.replace,
                 date=args.date, models=args.models, baselines=not args.no_baselines)
    except MoroccanEvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
