"""Schedules items × models: async concurrency, rate limits, timeouts, retries with
backoff, the response cache, a spend cap and progress.

Per model, ``limits.concurrency`` workers pull items from one shared stream, so memory
stays flat however many items a suite holds. Models run side by side.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import collector
from ..adapters import build_adapter
from ..adapters.base import Adapter, ModelSpec, Request, Response
from ..cache import ResponseCache
from ..canary import Canary
from ..costing import DEFAULT_USD_MAD, Currency, convert
from ..errors import ConfigError, Interrupted, MoroccanEvalError, MoroccanEvalWarning, RunError
from ..io import JSONObject, sha256_json
from ..perturb import perturb_item
from ..prompts import PromptRenderer
from ..records import (
    Breakdown,
    Delta,
    Manifest,
    MetricScore,
    PredictionRecord,
    RunScores,
    Selection,
    TaskScores,
    Usage,
    VarietyScore,
    parse_shard,
)
from ..stats.bootstrap import DEFAULT_BOOTSTRAP
from ..suites.loader import Suite, Task
from ..suites.schema import Item
from ..varieties import registry as known_varieties
from .adaptive import AdaptiveConcurrency, AdaptiveLimiter
from .requests import Limiter, PromptKeys, RateLimiter, build_request, send, task_setup
from .rundir import RunWriter, new_manifest
from .scoring import RunTally, compute_scores, finalize_record

if TYPE_CHECKING:
    from .processes import Job, Outbox, Workers


@dataclass
class RunOptions:
    """What to run and how (everything ``moroccan-eval run`` accepts)."""

    suite: Suite
    out_dir: Path
    tasks: list[str] | None = None
    varieties: list[str] | None = None
    limit: int | None = None
    split: str = "test"
    seed: int = 0
    concurrency: int | None = None  # overrides every model's limits.concurrency
    cache_dir: Path | None = None
    max_cost: float | None = None
    currency: Currency = "MAD"
    usd_mad: float = DEFAULT_USD_MAD
    bootstrap: int = DEFAULT_BOOTSTRAP
    progress: bool | None = None  # None: only on a terminal
    perturb: str | None = None  # a name of moroccan_eval.perturb.PERTURBATIONS
    max_error_rate: float | None = None  # a run with more failed requests is ``failed``
    shard: str | None = None  # "i/n": only shard i of n of the groups (see ``merge``)
    #: per model name, a limiter shared with other processes (the Ray executor's actor)
    limiters: dict[str, Limiter] | None = None
    #: also work out each task's trivial baseline with its scores (``RunResult.trivial``,
    #: which ``run`` prints beside the scores)
    trivial_baselines: bool = False
    #: worker processes for a model answered in this process (see :mod:`.processes`);
    #: 1: none. Other models run here whatever this says.
    processes: int = 1

    def selected_tasks(self) -> list[Task]:
        names = self.tasks or list(self.suite.tasks)
        return [self.suite.task(name) for name in names]


@dataclass
class RunResult:
    """A finished (or stopped) run of one model."""

    path: Path
    status: str
    scores: RunScores
    #: per task, the trivial baseline of its headline metric, if it was worked out with
    #: the scores (``RunOptions.trivial_baselines``)
    trivial: dict[str, float | None] | None = None


@dataclass
class SpendTracker:
    """Money spent across all models of a run, in one currency: the tokens of live
    requests, plus each self-hosted model's ``hosting_per_hour`` over the time it runs."""

    cap: float | None
    currency: Currency
    usd_mad: float
    tokens: float = 0.0
    hosting: list[list[float]] = field(default_factory=list)  # [per hour, start, end or -1]

    def add(self, amount: float, currency: Currency) -> None:
        self.tokens += convert(amount, currency, self.currency, self.usd_mad)

    def start_hosting(self, spec: ModelSpec) -> int:
        """Start the hosting clock of a model; returns its handle for :meth:`stop_hosting`."""
        rate = convert(spec.pricing.hosting_per_hour, spec.pricing.currency, self.currency,
                       self.usd_mad)
        self.hosting.append([rate, time.monotonic(), -1.0])
        return len(self.hosting) - 1

    def stop_hosting(self, handle: int) -> None:
        self.hosting[handle][2] = time.monotonic()

    @property
    def spent(self) -> float:
        now = time.monotonic()
        return self.tokens + sum(rate * ((end if end >= 0 else now) - start) / 3600
                                 for rate, start, end in self.hosting)

    @property
    def exhausted(self) -> bool:
        return self.cap is not None and self.spent >= self.cap


class _Lookup(NamedTuple):
    """An item (perturbed if the run perturbs), its prompt key and, when the response cache
    holds the answer to the request that key renders to, that request's hash and answer."""

    item: Item
    prompt: str | None
    request_hash: str | None
    hit: Response | None


class _Prepared(NamedTuple):
    request: Request | None  # None: answered from the cache without rendering
    request_hash: str
    record: PredictionRecord
    prompt: str | None
    hit: Response | None  # the cached answer


#: Items looked up in the response cache at a time: the first few alone (the first
#: request goes out at once), then doubling up to the last size.
_LOOKUP_CHUNKS = (16, 32, 64, 128, 256, 512)


@dataclass
class _ModelRun:
    options: RunOptions
    spec: ModelSpec
    adapter: Adapter[Any]
    cache: ResponseCache | None
    spend: SpendTracker
    position: int
    # numbers, not records: a run of a million items keeps what scoring reads of each
    # (statistics, usage), which scoring would otherwise read back from the predictions
    tally: RunTally = field(init=False)
    sent: int = 0  # requests made or answered from the cache (not skipped)
    errors: int = 0
    cached: int = 0
    first_error: str | None = None

    def __post_init__(self) -> None:
        shared = (self.options.limiters or {}).get(self.spec.name)
        self.limiter: Limiter = shared or RateLimiter(self.spec.limits.requests_per_minute)
        self.gate = AdaptiveConcurrency() if self.spec.limits.concurrency == "auto" else None
        if self.gate is not None:
            self.limiter = AdaptiveLimiter(self.limiter, self.gate)
        self.canary = Canary()  # a fresh secret per run; never written anywhere
        self.cache_key = self.spec.cache_hash  # + the server's identity, for managed models

    async def run(self) -> RunResult:
        opts = self.options
        tasks = opts.selected_tasks()
        manifest = new_manifest(
            suite=opts.suite, tasks=tasks, spec=self.spec, seed=opts.seed,
            usd_mad=opts.usd_mad, bootstrap=opts.bootstrap,
            selection=Selection(split=opts.split, varieties=opts.varieties, limit=opts.limit,
                                perturb=opts.perturb, shard=opts.shard,
                                sampling="stratified" if opts.limit is not None else None))
        writer = RunWriter(opts.out_dir, manifest)
        self.tally = RunTally(manifest, trivial=opts.trivial_baselines)
        started = time.perf_counter()
        hosting = self.spend.start_hosting(self.spec)
        status = "interrupted"
        workers = None
        try:
            workers = self._start_workers()
            for task in tasks:
                if workers is None:
                    await self._run_task(task, writer)
                else:
                    await self._take_task(task, writer, workers)
            status = self._final_status()
            await self.adapter.settle_identity()
        finally:
            if workers is not None:
                workers.close()
            self.spend.stop_hosting(hosting)
            manifest.wall_s = round(time.perf_counter() - started, 3)
            self._record_serving(manifest)
            if self.gate is not None:  # what concurrency: auto found
                manifest.model.serving = {**(manifest.model.serving or {}),
                                          "concurrency_auto": self.gate.summary()}
            if status == "interrupted":
                writer.abort(status)
        trivial: dict[str, float | None] | None = {} if opts.trivial_baselines else None
        _scoring_warmed()
        scores = compute_scores(manifest, self.tally, manifest.wall_s, trivial=trivial)
        writer.finish(scores, status)
        return RunResult(path=writer.dir, status=status, scores=scores, trivial=trivial)

    async def _start_task(self, task: Task) -> tuple[PromptRenderer, PromptKeys | None]:
        """Set the adapter up for ``task``: the task's prompt renderer, and its prompt keys
        when answers may come from the response cache."""
        context, renderer = task_setup(task, self.options.seed)
        await self.adapter.start_task(context)
        identity = self.adapter.identity()
        if self.adapter.identity_keys_cache and identity is not None:
            self.cache_key = sha256_json([self.spec.cache_hash, identity])
        keys = (PromptKeys(task, renderer, context.train, self.spec.tool_calling)
                if self.cache is not None and self.adapter.cacheable else None)
        return renderer, keys

    def _selected(self, task: Task) -> Iterator[Item]:
        """The task's items this run takes, in suite order."""
        opts = self.options
        shard = parse_shard(opts.shard) if opts.shard else None
        return task.items(opts.split, opts.varieties, opts.limit, seed=opts.seed, shard=shard)

    def _task_bar(self, task: Task) -> Any:
        # counting is a pass over the data file: only a progress bar needs the total
        return _progress_bar(f"{self.spec.name} · {task.name}",
                             lambda: sum(1 for _ in self._selected(task)),
                             self.options.progress, self.position)

    def _count(self, record: PredictionRecord, line: str | None, bar: Any) -> None:
        """Score a record written as ``line`` (``None``: it was read back from its line)
        and count it for the run's status and the progress bar."""
        self.tally.add(record, line)
        if not record.get("skipped"):
            self.sent += 1
            if record.get("error"):
                self.errors += 1
                self.first_error = self.first_error or str(record.get("error"))
        self.cached += bool(record.get("cached"))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(errors=self.errors,
                            spent=f"{self.spend.spent:.4f} {self.spend.currency}",
                            refresh=False)

    async def _take_task(self, task: Task, writer: RunWriter, workers: Workers) -> None:
        """Write and score the task's records as the worker processes send them."""
        bar = self._task_bar(task)
        currency = self.spec.pricing.currency
        try:
            async for lines, records in workers.records():
                writer.write_lines(lines)
                for record in records:
                    if not record.get("cached"):
                        self.spend.add(record["cost"], currency)
                    self._count(record, None, bar)
        finally:
            if bar is not None:
                bar.close()

    def _start_workers(self) -> Workers | None:
        """The worker processes that answer this model (``--processes``), if any: only a
        model answered in this process has them, and no more start than the run's items
        can keep busy."""
        opts = self.options
        if opts.processes == 1 or not self.adapter.answers_inline:
            return None
        from .processes import Workers, usable_cpus, worker_count

        count = worker_count(opts.processes, opts.limit,
                             len(opts.varieties or known_varieties()))
        if count > (cpus := usable_cpus()):
            warnings.warn(f"--processes {count} is more than the {cpus} CPU(s) this process "
                          f"may use: the workers will share them, and each loads the suite "
                          f"and builds the model itself; --processes {cpus} is as fast",
                          MoroccanEvalWarning, stacklevel=2)
        return Workers(self._jobs(count)) if count > 1 else None

    def _jobs(self, count: int) -> list[Job]:
        """The jobs of the ``count`` worker processes that run this model (``--processes``)."""
        opts = self.options
        # the rest is this process's: writing, scoring, progress, the spend cap
        settings: JSONObject = {name: getattr(opts, name)
                                for name in (*SELECTION_OPTIONS, "shard")}
        settings["cache_dir"] = None if opts.cache_dir is None else str(opts.cache_dir)
        return [{"path": sys.path, "suite": str(opts.suite.path),
                 "allow_unanonymized": opts.suite.allow_unanonymized,
                 "spec": self.spec.model_dump(mode="json"), "options": settings,
                 "index": index, "count": count} for index in range(count)]

    async def answers(self, task: Task, index: int, count: int
                      ) -> AsyncIterator[PredictionRecord]:
        """A worker process's share of the task (see :mod:`.processes`): the judged
        records of the items dealt to worker ``index`` of ``count``, one at a time, in
        order."""
        from .processes import dealt

        renderer, keys = await self._start_task(task)
        parser = task.task_type.parser()
        for entry in self._looked_up(dealt(self._selected(task), index, count), keys):
            prepared = self._prepare(task, entry, renderer)
            record = self._cached(prepared) or await self._execute(prepared)
            yield finalize_record(record, parser)

    async def _run_task(self, task: Task, writer: RunWriter) -> None:
        renderer, keys = await self._start_task(task)
        parser = task.task_type.parser()
        inline = self.adapter.answers_inline
        items = self._looked_up(self._selected(task), keys)
        bar = self._task_bar(task)

        def finish(record: PredictionRecord) -> None:
            self._count(record, writer.write(finalize_record(record, parser)), bar)

        def prepare_next(stream: Iterator[_Lookup]) -> _Prepared | None:
            entry = next(stream, None)
            return None if entry is None else self._prepare(task, entry, renderer)

        first_out = 0  # workers whose first request is on its way
        watches: list[asyncio.Task[None]] = []  # the wait for an idle loop, if started

        async def worker(stream: Iterator[_Lookup]) -> None:
            nonlocal first_out
            # Pipelined: request k is sent first, then record k-1 is written and prompt k+1
            # rendered while k is in flight. With many workers answered in the same instant,
            # this keeps local work off the critical path of the next request. The first
            # request's successor is rendered once it is answered: before, it would delay
            # the workers starting after this one (c = 256: their first requests spread
            # over 130 ms, against 150 ms)
            upcoming = prepare_next(stream)
            done: PredictionRecord | None = None
            streak = 0
            while upcoming is not None:
                hit = self._cached(upcoming)
                if hit is not None or inline:
                    # answered from the cache, or computed right here (nothing to overlap):
                    # no task, no turn of the loop per item (a cached re-run is this path
                    # 20,000 times), but a turn now and then so that live requests of
                    # other workers are not held up and Ctrl-C is heard
                    # (the turn is taken before the next item is: a worker holding one
                    # while the others take theirs would write it thousands of lines late)
                    finish(hit if hit is not None else await self._execute(upcoming))
                    streak += 1
                    if streak % 64 == 0:
                        await asyncio.sleep(0)
                    upcoming = prepare_next(stream)
                    continue
                call = asyncio.create_task(self._execute(upcoming))
                for _ in range(2):  # let every worker's request go out before local work
                    await asyncio.sleep(0)
                if done is not None:
                    finish(done)
                    upcoming = prepare_next(stream)
                    done = await call
                    continue
                first_out += 1
                if first_out == workers:
                    watches.append(asyncio.create_task(_warm_up_once_idle()))
                done = await call
                _warm_up_meanwhile()  # at the latest (fewer items than workers)
                upcoming = prepare_next(stream)
            if done is not None:
                finish(done)

        workers = self.spec.limits.in_flight  # a worker finding the stream empty ends
        started: list[asyncio.Task[None]] = []
        try:
            # a turn of the loop apart, so that each worker's first request goes out once
            # its own connection is open: started at once, the 256 workers of c = 256 opened
            # every connection before the first request (0.15 s more start-up), and the
            # first answers all came back in the same instant
            for _ in range(workers):
                started.append(asyncio.create_task(worker(items)))
                await asyncio.sleep(0)
            await asyncio.gather(*started)
        finally:
            for watch in [*watches, *started]:
                watch.cancel()
            if bar is not None:
                bar.close()

    def _looked_up(self, items: Iterator[Item], keys: PromptKeys | None) -> Iterator[_Lookup]:
        """The items (perturbed), each with what the response cache holds for its prompt
        key: one query per chunk of items, instead of a rendering and a query per item."""
        perturb, seed = self.options.perturb, self.options.seed
        cache = self.cache
        for size in _chunk_sizes():
            chunk = [perturb_item(item, perturb, seed) for item in islice(items, size)]
            if not chunk:
                return
            if keys is None or cache is None:
                yield from (_Lookup(item, None, None, None) for item in chunk)
                continue
            prompts = [keys.of(item) for item in chunk]
            found = cache.lookup(self.cache_key, [p for p in prompts if p is not None])
            for item, prompt in zip(chunk, prompts, strict=True):
                request_hash, hit = found.get(prompt, (None, None)) if prompt else (None, None)
                yield _Lookup(item, prompt, request_hash, hit)

    def _prepare(self, task: Task, entry: _Lookup, renderer: PromptRenderer) -> _Prepared:
        item, prompt, request_hash, hit = entry
        request: Request | None = None
        if request_hash is None or hit is None:  # not found by its prompt key: render it
            request = build_request(task, renderer, item, self.spec.tool_calling)
            request_hash = request.hash()
            if self.cache is not None and self.adapter.cacheable:
                hit = self.cache.get(self.cache_key, request_hash)
                if hit is not None and prompt is not None:
                    self.cache.remember(prompt, request_hash)  # found next time by its key
        record: PredictionRecord = {
            "id": item["id"], "group": item["group"], "task": task.name,
            "variety": item["variety"], "split": item["split"], "fields": item["fields"],
            "reference": item["reference"], "request_hash": request_hash,
        }
        if task.spec.tools:
            record["tool_mode"] = self.spec.tool_calling
        if (key := task.spec.breakdown_key) is not None:  # scored per value of it
            record["meta"] = {key: (item.get("meta") or {}).get(key)}
        return _Prepared(request, request_hash, record, prompt, hit)

    def _cached(self, prepared: _Prepared) -> PredictionRecord | None:
        """The record of an item whose answer the response cache holds, else ``None``."""
        if prepared.hit is None:
            return None
        return self._record(prepared.record, prepared.hit, cached=True)

    async def _execute(self, prepared: _Prepared) -> PredictionRecord:
        """Send an item's request (not in the cache) and store the answer."""
        request, request_hash, record, prompt, _ = prepared
        assert request is not None  # only an item answered from the cache is not rendered
        cache = self.cache if self.adapter.cacheable else None
        if self.spend.exhausted:
            return {**record, "output": None, "parsed": None, "skipped": True,
                    "error": "skipped: the --max-cost spend cap was reached"}
        response, error, attempts = await send(self.adapter, request, self.spec,
                                               self.limiter, self.canary)
        done = self._record(record, response, cached=False, error=error, attempts=attempts)
        if response is not None:
            if cache is not None:
                await cache.aput(self.cache_key, request_hash, response, prompt)
            self.spend.add(done["cost"], self.spec.pricing.currency)
        return done

    def _record(self, record: PredictionRecord, response: Response | None, *, cached: bool,
                error: str | None = None, attempts: int = 0) -> PredictionRecord:
        return {
            **record,
            "output": response.text if response else None,
            "tool_calls": response.tool_calls if response and response.tool_calls else None,
            "parsed": None,
            "latency_ms": round(response.latency_ms, 3) if response else None,
            "input_tokens": response.input_tokens if response else 0,
            "output_tokens": response.output_tokens if response else 0,
            "cost": (self.spec.pricing.token_cost(response.input_tokens, response.output_tokens)
                     if response else 0.0),
            "error": error,
            "cached": cached,
            "attempts": attempts,
        }

    def _record_serving(self, manifest: Manifest) -> None:
        """Put the adapter's view of its serving side into the manifest, and warn when it
        changed since this model's cached answers were stored."""
        identity, measurements = self.adapter.identity(), self.adapter.measurements()
        if identity is None and not measurements:
            return
        manifest.model.serving = {"identity": identity, "measurements": measurements}
        if identity is None or self.cache is None or not self.adapter.cacheable:
            return
        try:
            before = self.cache.swap_identity(self.cache_key, identity)
        except RunError:  # called while a run ends, maybe on an error: never mask it
            return
        cached = self.cached
        if before is not None and cached:
            warnings.warn(
                f"model '{self.spec.name}': what serves it changed since its answers were "
                f"cached ({_difference(before, identity)}); {cached} answer(s) of this run "
                "came from the cache and may be stale: re-run with --no-cache",
                MoroccanEvalWarning, stacklevel=2)

    def _final_status(self) -> str:
        """``failed: …`` when no request succeeded or more failed than allowed, ``stopped:
        …`` when the spend cap cut the run short, else ``complete``."""
        sent, failed = self.sent, self.errors
        if sent and failed == sent:
            return (f"failed: no request succeeded ({failed} of {sent} failed); "
                    f"first error: {self.first_error}")
        limit = self.options.max_error_rate
        if limit is not None and sent and failed / sent > limit:
            return (f"failed: {failed} of {sent} requests failed "
                    f"({100 * failed / sent:.1f}%), above --max-error-rate "
                    f"{100 * limit:g}%; first error: {self.first_error}")
        return "stopped: spend cap reached" if self.spend.exhausted else "complete"


#: The RunOptions fields that choose a run's items and how they are rendered and priced
#: (JSON values): what a run in another process takes along, a worker of ``--processes``
#: (with the shard) or a Ray task (with what it scores by itself).
SELECTION_OPTIONS = ("tasks", "varieties", "limit", "split", "seed", "currency", "usd_mad",
                     "perturb")


def work() -> None:
    """The main of a worker process of ``run --processes`` (see :mod:`.processes`)."""
    from .processes import serve

    serve(_answer_share)


async def _answer_share(job: Job, send: Outbox) -> None:
    """Run a worker's share of its model's run: every task's items dealt to it."""
    from ..suites.loader import load_suite

    suite = load_suite(job["suite"], allow_unanonymized=job["allow_unanonymized"])
    settings = dict(job["options"])
    cache_dir = settings.pop("cache_dir")
    options = RunOptions(suite=suite, out_dir=Path(), progress=False,
                         cache_dir=None if cache_dir is None else Path(str(cache_dir)),
                         **settings)  # type: ignore[arg-type]
    spec = ModelSpec.model_validate(job["spec"])
    adapter = build_adapter(spec)
    cache = ResponseCache(options.cache_dir) if options.cache_dir else None
    model = _ModelRun(options, spec, adapter, cache,
                      SpendTracker(None, options.currency, options.usd_mad), 0)
    try:
        for task in options.selected_tasks():
            await send(model.answers(task, job["index"], job["count"]))
    finally:
        await adapter.aclose()
        if cache is not None:
            cache.close()


def _chunk_sizes() -> Iterator[int]:
    yield from _LOOKUP_CHUNKS
    while True:
        yield _LOOKUP_CHUNKS[-1]


def _difference(before: JSONObject, now: JSONObject, prefix: str = "") -> str:
    """The first few fields where two identities differ, by dotted path."""
    paths = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _difference(a, b, f"{prefix}{key}.")
            paths += [inner] if inner else []
        elif a != b:
            paths.append(f"{prefix}{key}")
    return ", ".join(paths[:3])


def _progress_bar(label: str, count: Callable[[], int], enabled: bool | None,
                  position: int) -> Any:
    if enabled is False or (enabled is None and not sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=count(), desc=label, unit="item", position=position, leave=True,
                file=sys.stderr, dynamic_ncols=True)


def _check_selection(options: RunOptions) -> None:
    """Refuse, before anything is written, a selection that would make a run of no item or
    crash its scoring."""
    if options.seed < 0:  # numpy's generators take no negative seed
        raise ConfigError(f"--seed: {options.seed} is not a seed (0 or more)")
    tasks = options.selected_tasks()
    # rows(split) skips most other lines unparsed, and any() stops at the first item
    if not any(row["split"] == options.split for task in tasks
               for row in task.table.rows(options.split)):
        splits = sorted({str(row["split"]) for task in tasks for row in task.table.rows()})
        raise RunError(f"no {options.split} items in {', '.join(t.name for t in tasks)}; "
                       f"the split(s) there: {', '.join(splits)}")
    if options.varieties:
        for task in tasks:
            missing = set(options.varieties) - set(task.varieties(options.split))
            if missing:
                raise RunError(
                    f"task '{task.name}' has no {options.split} items in variety "
                    f"{', '.join(sorted(missing))}; it has {', '.join(task.varieties())}")


async def run_async(options: RunOptions, specs: list[ModelSpec]) -> list[RunResult]:
    """Run every selected task of the suite on every model, models side by side."""
    _check_selection(options)
    if options.concurrency:
        specs = [spec.model_copy(update={"limits": spec.limits.model_copy(
            update={"concurrency": options.concurrency})}) for spec in specs]
    adapters = [build_adapter(spec) for spec in specs]  # fails early: bad options, no key
    if options.processes > 1:
        if not any(adapter.answers_inline for adapter in adapters):
            warnings.warn("--processes: no model here is answered in this process (HTTP "
                          "models and async or threaded functions overlap their waits "
                          "already); every model runs in this process", MoroccanEvalWarning,
                          stacklevel=2)
        elif options.max_cost is not None:
            raise ConfigError("--max-cost cannot cap models run in worker processes "
                              "(--processes): each would count its own spend; leave one out")
    cache = ResponseCache(options.cache_dir) if options.cache_dir else None
    spend = SpendTracker(options.max_cost, options.currency, options.usd_mad)
    runs = [_ModelRun(options, spec, adapter, cache, spend, position)
            for position, (spec, adapter) in enumerate(zip(specs, adapters, strict=True))]
    try:
        return list(await asyncio.gather(*(run.run() for run in runs)))
    finally:
        for adapter in adapters:
            await adapter.aclose()
        if cache is not None:
            cache.close()


async def _warm_up_once_idle() -> None:
    """:func:`_warm_up_meanwhile` once the loop is idle (a 1 ms sleep wakes up on time),
    waiting on answers. Every worker's first request is on its way then, on the wire: a
    new connection takes the loop several turns, and a warm-up started at once took the
    GIL from them (the last of 256 first requests went out 15-30 ms later)."""
    loop = asyncio.get_running_loop()
    while _warm_up is None:
        asleep = loop.time()
        await asyncio.sleep(0.001)
        if loop.time() - asleep < 0.003:
            _warm_up_meanwhile()


def _warm_up_meanwhile() -> None:
    """Import numpy and build the scores' models (built on first use), which scoring needs
    once the last answer is in, in a thread while requests are in flight (started once
    every worker's first request is out and the loop waits on answers; at the first
    answer at the latest), so that they are off the run's end (about 0.1 s). numpy
    imports nothing of the toolkit, so the thread cannot wait on a module the loop's
    thread is importing."""
    global _warm_up
    if _warm_up is None:
        _warm_up = threading.Thread(target=_warm_up_scoring, name="warm up scoring",
                                    daemon=True)
        _warm_up.start()


def _warm_up_scoring() -> None:
    with suppress(ImportError):  # scoring's own import says so, as one error
        import numpy  # noqa: F401
    for model in (RunScores, TaskScores, VarietyScore, MetricScore, Delta, Usage, Breakdown):
        model.model_rebuild()


def _scoring_warmed() -> None:
    """Wait for the warm-up, if one started: a model is never built by two threads."""
    if _warm_up is not None:
        _warm_up.join()


_warm_up: threading.Thread | None = None


def run(options: RunOptions, specs: list[ModelSpec]) -> list[RunResult]:
    """Run models on a suite (synchronous entry point of :func:`run_async`). SIGTERM stops
    it like SIGINT: unfinished runs are marked ``interrupted``, then :class:`Interrupted`."""
    try:
        # A run makes hundreds of thousands of short-lived dicts and few cycles: in a
        # cached re-run of 20,000 items, collections took 0.18 s of 2 s, 0.07 s this way.
        with collector.rarer(10_000, freeze=True):
            return asyncio.run(_terminable(run_async(options, specs)))
    except MoroccanEvalError:
        raise
    except OSError as exc:
        raise RunError(f"run failed: {exc}") from None


async def _terminable(work: Coroutine[Any, Any, list[RunResult]]) -> list[RunResult]:
    """``work``, cancelled by SIGTERM (the signal a container or job scheduler sends)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, terminate)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, Windows
        return await task
    try:
        return await task
    except asyncio.CancelledError:
        if terminated:
            raise Interrupted("interrupted by SIGTERM; re-run the same command to resume "
                              "from the cache") from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
