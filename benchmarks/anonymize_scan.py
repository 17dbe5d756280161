"""Scanner throughput and memory. Prints figures and compares them with the targets.

1. Throughput: sentences of the shipped evaluation set scanned one after another on one
   core. Target >= 1,000 sentences/s.
2. Memory: ``anonymize scan``'s streaming path over two generated JSONL files, SMALL and
   LARGE megabytes. Peak RSS must not grow with the file (target: the larger file adds
   < 25 MB). The issue's 1 GB file takes hours at this speed: pass --large-mb 1024 to run it.

    python benchmarks/anonymize_scan.py [--seconds 10] [--small-mb 1] [--large-mb 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from moroccan_eval.privacy.gate import default_scanner
from moroccan_eval.privacy.operations import default_eval_set, scan_paths


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_file(path: Path, megabytes: float, sentences: list[str]) -> int:
    written = lines = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < megabytes * 1e6:
            line = json.dumps({"id": lines, "fields": {"text": sentences[lines % len(sentences)]}},
                              ensure_ascii=False) + "\n"
            fh.write(line)
            written += len(line.encode("utf-8"))
            lines += 1
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--small-mb", type=float, default=1)
    parser.add_argument("--large-mb", type=float, default=4)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    scanner = default_scanner()
    sentences = [json.loads(line)["text"]
                 for line in default_eval_set().read_text(encoding="utf-8").splitlines()]
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        for text in sentences:
            scanner.scan(text)
        done += len(sentences)
    rate = done / (time.perf_counter() - started)
    ok_rate = rate >= 1000
    print(f"throughput: {rate:,.0f} sentences/s on one core (target >= 1,000) "
          f"{'PASS' if ok_rate else 'FAIL'}")

    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (args.small_mb, args.large_mb):
            path = Path(tmp) / f"{size}.jsonl"
            lines = make_file(path, size, sentences)
            started = time.perf_counter()
            findings = sum(1 for _ in scan_paths(scanner, [path], ["fields.text"]))
            peaks.append(peak_rss_mb())
            print(f"scan {size:g} MB ({lines:,} lines, {findings:,} findings) in "
                  f"{time.perf_counter() - started:.1f} s; peak RSS {peaks[-1]:.0f} MB")
    growth = peaks[1] - peaks[0]
    ok_memory = growth < 25
    print(f"memory: peak RSS grew {growth:.1f} MB from {args.small_mb:g} to {args.large_mb:g} MB "
          f"of input (target < 25 MB) {'PASS' if ok_memory else 'FAIL'}")
    return 0 if ok_rate and ok_memory else 1


if __name__ == "__main__":
    sys.exit(main())
