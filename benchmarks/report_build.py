"""Report build time and size. Prints figures and compares them with the targets.

10 models x 10,000 items (a synthetic suite of the seven core varieties, answered by the toy
oracles of tests/toy_models.py through the real runner), then ``build_report`` over the ten
runs. Targets: built in < 5 s (median of --repeat builds), file < 5 MB.

    python benchmarks/report_build.py [--models 10] [--items 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # toy models


from toy_models import oracle_runs

from moroccan_eval.report.build import build_report
from moroccan_eval.runs.rundir import load_run
from moroccan_eval.varieties import core_codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    groups = -(-args.items // len(core_codes()))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MOROCCAN_EVAL_CACHE_DIR"] = str(Path(tmp) / "cache")
        started = time.perf_counter()
        runs = [load_run(p) for p in oracle_runs(Path(tmp), args.models, groups=groups)]
        print(f"prepared {args.models} runs x {groups * len(core_codes()):,} items "
              f"in {time.perf_counter() - started:.1f} s")
        times, html = [], ""
        for _ in range(args.repeat):
            started = time.perf_counter()
            html = build_report(runs)
            times.append(time.perf_counter() - started)
    size_mb = len(html.encode("utf-8")) / 1e6
    median = statistics.median(times)
    ok_time, ok_size = median < 5.0, size_mb < 5.0
    print(f"build: median {median:.2f} s of {', '.join(f'{t:.2f}' for t in times)} "
          f"(target < 5 s) {'PASS' if ok_time else 'FAIL'}")
    print(f"size:  {size_mb:.2f} MB (target < 5 MB) {'PASS' if ok_size else 'FAIL'}")
    return 0 if ok_time and ok_size else 1


if __name__ == "__main__":
    sys.exit(main())
