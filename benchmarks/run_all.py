"""Every benchmark, one after another; each prints its figures, target and PASS/FAIL.
The output is appended to benchmarks/RESULTS.md with the machine's description.

    python benchmarks/run_all.py [--quick]

``--quick`` runs smaller sizes (minutes, not most of an hour): its figures are not the
targets' sizes, and RESULTS.md says so. The Ray benchmark runs when the ``ray`` extra is
installed; the real-model check (benchmarks/real_model.py) never runs here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (script, full arguments, --quick arguments)
BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("startup.py", [], ["--repeat", "3"]),
    ("peers.py", [], ["--items", "2000", "--rounds", "1"]),
    ("scale.py", [], ["--sizes", "10000,100000", "--cached", "5000"]),
    ("report_build.py", [], ["--items", "2000", "--repeat", "1"]),
    ("anonymize_scan.py", [], ["--seconds", "3"]),
    ("leaderboard_build.py", [], ["--submissions", "100"]),
    ("ray_grid.py", [], ["--groups", "50"]),
]


#: The libraries a run imports before its first request, timed in a fresh interpreter
#: (none of the toolkit's code: a figure of the machine, not of the commit).
LIBRARIES = "import aiohttp, click, jinja2, pydantic, yaml"


def _loop_ms() -> float:
    """A fixed pure-Python workload on one core, in ms."""
    started = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i & 7
    return (time.perf_counter() - started) * 1000


def _objects_ms() -> float:
    """A fixed workload of small objects (build, encode and decode 100,000 dicts), in ms:
    what a run does per item, and what the loop above does not show (on 2026-12-05 13:48
    the loop took its usual 124 ms while the instant adapter ran at half its usual rate)."""
    started = time.perf_counter()
    rows = [{"id": str(i), "text": "x" * (i % 50), "n": [i, i + 1]} for i in range(100_000)]
    json.loads(json.dumps(rows))
    return (time.perf_counter() - started) * 1000


def _imports_ms() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", LIBRARIES], check=True)
    return (time.perf_counter() - started) * 1000


def speed() -> str:
    """How fast this machine is now: shared machines differ by half from one day to the
    next, which moves every figure below although no code changed (medians of 5)."""
    loop = statistics.median(_loop_ms() for _ in range(5))
    objects = statistics.median(_objects_ms() for _ in range(5))
    imports = statistics.median(_imports_ms() for _ in range(5))
    return (f"speed now: a fixed pure-Python loop {loop:.0f} ms, 100,000 small dicts built, "
            f"encoded and decoded {objects:.0f} ms, `python -c '{LIBRARIES}'` "
            f"{imports:.0f} ms")


def machine() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.platform()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, commit {commit}, load average at start {load}; "
            f"{speed()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    lines = [f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
             f"{' (--quick: smaller sizes than the targets)' if args.quick else ''}",
             "", f"Machine: {machine()}", ""]
    failed = []
    for script, full, quick in BENCHMARKS:
        if script == "ray_grid.py" and importlib.util.find_spec("ray") is None:
            lines.append(f"- `{script}`: skipped (the ray extra is not installed)")
            continue
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / script), *(quick if args.quick
                                                                     else full)],
                              capture_output=True, text=True)
        took = time.perf_counter() - started
        output = [x for x in done.stdout.splitlines() if x.strip()]
        if done.returncode != 0:
            failed.append(script)
        tail = done.stderr.strip().splitlines()[-1:] if done.returncode and not output else []
        lines.append(f"- `{script}` ({took:.0f} s, exit {done.returncode}):")
        lines += [f"    - {x}" for x in output + tail]
        print("\n".join(lines[-(len(output) + len(tail) + 1):]), flush=True)
    with (HERE / "RESULTS.md").open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"\nappended to {HERE / 'RESULTS.md'}; "
          f"{'all passed' if not failed else 'not passed: ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
