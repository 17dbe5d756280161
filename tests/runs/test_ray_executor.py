"""The Ray executor on a real local Ray instance (2 CPUs) and a real HTTP server: same run
directories as the local executor, the cache filled from the workers, the rate limit held
across workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import computed_predictions, computed_scores, write_model

from moroccan_eval.adapters import load_model
from moroccan_eval.cache import ResponseCache
from moroccan_eval.errors import ConfigError
from moroccan_eval.mockserver import MockServer
from moroccan_eval.runs.runner import RunOptions, run
from moroccan_eval.suites.loader import load_suite
from moroccan_eval.synthetic import make_suite

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from moroccan_eval.runs import ray_executor  # noqa: E402
from moroccan_eval.runs.ray_executor import (  # noqa: E402
    CHUNK_ROWS,
    _Limiter,
    _put_cached,
    _run_shard,
    run_on_ray,
)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_runs_equal_local_runs_and_fill_the_cache(local_ray: None, tmp_path: Path,
                                                      server: MockServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    suite = load_suite(make_suite(tmp_path / "suite", 40, ("arb_Arab", "ary_Latn")))
    http = load_model(str(write_model(tmp_path / "m.yaml", server.base_url,
                                      limits={"concurrency": 1})))
    ngram = load_model("char-ngram")
    local = run(RunOptions(suite=suite, out_dir=tmp_path / "local", progress=False,
                           concurrency=1), [http, ngram])
    sent = server.requests
    options = RunOptions(suite=suite, out_dir=tmp_path / "ray", progress=False,
                         cache_dir=tmp_path / "cache")
    remote = run_on_ray(options, [http, ngram], shards=3)
    assert server.requests == 2 * sent, "every item sent once more (an empty cache)"
    for ours, theirs in zip(local, remote, strict=True):
        assert theirs.status == "complete"
        assert computed_predictions(theirs.path) == computed_predictions(ours.path)
        assert computed_scores(theirs.path) == computed_scores(ours.path)
    cache = ResponseCache(tmp_path / "cache")
    assert cache.count() == sent, "the workers' answers reached the driver's cache"
    cache.close()
    monkeypatch.setattr(ray_executor, "CHUNK_ROWS", 7)  # the cached answers in 12 batches
    again = run_on_ray(options, [http], shards=2)
    assert server.requests == 2 * sent, "a re-run on Ray is served from the merged cache"
    assert all(json.loads(line)["cached"] for line in
               (again[0].path / "predictions.jsonl").read_text(encoding="utf-8").splitlines())


def test_a_shard_streams_back_in_pieces(local_ray: None, tmp_path: Path) -> None:
    """A task's results reach the driver a piece at a time, none larger than asked: the
    run directory's small files, then its predictions, then its new cached answers."""
    suite = make_suite(tmp_path / "suite", 300)
    limiter = ray.remote(_Limiter).remote(None)
    spec = {"name": "instant", "adapter": "python", "callable": "toy_models:instant"}
    pieces = list(_run_shard(str(suite), spec, {"cache": True, "allow_unanonymized": False},
                             "0/1", limiter, [], chunk_bytes=10_000))
    assert set(pieces[0]) == {"name", "files"}
    assert set(pieces[0]["files"]) == {"manifest.json", "scores.json"}
    chunks = [piece["predictions"] for piece in pieces if "predictions" in piece]
    assert len(chunks) > 5 and all(len(chunk) <= 10_000 for chunk in chunks)
    lines = b"".join(chunks).decode("utf-8").splitlines()
    assert len(lines) == 600 and all(json.loads(line)["output"] == "refund" for line in lines)
    rows = [row for piece in pieces if "rows" in piece for row in piece["rows"]]
    assert len(rows) == 600 < CHUNK_ROWS
    kinds = [next(iter(piece)) for piece in pieces]
    assert kinds == ["name", *["predictions"] * len(chunks), "rows"]


def test_cached_answers_go_to_the_workers_in_batches(local_ray: None, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A model's cached rows reach the object store a batch at a time, its own only."""
    cache = ResponseCache(tmp_path / "cache")
    ours = load_model("char-ngram")
    rows = [(ours.cache_hash, f"request-{i}", f'{{"text": "{i}"}}', float(i)) for i in range(23)]
    cache.put_rows([*rows, ("another-model", "request-0", "{}", 0.0)])
    monkeypatch.setattr(ray_executor, "CHUNK_ROWS", 5)
    refs = _put_cached(ray, cache, ours)
    cache.close()
    batches = [ray.get(ref) for ref in refs]
    assert [len(batch) for batch in batches] == [5, 5, 5, 5, 3]
    assert sorted(tuple(row) for batch in batches for row in batch) == sorted(rows)
    assert _put_cached(ray, None, ours) == []


def test_the_rate_limit_holds_across_workers(local_ray: None, tmp_path: Path,
                                             server: MockServer) -> None:
    """600 requests per minute = one start per 0.1 s, shared by 2 workers: 12 requests
    take at least 1.1 s whatever the number of shards."""
    suite = load_suite(make_suite(tmp_path / "suite", 6, ("arb_Arab", "ary_Latn")))
    spec = load_model(str(write_model(tmp_path / "m.yaml", server.base_url,
                                      limits={"concurrency": 4, "requests_per_minute": 600})))
    [result] = run_on_ray(RunOptions(suite=suite, out_dir=tmp_path / "ray", progress=False),
                          [spec], shards=2)
    arrivals = sorted(server.arrivals)
    assert len(arrivals) == 12
    # the server's own count: never more than the limit allows in any window (a start
    # every 0.1 s: at most 6 in half a second), and 12 starts span at least ~1.1 s
    assert max(sum(1 for t in arrivals if start <= t < start + 0.5) for start in arrivals) <= 6
    assert arrivals[-1] - arrivals[0] >= 1.0, arrivals
    assert result.status == "complete"


def test_what_the_ray_executor_refuses(local_ray: None, tmp_path: Path) -> None:
    suite = load_suite(make_suite(tmp_path / "suite", 4, ("arb_Arab",)))
    options = RunOptions(suite=suite, out_dir=tmp_path / "r", progress=False, max_cost=1.0)
    with pytest.raises(ConfigError, match="--max-cost is not supported"):
        run_on_ray(options, [load_model("majority")])
    options = RunOptions(suite=suite, out_dir=tmp_path / "r", progress=False, shard="0/2")
    with pytest.raises(ConfigError, match="exclude each other"):
        run_on_ray(options, [load_model("majority")])


def test_the_cli_runs_on_ray(local_ray: None, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from moroccan_eval.cli import main

    suite = make_suite(tmp_path / "suite", 8, ("arb_Arab", "ary_Latn"))
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--model", "char-ngram",
                                       "--executor", "ray", "--shards", "2", "--out",
                                       str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    [run_dir] = list((tmp_path / "runs").iterdir())
    assert len(computed_predictions(run_dir)) == 16 and "shard:" not in result.output
    result = CliRunner().invoke(main, ["run", "--suite", str(suite), "--model", "majority",
                                       "--shards", "2", "--out", str(tmp_path / "local")])
    assert result.exit_code == 2 and "--executor ray" in result.output
