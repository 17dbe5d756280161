"""The Ray executor (extra ``ray``): a run split into a model × shard grid of Ray tasks.

Each task runs one shard (``run --shard i/n``) of one model on a Ray worker with the
ordinary runner, and streams back its run directory's files and the responses it cached,
a few MB at a time (a Ray streaming generator). The driver writes each shard as it
arrives, stores the responses in its own cache, and joins a model's shards with
:func:`~moroccan_eval.runs.merge.merge_runs`: the run directory is the one the local
executor writes (timestamps and host aside).

- The response cache works per worker: a task starts with the driver's cached answers of
  its model (put into the object store in batches, once for all of the model's shards)
  and streams back the answers it stored, which the driver adds to its cache.
- A model's ``requests_per_minute`` holds across workers: one limiter actor per model
  hands out request start times to every worker.
- Secrets never travel through Ray: a worker reads the model's ``api_key_env`` from its
  own environment (set it on the worker nodes, e.g. from a Kubernetes secret).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from ..adapters.base import ModelSpec
from ..cache import ResponseCache
from ..errors import ConfigError, RunError
from .merge import merge_runs
from .rundir import MANIFEST, PREDICTIONS, SCORES, load_run
from .runner import SELECTION_OPTIONS, RunOptions, RunResult

CacheRow = tuple[str, str, str, float]  # (model key, request hash, response JSON, time)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'moroccan-eval[ray]'") from None
    return ray


class RemoteRateLimiter:
    """A worker's side of a model's limiter actor: same interface as ``RateLimiter``."""

    def __init__(self, actor: Any):
        self.actor = actor

    def done(self, latency_ms: float | None, pushed_back: bool) -> None:
        """Nothing to learn: the spacing is fixed."""

    async def wait(self) -> None:
        delay = await self.actor.reserve.remote()
        if delay > 0:
            import asyncio

            await asyncio.sleep(delay)


class _Limiter:
    """Spaces request starts of one model across every worker (a Ray actor)."""

    def __init__(self, per_minute: float | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next_start = 0.0

    def reserve(self) -> float:
        """Seconds the caller waits before its request starts."""
        if not self.interval:
            return 0.0
        now = time.monotonic()
        start = max(now, self.next_start)
        self.next_start = start + self.interval
        return start - now


#: A shard's predictions are streamed back in pieces of this many bytes; cached answers
#: travel (both ways) in batches of this many rows.
CHUNK_BYTES = 4 << 20
CHUNK_ROWS = 2_000


def _run_shard(suite_path: str, spec: dict[str, Any], settings: dict[str, Any], shard: str,
               limiter: Any, cached: list[Any], chunk_bytes: int = CHUNK_BYTES
               ) -> Iterator[dict[str, Any]]:
    """One shard of one model, on a worker, streamed back: first its run directory's name
    and small files, then its predictions ``chunk_bytes`` at a time, then the rows it
    added to the response cache, :data:`CHUNK_ROWS` at a time. ``cached`` holds the
    object refs of the model's cached rows (:func:`_put_cached`), fetched one batch at a
    time."""
    import ray

    from ..suites.loader import load_suite
    from .runner import run

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="moroccan-eval-shard-") as tmp:
        cache_dir = Path(tmp) / "cache" if settings.pop("cache") else None
        if cache_dir is not None:
            cache = ResponseCache(cache_dir)
            for batch in cached:
                cache.put_rows(ray.get(batch))
            cache.close()
        suite = load_suite(suite_path, allow_unanonymized=settings.pop("allow_unanonymized"))
        options = RunOptions(suite=suite, out_dir=Path(tmp) / "runs", cache_dir=cache_dir,
                             progress=False, shard=shard,
                             limiters={spec["name"]: RemoteRateLimiter(limiter)}, **settings)
        [result] = run(options, [ModelSpec.model_validate(spec)])
        yield {"name": result.path.name,
               "files": {name: (result.path / name).read_text(encoding="utf-8")
                         for name in (MANIFEST, SCORES)}}
        with (result.path / PREDICTIONS).open("rb") as predictions:
            while chunk := predictions.read(chunk_bytes):
                yield {"predictions": chunk}
        if cache_dir is not None:
            cache = ResponseCache(cache_dir)
            for batch in _batches(cache.rows_since(started)):
                yield {"rows": batch}
            cache.close()


def _batches(rows: Iterator[CacheRow]) -> Iterator[list[CacheRow]]:
    """``rows`` in lists of :data:`CHUNK_ROWS`."""
    while batch := list(islice(rows, CHUNK_ROWS)):
        yield batch


def _put_cached(ray: Any, cache: ResponseCache | None, spec: ModelSpec) -> list[Any]:
    """The model's cached rows in the object store, one object per batch, read from the
    cache a batch at a time: the driver never holds a whole model's answers. The refs are
    handed to every shard of the model in a list, which Ray passes unresolved (an object
    given as an argument of its own would be stored again for each shard)."""
    if cache is None:
        return []
    return [ray.put(batch) for batch in _batches(cache.rows_of(spec.cache_hash))]


def run_on_ray(options: RunOptions, specs: list[ModelSpec], *, address: str | None = None,
               shards: int | None = None) -> list[RunResult]:
    """Run every model on the suite as a grid of Ray tasks; one merged run per model."""
    ray = _ray()
    if options.shard is not None:
        raise ConfigError("--shard and --executor ray exclude each other: the Ray executor "
                          "shards the run itself (--shards)")
    if options.max_cost is not None:
        raise ConfigError("--max-cost is not supported with --executor ray: each worker would "
                          "count its own spend; run locally to cap spending")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    count = shards or max(1, int(ray.cluster_resources().get("CPU", 1)))
    settings = {name: getattr(options, name) for name in (
        *SELECTION_OPTIONS, "concurrency", "bootstrap", "max_error_rate")}
    remote_shard = ray.remote(_run_shard).options(num_returns="streaming")
    limiter_actor = ray.remote(_Limiter)
    cache = ResponseCache(options.cache_dir) if options.cache_dir else None
    pending: dict[Any, ModelSpec] = {}
    try:
        for spec in specs:
            limiter = limiter_actor.remote(spec.limits.requests_per_minute)
            cached = _put_cached(ray, cache, spec)
            for index in range(count):
                stream = remote_shard.remote(
                    str(options.suite.path), spec.model_dump(mode="json"),
                    {**settings, "cache": cache is not None,
                     "allow_unanonymized": options.suite.allow_unanonymized},
                    f"{index}/{count}", limiter, cached)
                pending[stream] = spec
        return _collect(ray, pending, specs, options, cache)
    finally:
        if cache is not None:
            cache.close()


def _collect(ray: Any, pending: dict[Any, ModelSpec], specs: list[ModelSpec],
             options: RunOptions, cache: ResponseCache | None) -> list[RunResult]:
    """Write each shard as it streams back (the tasks run meanwhile), then merge each
    model's."""
    with tempfile.TemporaryDirectory(prefix="moroccan-eval-shards-") as tmp:
        shard_dirs: dict[str, list[Path]] = {}
        for stream, spec in pending.items():
            folder = _receive_shard(ray, stream, Path(tmp) / spec.name, cache)
            shard_dirs.setdefault(spec.name, []).append(folder)
        results = []
        for spec in specs:
            path = merge_runs(shard_dirs[spec.name], options.out_dir, options.suite)
            run = load_run(path)
            results.append(RunResult(path=path, status=run.manifest.status, scores=run.scores))
        return results


def _receive_shard(ray: Any, stream: Any, root: Path, cache: ResponseCache | None) -> Path:
    """Write the pieces a shard's task streams back into a run directory under ``root``
    (its answers into ``cache``); returns the directory."""
    folder: Path | None = None
    predictions: BinaryIO | None = None
    try:
        for ref in stream:
            try:
                piece = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, Exception) else exc
                raise RunError(f"a Ray task failed: {cause}") from None
            if "files" in piece:
                folder = root / piece["name"]
                folder.mkdir(parents=True)
                for name, text in piece["files"].items():
                    (folder / name).write_text(text, encoding="utf-8")
                predictions = (folder / PREDICTIONS).open("wb")
            elif "predictions" in piece and predictions is not None:
                predictions.write(piece["predictions"])
            elif "rows" in piece and cache is not None:
                cache.put_rows(piece["rows"])
    finally:
        if predictions is not None:
            predictions.close()
    if folder is None:
        raise RunError("a Ray task ended without its run directory")
    return folder
