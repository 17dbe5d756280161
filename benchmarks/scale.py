"""Scale: run + score of 10k / 100k / 1M items with the instant in-process adapter (items/s
and peak RSS, each size in a fresh process), in one process and again with ``--processes
2`` (worker processes answer, this process writes and scores), and a cached re-run of 20k
items through the CLI against a local HTTP server (first run fills the response cache).

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--cached 20000] [--processes 2]

Targets: >= 20,000 items/s at the largest size (1M; the faster of the two ways, named),
peak RSS < 500 MB (with workers: this process's peak plus each worker's at most the
largest worker's), flat from 10k to 1M (read here as: the largest size's peak at most 10%
above the smallest's); cached re-run < 2 s.
Each one-process run's predictions are then exported to Parquet, compared with themselves
(``compare``: every item paired), reported on (``report``), rescored (``rescore``) and
verified against its suite (``verify``, offline checks), and the same items are run again
as two shards (``run --shard``) and merged (``merge``), each in a fresh process (time, peak
RSS: all six stream, so their memory must not grow with the run either; same targets).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from installed import compile_toolkit

from moroccan_eval.mockserver import MockServer
from moroccan_eval.synthetic import make_suite

ROOT = Path(__file__).resolve().parent.parent
RATE_TARGET, RSS_TARGET_MB, CACHED_TARGET_S = 20_000, 500, 2.0
MERGED_SHARDS = 2
FLAT_GROWTH = 0.10  # "flat": the largest run's peak RSS at most this much above the smallest's

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from moroccan_eval.adapters.base import ModelSpec
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
started = time.perf_counter()
suite = load_suite({suite!r})
loaded = time.perf_counter()
spec = ModelSpec.model_validate({{"name": "instant", "adapter": "python",
                                 "callable": "toy_models:instant",
                                 "limits": {{"concurrency": 64}}}})
[result] = run(RunOptions(suite=suite, out_dir=Path({out!r}), progress=False,
                          shard={shard!r}, processes={processes!r}), [spec])
done = time.perf_counter()
usage = result.scores.tasks["intents"].usage
print(json.dumps({{"n": usage.n_requests, "load_s": loaded - started,
                  "run_score_s": done - loaded, "run": str(result.path),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""

_EXPORT = """
import json, resource, time
from pathlib import Path
from moroccan_eval.export import export
from moroccan_eval.runs.rundir import load_run
started = time.perf_counter()
rows = export([load_run(Path({run!r}))], "predictions", "parquet", Path({out!r}))
print(json.dumps({{"rows": rows, "s": time.perf_counter() - started,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


_MERGE = """
import json, resource, time
from pathlib import Path
from moroccan_eval.runs.merge import merge_runs
from moroccan_eval.suites.loader import load_suite
suite = load_suite({suite!r})
started = time.perf_counter()
merged = merge_runs([Path(shard) for shard in {shards!r}], Path({out!r}), suite)
print(json.dumps({{"s": time.perf_counter() - started, "run": str(merged),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


_READ = """
import json, resource, time
from pathlib import Path
from moroccan_eval.runs.rundir import load_run
run = load_run(Path({run!r}))
started = time.perf_counter()
if {what!r} == "compare":
    from moroccan_eval.analysis.compare import compare_runs
    assert compare_runs(run, run)
elif {what!r} == "rescore":
    from moroccan_eval.runs.scoring import rescore
    assert rescore(run) == run.scores
elif {what!r} == "verify":
    from moroccan_eval.suites.loader import load_suite
    from moroccan_eval.verify import verify_run
    suite = load_suite({suite!r})
    started = time.perf_counter()  # the suite loaded: what verify adds
    assert verify_run(run, suite_ref=suite).ok
else:
    from moroccan_eval.report.build import build_report
    assert build_report([run])
print(json.dumps({{"s": time.perf_counter() - started,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _child(code: str) -> dict[str, Any]:
    """The JSON line a fresh Python process running ``code`` prints last."""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return dict(json.loads(out.splitlines()[-1]))


def exported(tmp: Path, run_dir: str) -> dict[str, Any]:
    """The run's predictions exported to Parquet in a fresh process: rows, time, RSS."""
    out = tmp / "predictions.parquet"
    figures = _child(_EXPORT.format(run=run_dir, out=str(out)))
    out.unlink()
    return figures


def read(run_dir: str, what: str, suite: Path) -> dict[str, Any]:
    """``compare`` (the run with itself), ``report`` or ``rescore`` of the run in a fresh
    process: time and peak RSS."""
    return _child(_READ.format(run=run_dir, what=what, suite=str(suite)))


def new_suite(tmp: Path, items: int) -> Path:
    suite = make_suite(tmp / f"suite-{items}", items // 2)
    # a first load scans the new suite for personal data (Presidio): not what is measured
    subprocess.run([sys.executable, "-c", "import sys; from moroccan_eval.suites.loader "
                    "import load_suite; load_suite(sys.argv[1])", str(suite)], check=True)
    return suite


def streaming(tmp: Path, suite: Path, shard: str | None = None,
              processes: int = 1) -> dict[str, Any]:
    """A run of the suite (or of one shard of it) in a fresh process, the model in that
    process or in ``processes`` worker processes: its figures."""
    return _child(_CHILD.format(tests=str(ROOT / "tests"), suite=str(suite),
                                out=str(tmp / "runs"), shard=shard, processes=processes))


def merged(tmp: Path, suite: Path, shards: int) -> dict[str, Any]:
    """The suite run in ``shards`` shards, then ``merge`` of them in a fresh process: its
    time and peak RSS."""
    runs = [streaming(tmp, suite, f"{index}/{shards}")["run"] for index in range(shards)]
    figures = _child(_MERGE.format(suite=str(suite), shards=runs, out=str(tmp / "merged")))
    for run in [*runs, figures["run"]]:
        shutil.rmtree(run)
    return figures


def cached_rerun(tmp: Path, items: int) -> float:
    suite = make_suite(tmp / "cached-suite", items // 2)
    with MockServer() as server:
        model = tmp / "model.yaml"
        model.write_text(f"name: stub\nadapter: openai_compat\nbase_url: {server.base_url}\n"
                         "model: stub\napi_key_env: null\nlimits: {concurrency: 64}\n",
                         encoding="utf-8")
        command = [sys.executable, "-m", "moroccan_eval", "run", "--suite", str(suite),
                   "--model", str(model), "--cache-dir", str(tmp / "cache"),
                   "--out", str(tmp / "cached-runs")]
        subprocess.run(command, check=True, capture_output=True)
        sent = server.requests
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - started
        assert server.requests == sent, "the re-run sent requests"
    return wall


def flatness(peaks: dict[int, float]) -> bool:
    """Print how the peak RSS grows from the smallest run to the largest; whether it is flat."""
    (small, low), (large, high) = min(peaks.items()), max(peaks.items())
    per_item = (high - low) * 2**20 / (large - small)
    passed = high <= low * (1 + FLAT_GROWTH)
    print(f"peak RSS from {small:,} to {large:,} items: {low:.0f} -> {high:.0f} MB "
          f"(+{high - low:.0f} MB, {per_item:.0f} bytes per item more; target flat, at most "
          f"+{FLAT_GROWTH:.0%}): {'PASS' if passed else 'FAIL'}")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--cached", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                        help="also run each size with --processes N (1: not) [default: 2, "
                        "or 1 on one CPU]")
    args = parser.parse_args()
    compile_toolkit()
    ok = True
    peaks: dict[int, float] = {}
    reads: dict[str, dict[int, float]] = {"compare": {}, "report": {}, "rescore": {},
                                          "verify": {}, "merge": {}}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MOROCCAN_EVAL_CACHE_DIR"] = str(Path(tmp) / "verdicts")
        sizes = [int(size) for size in args.sizes.split(",")]
        largest = max(sizes)
        for size in sizes:
            suite = new_suite(Path(tmp), size)
            figures = streaming(Path(tmp), suite)
            peaks[int(figures["n"])] = figures["rss_mb"]
            rates = {1: figures["n"] / figures["run_score_s"]}
            passed = figures["rss_mb"] < RSS_TARGET_MB
            ok &= passed
            print(f"instant adapter, {int(figures['n']):,} items: load {figures['load_s']:.1f} s, "
                  f"run + score {figures['run_score_s']:.1f} s = {rates[1]:,.0f} items/s, peak "
                  f"RSS {figures['rss_mb']:.0f} MB (target < {RSS_TARGET_MB} MB): "
                  f"{'PASS' if passed else 'FAIL'}")
            if args.processes > 1:
                spread = streaming(Path(tmp), suite, processes=args.processes)
                shutil.rmtree(spread["run"])
                rates[args.processes] = spread["n"] / spread["run_score_s"]
                total = spread["rss_mb"] + args.processes * spread["worker_rss_mb"]
                passed = total < RSS_TARGET_MB
                ok &= passed
                print(f"  the same with --processes {args.processes}: run + score "
                      f"{spread['run_score_s']:.1f} s = {rates[args.processes]:,.0f} items/s, "
                      f"peak RSS {spread['rss_mb']:.0f} MB here + {args.processes} x at most "
                      f"{spread['worker_rss_mb']:.0f} MB in workers = {total:.0f} MB (target "
                      f"< {RSS_TARGET_MB} MB): {'PASS' if passed else 'FAIL'}")
            if size == largest:
                best = max(rates, key=lambda processes: rates[processes])
                passed = rates[best] >= RATE_TARGET
                ok &= passed
                print(f"  run + score of {size:,} items: {rates[best]:,.0f} items/s "
                      f"({'one process' if best == 1 else f'--processes {best}'}; target "
                      f">= {RATE_TARGET:,} items/s): {'PASS' if passed else 'FAIL'}")
            export = exported(Path(tmp), figures["run"])
            passed = export["rss_mb"] < RSS_TARGET_MB
            ok &= passed
            print(f"  export of its predictions to Parquet: {export['rows']:,} rows in "
                  f"{export['s']:.1f} s, peak RSS {export['rss_mb']:.0f} MB (streamed; target "
                  f"< {RSS_TARGET_MB} MB): {'PASS' if passed else 'FAIL'}")
            for what in ("compare", "report", "rescore", "verify"):
                measured = read(figures["run"], what, suite)
                reads[what][int(figures["n"])] = measured["rss_mb"]
                passed = measured["rss_mb"] < RSS_TARGET_MB
                ok &= passed
                print(f"  {what}: {measured['s']:.1f} s, peak RSS {measured['rss_mb']:.0f} MB "
                      f"(target < {RSS_TARGET_MB} MB): {'PASS' if passed else 'FAIL'}")
            merge = merged(Path(tmp), suite, MERGED_SHARDS)
            reads["merge"][int(figures["n"])] = merge["rss_mb"]
            passed = merge["rss_mb"] < RSS_TARGET_MB
            ok &= passed
            print(f"  merge of the same items run as {MERGED_SHARDS} shards: {merge['s']:.1f} s, "
                  f"peak RSS {merge['rss_mb']:.0f} MB (target < {RSS_TARGET_MB} MB): "
                  f"{'PASS' if passed else 'FAIL'}")
        if len(peaks) > 1:
            ok &= flatness(peaks)
            for what, rss in reads.items():
                print(f"{what}:", end=" ")
                ok &= flatness(rss)
        wall = cached_rerun(Path(tmp), args.cached)
        passed = wall < CACHED_TARGET_S
        ok &= passed
        print(f"cached re-run of {args.cached:,} items (CLI, 0 requests): {wall:.2f} s "
              f"(target < {CACHED_TARGET_S} s): {'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
