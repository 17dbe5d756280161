"""Start-up: from the command to the first request reaching the model, on a shipped suite
with a warm privacy-gate verdict (the suite was loaded once before), and ``--help``.

The model is an OpenAI-compatible server on 127.0.0.1 (the toolkit's mock server, in this
process) that stamps the arrival of its first request; the clock starts just before the
``moroccan-eval`` process is launched, so interpreter start-up counts too.

    python benchmarks/startup.py [--suite support-intents] [--repeat 5]

Target: start-up <= 0.5 s and ``--help`` < 0.5 s (medians).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installed import compile_toolkit

from moroccan_eval.mockserver import MockServer

TARGET_S = 0.5
CLI = [sys.executable, "-m", "moroccan_eval"]


def first_request_delay(suite: str, tmp: Path) -> float:
    """Seconds from launching ``moroccan-eval run`` to its first request's arrival."""
    with MockServer() as server:
        model = tmp / "model.yaml"
        model.write_text(f"name: stub\nadapter: openai_compat\nbase_url: {server.base_url}\n"
                         "model: stub\napi_key_env: null\n", encoding="utf-8")
        started = time.time()
        subprocess.run([*CLI, "run", "--suite", suite, "--model", str(model), "--limit", "1",
                        "--no-cache", "--out", str(tmp / "runs")],
                       check=True, capture_output=True)
        assert server.first_request_at is not None, "no request reached the server"
        return server.first_request_at - started


def help_time() -> float:
    started = time.perf_counter()
    subprocess.run([*CLI, "--help"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="support-intents")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    compile_toolkit()
    with tempfile.TemporaryDirectory() as tmp:
        first_request_delay(args.suite, Path(tmp))  # warms the gate verdict and disk cache
        delays = [first_request_delay(args.suite, Path(tmp)) for _ in range(args.repeat)]
    helps = [help_time() for _ in range(args.repeat)]
    ok = True
    for label, values in (("start-up to first request", delays), ("--help", helps)):
        median = statistics.median(values)
        passed = median <= TARGET_S
        ok &= passed
        print(f"{label}: median {median:.3f} s (runs: "
              f"{', '.join(f'{v:.3f}' for v in values)}); target <= {TARGET_S} s: "
              f"{'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
