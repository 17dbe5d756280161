"""Leaderboard validate + build time and site size. Prints figures and compares them with
the targets: 1,000 submissions x 6 suites validated and built in < 30 s, site < 20 MB.

Six synthetic suites (the seven core varieties), ten toy oracles of tests/toy_models.py
run once on each through the real runner; then ``--submissions`` submissions, each one
oracle's six runs (hard links, so the disk holds one copy) under its own submission.yaml.

Each pass is the command a leaderboard runs, ``moroccan-eval leaderboard build``, in a
process of its own (start-up and imports included, as for a user): the cold pass with no
verdict recorded does the full work per submission (checksums, rescoring every run from
raw outputs, items, prompts; the submissions are copies, but nothing is shared between
them but the loaded suites); the warm pass is a rebuild with the verdicts of the cold pass,
as the example CI workflow does on merge. Submission files are linked (--files-url), not
copied into the site. Validation and build times are the ones the command prints.

Each figure is wall time, with the CPU time of the command and its workers beside it and
the load average when the pass started: on a shared machine wall time measures the
neighbours too (the target is wall time on a quiet machine).

    python benchmarks/leaderboard_build.py [--submissions 1000] [--suites 6] [--groups 12]
                                           [--jobs N] [--warm-only] [--keep DIR]

``--keep DIR`` keeps the submissions and the verdicts in DIR: a later run with the same
DIR skips the setup and the cold pass and measures a warm rebuild only (to catch a quiet
moment on a shared machine).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # toy models

import yaml

from moroccan_eval.adapters import load_model
from moroccan_eval.leaderboard.submission import CHECKSUMS, INFO, RUNS, write_checksums
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.synthetic import make_suite
from moroccan_eval.varieties import core_codes

TARGET_S, TARGET_MB = 30.0, 20.0
FILES_URL = "https://example.org/leaderboard/tree/main/leaderboard/submissions"
ORACLES = 10


def _runs(root: Path, suites: int, groups: int) -> dict[int, list[Path]]:
    """Each oracle's run directory on every suite."""
    specs = []
    for k in range(ORACLES):
        path = root / f"oracle-{k}.yaml"
        path.write_text(yaml.safe_dump({
            "name": f"oracle-{k}", "adapter": "python", "callable": f"toy_models:oracle_{k}",
            "pricing": {"input_per_mtok": 2.0, "output_per_mtok": 8.0, "currency": "USD"}}))
        specs.append(load_model(str(path)))
    by_oracle: dict[int, list[Path]] = {k: [] for k in range(ORACLES)}
    for s in range(suites):
        suite = make_suite(root / "suites" / f"bench-{s}", groups, tuple(core_codes()),
                           name=f"bench-{s}")
        results = run(RunOptions(suite=load_suite(suite), out_dir=root / "runs",
                                 progress=False), specs)
        for k, result in enumerate(results):
            by_oracle[k].append(result.path)
    return by_oracle


def _submissions(root: Path, by_oracle: dict[int, list[Path]], count: int) -> Path:
    subs = root / "submissions"
    for i in range(count):
        k = i % ORACLES
        target = subs / f"lab-{i:04d}"
        for run_dir in by_oracle[k]:
            (target / RUNS / run_dir.name).mkdir(parents=True)
            for file in run_dir.iterdir():
                os.link(file, target / RUNS / run_dir.name / file.name)
        (target / INFO).write_text(yaml.safe_dump({
            "model": f"oracle-{k}", "organisation": f"Lab {i}", "parameters_b": 0.5 + i % 40,
            "licence": "Apache-2.0", "weights": "open" if i % 3 else "closed",
            "adapter": "python", "hosting": "on-prem" if i % 2 else "api",
            "contact": f"lab{i}@example.org", "date": "2026-12-03"}))
        write_checksums(target)
    assert (subs / "lab-0000" / CHECKSUMS).is_file()
    return subs


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _children_cpu() -> float:
    """CPU seconds of the finished commands this process ran (and of their workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _build(subs: Path, out: Path, jobs: int | None) -> tuple[float, float, float, float]:
    """``leaderboard build`` of ``subs`` into ``out`` in a new process: (validation s,
    validation and build s as the command reports them, wall s of the process, its CPU s)."""
    command = [sys.executable, "-m", "moroccan_eval", "leaderboard", "build",
               "--submissions", str(subs), "-o", str(out), "--files-url", FILES_URL,
               *(["--jobs", str(jobs)] if jobs else [])]
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall, used = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0 or ", 0 excluded," not in done.stdout:
        raise SystemExit(f"leaderboard build failed:\n{done.stdout}{done.stderr}")
    found = re.search(r"validated in ([\d.]+) s, built in ([\d.]+) s", done.stdout)
    assert found, done.stdout
    return float(found[1]), float(found[1]) + float(found[2]), wall, used


def _sizes(folder: Path) -> str:
    """Megabytes per top-level part of the site."""
    parts = {}
    for child in sorted(folder.iterdir()):
        files = [child] if child.is_file() else [p for p in child.rglob("*") if p.is_file()]
        parts[child.name] = sum(p.stat().st_size for p in files) / 1e6
    return ", ".join(f"{name} {mb:.1f}" for name, mb in parts.items() if mb >= 0.05)


def _largest(folder: Path, count: int = 5) -> str:
    """The biggest files of the site, and the pages per submission (most of a big board)."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
    pages = [p.stat().st_size for p in folder.glob("submissions/*.html")]
    mean = f"; {len(pages)} submission pages, {sum(pages) / len(pages) / 1e3:.1f} kB each" \
        if pages else ""
    return ", ".join(f"{p.relative_to(folder)} {p.stat().st_size / 1e6:.2f}"
                     for p in files[:count]) + mean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--suites", type=int, default=6)
    parser.add_argument("--groups", type=int, default=12)
    parser.add_argument("--jobs", type=int, help="processes [default: one per CPU]")
    parser.add_argument("--warm-only", action="store_true",
                        help="measure the warm pass only (the cold pass still runs first, "
                        "to record the verdicts, but is not reported)")
    parser.add_argument("--keep", type=Path, help="folder keeping the setup and the verdicts")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        os.environ["MOROCCAN_EVAL_CACHE_DIR"] = str(root / "cache")
        os.environ["MOROCCAN_EVAL_SUITES"] = str(root / "suites")
        reuse = args.keep is not None and (root / "cache" / "leaderboard-verdicts").is_dir()
        started = time.perf_counter()
        if reuse:
            subs = root / "submissions"
            args.submissions = sum(1 for _ in subs.iterdir())
            print(f"setup: reused {root} ({args.submissions} submissions)")
        else:
            root.mkdir(parents=True, exist_ok=True)
            subs = _submissions(root, _runs(root, args.suites, args.groups),
                                args.submissions)
            print(f"setup: {args.submissions} submissions x {args.suites} suites "
                  f"({args.groups * len(core_codes())} items each) in "
                  f"{time.perf_counter() - started:.1f} s")

        figures = {}
        for label in ("warm",) if reuse else ("cold", "warm"):  # warm: verdicts reused
            load = os.getloadavg()[0]
            figures[label] = (*_build(subs, root / f"site-{label}", args.jobs), load)
            print(f"{label} done", flush=True)
        size, parts = _size_mb(root / "site-warm"), _sizes(root / "site-warm")
        largest = _largest(root / "site-warm")
    if args.warm_only:
        figures.pop("cold", None)
    for label, (validated, total, wall, cpu, load) in figures.items():
        print(f"{label} (load {load:.1f}): validate {validated:.1f} s "
              f"({1000 * validated / args.submissions:.1f} ms per submission), validate + "
              f"build {total:.1f} s; the command {wall:.1f} s, CPU {cpu:.1f} s "
              f"(target < {TARGET_S:.0f} s) {'OK' if wall < TARGET_S else 'MISSED'}")
    print(f"site: {size:.1f} MB (target < {TARGET_MB:.0f} MB) "
          f"{'OK' if size < TARGET_MB else 'MISSED'}: {parts}")
    print(f"largest (MB): {largest}")
    total = max(figure[2] for figure in figures.values())
    return 0 if total < TARGET_S and size < TARGET_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
