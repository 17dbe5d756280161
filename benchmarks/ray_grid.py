"""The Ray executor against the local one: 4 models x 2 suites on a local 2-CPU Ray
instance, the same results (predictions and scores, timings aside), and Ray's overhead.

Models: char-ngram and majority (in-process baselines), the toy ``instant`` python adapter,
and an OpenAI-compatible server on 127.0.0.1 answering after 20 ms (concurrency 4).

    pip install 'moroccan-eval[ray]'
    python benchmarks/ray_grid.py [--groups 200] [--shards 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # toy_models

from moroccan_eval.adapters import load_model
from moroccan_eval.adapters.base import ModelSpec
from moroccan_eval.mockserver import Behaviour, MockServer
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.synthetic import make_suite

VOLATILE = ("latency_ms", "cached", "attempts")


def comparable(run_dir: Path) -> tuple[list[dict[str, object]], dict[str, object]]:
    lines = (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    predictions = [{k: v for k, v in json.loads(x).items() if k not in VOLATILE} for x in lines]
    tasks = json.loads((run_dir / "scores.json").read_text(encoding="utf-8"))["tasks"]
    return predictions, {n: {k: v for k, v in t.items() if k != "usage"} for n, t in tasks.items()}


def main() -> int:
    import ray

    from moroccan_eval.runs.ray_executor import run_on_ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": tests}})  # the toy adapter's module
    print(f"ray.init (local, 2 CPUs): {time.perf_counter() - started:.1f} s")
    ok = True
    with tempfile.TemporaryDirectory() as tmp_name, \
            MockServer(Behaviour(latency_s=0.02)) as server:
        tmp = Path(tmp_name)
        specs = [load_model("char-ngram"), load_model("majority"),
                 ModelSpec.model_validate({"name": "instant", "adapter": "python",
                                           "callable": "toy_models:instant"}),
                 ModelSpec.model_validate({"name": "http", "adapter": "openai_compat",
                                           "base_url": server.base_url, "model": "stub",
                                           "limits": {"concurrency": 4}})]
        local_s = ray_s = 0.0
        for index in range(2):
            suite = load_suite(make_suite(tmp / f"suite{index}", args.groups,
                                          ("arb_Arab", "ary_Latn", "ary_Arab"),
                                          name=f"synthetic{index}"))
            started = time.perf_counter()
            local = run(RunOptions(suite=suite, out_dir=tmp / "local", progress=False,
                                   concurrency=1), specs)
            local_s += time.perf_counter() - started
            started = time.perf_counter()
            remote = run_on_ray(RunOptions(suite=suite, out_dir=tmp / "ray", progress=False),
                                specs, shards=args.shards)
            ray_s += time.perf_counter() - started
            same = all(comparable(a.path) == comparable(b.path)
                       for a, b in zip(local, remote, strict=True))
            ok &= same
            print(f"suite {index + 1}: {len(specs)} models x {args.groups * 3} items, "
                  f"Ray results equal local ones: {'PASS' if same else 'FAIL'}")
        # the local run is at concurrency 1 so its predictions come in suite order (the
        # bootstrap follows record order); the Ray shards run at the models' concurrency
        print(f"local executor (concurrency 1) {local_s:.1f} s; Ray executor ({args.shards} "
              f"shards per model, 2 CPUs, models' own concurrency) {ray_s:.1f} s; "
              f"difference {ray_s - local_s:+.1f} s")
    ray.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
