"""Verifying a vendor's or a submitter's results.

Offline checks, from the run directory and the locally installed suite only:

- **scores**: re-parse every stored raw output and recompute everything in ``scores.json``
  (every metric, interval and paired delta, latency percentiles, token and request counts,
  cost); it must be equal;
- **usage**: each record's cost must follow from its tokens at the manifest's prices;
- **signatures**: each task's signature must be the one its manifest implies;
- **suite**: the suite named in the manifest, installed here, must have the same version,
  content hash and task file hashes;
- **items**: exactly one prediction per item of the selection the run claims: no duplicate
  (the last line would otherwise win), no missing item (no dropped hard items), no extra;
  each with the suite's reference and input;
- **prompts**: every stored request hash must equal the hash of the request rebuilt from
  the suite's prompt templates (the model was asked what the suite asks).

Online, with ``endpoint``: a seeded random sample of items is sent twice to the vendor's
live endpoint. Its agreement with itself (batching and sampling make even temperature-0
servers vary) is the baseline: the stored answers fail when they agree with the live ones
significantly less (one-sided 5% test). The check states the smallest doctored share that
test would catch at the measured self-agreement, and how likely a sample of that size is to
catch a run with 1%, 5% or 10% of answers doctored were the endpoint deterministic (what the
offline checks cannot see: an answer replaced in place).
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, TypedDict

from .adapters import build_adapter
from .adapters.base import ModelSpec, TaskContext
from .canary import Canary
from .costing import Pricing
from .errors import ConfigError, MoroccanEvalError
from .io import JSONValue
from .perturb import perturb_item
from .prompts import PromptRenderer
from .records import PredictionRecord, Signature
from .runs.requests import RateLimiter, build_request, send, task_setup
from .runs.rundir import ItemKey, RecordsByItem, Run
from .runs.scoring import RunTally, compute_scores, reparse
from .suites.loader import Suite, Task, load_suite
from .suites.schema import Item

TOLERANCE = 1e-6
SHOWN = 5  # mismatches listed per check


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


class Agreement(TypedDict):
    """How a vendor's live endpoint answered a re-queried sample, asked twice: its
    agreement with itself is the baseline the stored answers are judged against."""

    model: str
    sampled: int
    answered: int  # sampled items the endpoint answered on the first pass
    agree: int  # stored answers equal to the first live answer
    self_agree: int  # second live answers equal to the first
    errors: int
    rate: float | None
    self_rate: float | None
    detectable: float | None  # smallest doctored share this sample would catch
    disagreements: list[str]


@dataclass
class Verification:
    """The outcome of verifying one run."""

    run: Run
    checks: list[Check] = field(default_factory=list)
    agreement: Agreement | None = None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {
            "run": str(self.run.path), "ok": self.ok,
            "checks": [asdict(check) for check in self.checks],
            "agreement": self.agreement,
        }


def parse_sample(text: str) -> float | int:
    """``"5%"`` or ``"0.05"`` → a fraction; ``"20"`` (a whole number) → a number of
    items."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text)
    if not match:
        raise ConfigError(f"--sample: '{text}' is not a share (5%, 0.05) or a count (20)")
    number, percent = match.groups()
    if not percent and "." not in number and int(number) >= 1:
        return int(number)  # a whole number: a count of items
    value = float(number) / (100 if percent else 1)
    if not 0 < value <= 1:
        raise ConfigError(f"--sample: '{text}' must be more than 0% and at most 100% (a "
                          "share), or a whole number of items")
    return value


def detection_probability(population: int, sample: int, doctored: int) -> float:
    """The chance that a uniform sample of ``sample`` of ``population`` answers contains at
    least one of ``doctored`` altered answers (hypergeometric: 1 − C(N−K, n) / C(N, n))."""
    if doctored <= 0 or sample <= 0:
        return 0.0
    if sample > population - doctored:
        return 1.0
    missed = 1.0
    for i in range(sample):
        missed *= (population - doctored - i) / (population - i)
    return 1.0 - missed


def power_statement(population: int, sample: int) -> str:
    """What a re-queried sample of this size can catch, in words."""
    shares = [(share, detection_probability(population, sample,
                                            max(1, math.ceil(share * population))))
              for share in (0.01, 0.05, 0.10)]
    return (f"a sample of {sample} of {population} answers catches "
            + "; ".join(f"{100 * share:.0f}% of answers doctored with probability "
                        f"{100 * p:.0f}%" for share, p in shares))


def _walk(claimed: JSONValue, actual: JSONValue, path: str) -> Iterator[str]:
    """Paths where two score trees differ (numbers compared within ``TOLERANCE``)."""
    if isinstance(claimed, dict) and isinstance(actual, dict):
        for key in sorted(set(claimed) | set(actual)):
            if key not in claimed or key not in actual:
                yield f"{path}/{key}: present in only one of claimed and recomputed"
            else:
                yield from _walk(claimed[key], actual[key], f"{path}/{key}")
    elif isinstance(claimed, list) and isinstance(actual, list) and len(claimed) == len(actual):
        for i, (a, b) in enumerate(zip(claimed, actual, strict=True)):
            yield from _walk(a, b, f"{path}[{i}]")
    elif isinstance(claimed, int | float) and isinstance(actual, int | float) \
            and not isinstance(claimed, bool):
        if not math.isclose(claimed, actual, abs_tol=TOLERANCE):
            yield f"{path}: claimed {claimed}, recomputed {actual}"
    elif claimed != actual:
        yield f"{path}: claimed {claimed!r}, recomputed {actual!r}"


#: Characters of one problem shown: a doctored file may hold values of any length.
PROBLEM_CHARS = 300


def summarize_problems(problems: Sequence[str]) -> str:
    """The first problems joined (each cut to :data:`PROBLEM_CHARS`), and how many more
    there are."""
    more = f" (+{len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    shown = [p if len(p) <= PROBLEM_CHARS else p[:PROBLEM_CHARS - 1] + "…"
             for p in problems[:SHOWN]]
    return "; ".join(shown) + more


def _check_scores(run: Run, tally: RunTally, count: int) -> Check:
    """Everything in ``scores.json`` (metrics, intervals, deltas, details, latency, tokens,
    cost) recomputed from the stored records (``tally``: the ``count`` of them, as read);
    the signature has its own check."""
    recomputed = compute_scores(run.manifest, tally, run.manifest.wall_s)
    unsigned = {name: {"signature": ""} for name in run.manifest.tasks}
    claimed = run.scores.model_copy(update={"tasks": {
        name: entry.model_copy(update=unsigned.get(name, {}))
        for name, entry in run.scores.tasks.items()}})
    actual = recomputed.model_copy(update={"tasks": {
        name: entry.model_copy(update=unsigned[name]) for name, entry in recomputed.tasks.items()}})
    # the same code on the same draws gives the same floats: equal models (quick), else the
    # files' JSON walked for the differences (it finds none in equal trees)
    problems = [] if claimed == actual else list(_walk(claimed.to_json(), actual.to_json(), ""))
    if problems:
        return Check("scores", False, summarize_problems([p.lstrip("/") for p in problems]))
    return Check("scores", True, f"recomputed from {count} stored raw outputs; every "
                 "metric, interval, latency percentile and cost matches")


def _usage_problems(pricing: Pricing, rec: PredictionRecord) -> Iterator[str]:
    """Why a record's cost does not follow from its tokens at the manifest's prices, or its
    latency and token counts are not plausible (nothing when they are)."""
    tokens_in, tokens_out = rec.get("input_tokens") or 0, rec.get("output_tokens") or 0
    latency = rec.get("latency_ms")
    if min(tokens_in, tokens_out) < 0 or (latency is not None and latency < 0):
        yield f"{rec['id']}: negative latency or token count"
    expected = pricing.token_cost(tokens_in, tokens_out)
    cost = rec.get("cost") or 0.0
    if not math.isclose(cost, expected, rel_tol=1e-9, abs_tol=TOLERANCE):
        yield (f"{rec['id']}: cost {cost} does not follow from its tokens "
               f"({tokens_in} in, {tokens_out} out: {expected:.6g})")


def _check_usage(problems: list[str]) -> Check:
    if problems:
        return Check("usage", False, summarize_problems(problems))
    return Check("usage", True, "every cost follows from its tokens at the manifest's prices")


def _check_signatures(run: Run) -> Check:
    problems = []
    for task, entry in run.scores.tasks.items():
        if task not in run.manifest.tasks:
            continue
        expected = str(Signature.of(run.manifest, task))
        if entry.signature != expected:
            problems.append(f"{task}: claimed '{entry.signature}', expected '{expected}'")
    if problems:
        return Check("signatures", False, summarize_problems(problems))
    return Check("signatures", True, "match the manifest")


def _check_suite(run: Run, suite_ref: str | Suite | None) -> tuple[Check, Suite | None]:
    claimed = run.manifest.suite
    try:
        suite = suite_ref if isinstance(suite_ref, Suite) else load_suite(
            suite_ref or claimed.name)
    except MoroccanEvalError as exc:
        reason = str(exc).splitlines()[0]
        return Check("suite", False, f"cannot load the suite here: {reason}"), None
    problems = []
    if suite.version != claimed.version:
        problems.append(f"version: run has {claimed.version}, installed {suite.version}")
    if suite.sha256 != claimed.sha256:
        problems.append(f"content hash: run has {claimed.sha256[:12]}, installed "
                        f"{suite.sha256[:12]} (data or task files differ)")
    for task, info in run.manifest.tasks.items():
        if task not in suite.tasks:
            problems.append(f"task '{task}' is not in the installed suite")
        elif suite.spec.checksums.get(f"tasks/{task}.yaml") != info.sha256:
            problems.append(f"tasks/{task}.yaml differs from the run's")
    if problems:
        return Check("suite", False, summarize_problems(problems)), suite
    return Check("suite", True, f"{suite.ident} matches the installed suite"), suite


Setups = dict[str, tuple[Task, TaskContext, PromptRenderer]]


class Expected(NamedTuple):
    """An item of the selection (perturbed as the run was) and its request's hash."""

    key: ItemKey
    item: Item
    request_hash: str


#: Selections of at most this many items are kept by :class:`Expectations` for the next
#: run verified against them (a leaderboard's many runs of one suite); larger ones are
#: rebuilt per run, streamed, so that no run's verification holds every item.
KEPT_ITEMS = 20_000


class Expectation:
    """What a suite expects of a run: per task its context and renderer (``setups``), and
    the items of the selection with their request hashes, streamed in suite order; with
    ``keep``, kept once streamed if they are at most :data:`KEPT_ITEMS`."""

    def __init__(self, run: Run, suite: Suite, *, keep: bool = False):
        self.manifest = run.manifest
        self.setups: Setups = {
            name: (suite.tasks[name], *task_setup(suite.tasks[name], self.manifest.seed))
            for name in self.manifest.tasks}
        self._keep = keep
        self._kept: list[Expected] | None = None

    def __iter__(self) -> Iterator[Expected]:
        if self._kept is not None:
            yield from self._kept
            return
        kept: list[Expected] | None = [] if self._keep else None
        for entry in self._built():
            if kept is not None:
                kept.append(entry)
                if len(kept) > KEPT_ITEMS:
                    kept = None
            yield entry
        self._kept = kept

    def _built(self) -> Iterator[Expected]:
        manifest, selection = self.manifest, self.manifest.selection
        for name, (task, _, renderer) in self.setups.items():
            for suite_item in task.items(selection.split, selection.varieties, selection.limit,
                                         seed=manifest.seed, sampling=selection.sampling,
                                         shard=selection.shard_part):
                item = perturb_item(suite_item, selection.perturb, manifest.seed)
                request = build_request(task, renderer, item, manifest.model.spec.tool_calling)
                yield Expected((name, item["id"]), item, request.hash())


class Expectations:
    """Expectations built once per suite, task set, seed, selection and tool mode, and
    shared by every run verified against the same suite (a leaderboard of many runs)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, ...], Expectation] = {}

    def of(self, run: Run, suite: Suite) -> Expectation:
        manifest = run.manifest
        key = (str(suite.path), suite.sha256, *manifest.tasks, str(manifest.seed),
               manifest.selection.model_dump_json(), manifest.model.spec.tool_calling)
        if key not in self._known:
            self._known[key] = Expectation(run, suite, keep=True)
        return self._known[key]


class _Read:
    """What verification takes of each record as it is read, in file order: the tally the
    scores are recomputed from, and its cost checked."""

    def __init__(self, run: Run):
        self.tally = RunTally(run.manifest)
        self.count = 0
        self.usage_problems: list[str] = []
        self._pricing = run.manifest.model.spec.pricing

    def __call__(self, record: PredictionRecord) -> None:
        self.tally.add(record)
        self.count += 1
        self.usage_problems.extend(_usage_problems(self._pricing, record))


def _check_items_and_prompts(expected: Expectation, stored: RecordsByItem,
                             population: list[ItemKey] | None) -> list[Check]:
    """Each item of the selection against its first record, in suite order; then the
    records no item took (repeats, or not items of the selection). ``population`` gets the
    items whose record holds an answer (the endpoint check's population), if given."""
    item_problems, prompt_problems, missing = [], [], []
    count = 0
    for key, item, request_hash in expected:
        count += 1
        rec = stored.take(key)
        if rec is None:
            missing.append(key[1])
            continue
        if population is not None and not rec.get("error"):
            population.append(key)
        for field_name in ("reference", "variety", "group", "fields"):
            if rec.get(field_name) != item.get(field_name):
                item_problems.append(f"{rec['id']}: {field_name} differs from the suite's")
        if rec.get("request_hash") != request_hash:
            prompt_problems.append(f"{rec['id']}: the stored request is not the suite's prompt")
    left = stored.left()
    if left or stored.repeated:
        selection = {entry.key for entry in expected if entry.key in left}
        repeated = sorted(k[1] for k in stored.repeated | selection)
        item_problems += [f"{key[1]}: not an item of the claimed selection"
                          for key in sorted(left - selection)]
        if repeated:  # the last line would win when scored: one item, one answer
            item_problems.insert(0, f"{len(repeated)} item(s) predicted more than once, "
                                 f"e.g. {', '.join(repeated[:SHOWN])}")
    if missing:
        missing.sort()
        item_problems.append(f"{len(missing)} item(s) of the selection have no prediction, "
                             f"e.g. {', '.join(missing[:SHOWN])}")
    return [
        Check("items", not item_problems, summarize_problems(item_problems) if item_problems else
              f"all {count} items of the selection, with the suite's references"),
        Check("prompts", not prompt_problems, summarize_problems(prompt_problems) if prompt_problems
              else "every request hash matches the suite's prompt templates"),
    ]


LiveAnswers = dict[ItemKey, JSONValue]


async def _ask(setups: Setups, spec: ModelSpec, keys: list[ItemKey],
               items: dict[ItemKey, Item], stored: dict[ItemKey, PredictionRecord]
               ) -> tuple[LiveAnswers, LiveAnswers, list[str]]:
    """The sample sent twice to the live endpoint: both passes' parsed answers (keys whose
    request failed are missing) and the errors."""
    adapter = build_adapter(spec)
    limiter = RateLimiter(spec.limits.requests_per_minute)
    canary = Canary()
    gate = asyncio.Semaphore(spec.limits.nominal)
    passes: tuple[LiveAnswers, LiveAnswers] = ({}, {})
    errors: list[str] = []
    try:
        for _, context, _ in setups.values():
            await adapter.start_task(context)
        parsers = {name: task.task_type.parser() for name, (task, _, _) in setups.items()}

        async def one(key: ItemKey, answers: LiveAnswers) -> None:
            task, _, renderer = setups[key[0]]
            request = build_request(task, renderer, items[key], spec.tool_calling)
            async with gate:
                response, error, _ = await send(adapter, request, spec, limiter, canary)
            if response is None:
                errors.append(f"{key[1]}: endpoint error {error}")
                return
            answers[key] = parsers[key[0]].parse_response({
                **stored[key], "output": response.text, "tool_calls": response.tool_calls,
                "tool_mode": spec.tool_calling, "error": None})

        for answers in passes:  # one pass after the other: a second look, not a duplicate
            await asyncio.gather(*(one(key, answers) for key in keys))
    finally:
        await adapter.aclose()
    return passes[0], passes[1], errors


Z_95 = 1.645  # one-sided 5%


def _significantly_below(claimed: float, baseline: float, n: int) -> bool:
    """Whether an agreement rate is below the endpoint's self-agreement by more than
    sampling noise (two-proportion z-test, one-sided 5%, pooled variance)."""
    pooled = (claimed + baseline) / 2
    spread = math.sqrt(pooled * (1 - pooled) * 2 / n) if n else 0.0
    return claimed < baseline if spread == 0 else (baseline - claimed) / spread > Z_95


def detectable_share(self_rate: float, n: int) -> float | None:
    """The smallest share of doctored stored answers this test would flag: doctoring a
    share f lowers the expected agreement from s to s·(1 − f)."""
    for percent in range(1, 101):
        if _significantly_below(self_rate * (1 - percent / 100), self_rate, n):
            return percent / 100
    return None


def _agreement(spec: ModelSpec, keys: list[ItemKey], stored: dict[ItemKey, PredictionRecord],
               first: LiveAnswers, second: LiveAnswers, errors: list[str]) -> Agreement:
    answered = [k for k in keys if k in first]
    twice = [k for k in answered if k in second]
    agree = sum(1 for k in answered if first[k] == stored[k].get("parsed"))
    self_agree = sum(1 for k in twice if first[k] == second[k])
    self_rate = self_agree / len(twice) if twice else None
    disagreements = [f"{k[1]}: stored {stored[k].get('parsed')!r}, live {first[k]!r}"
                     for k in answered if first[k] != stored[k].get("parsed")]
    return {"model": spec.name, "sampled": len(keys), "answered": len(answered), "agree": agree,
            "self_agree": self_agree, "errors": len(errors),
            "rate": agree / len(answered) if answered else None, "self_rate": self_rate,
            "detectable": detectable_share(self_rate, len(answered))
            if self_rate is not None else None,
            "disagreements": sorted(errors + disagreements)[:SHOWN]}


def _endpoint_check(agreement: Agreement, min_agreement: float | None, power: str) -> Check:
    rate, self_rate = agreement["rate"], agreement["self_rate"]
    n = agreement["answered"]
    shown = f"{agreement['agree']} of {agreement['sampled']} sampled answers agree"
    if rate is None or self_rate is None:
        return Check("endpoint", False, f"{shown}: the endpoint answered none of them; "
                     + summarize_problems(agreement["disagreements"]))
    if min_agreement is not None:
        ok = rate >= min_agreement
        rule = f"required {100 * min_agreement:.0f}% (--min-agreement)"
    else:
        ok = not _significantly_below(rate, self_rate, n)
        rule = (f"the endpoint agrees with itself on {agreement['self_agree']} "
                f"({100 * self_rate:.1f}%); "
                + ("not significantly less" if ok else "significantly less (one-sided 5%)"))
    detectable = agreement["detectable"]
    reach = (f"at this self-agreement, a doctored share of {100 * detectable:.0f}% or more "
             "would be detected" if detectable is not None else
             "this sample is too small to detect any doctored share")
    detail = f"{shown} ({100 * rate:.1f}%); {rule}; {reach}; {power}"
    if agreement["disagreements"]:
        detail += "; " + summarize_problems(agreement["disagreements"])
    return Check("endpoint", ok, detail)


def verify_run(
    run: Run, *, suite_ref: str | Suite | None = None, endpoint: ModelSpec | None = None,
    sample: float | int = 0.05, seed: int = 0, min_agreement: float | None = None,
    expectations: Expectations | None = None,
) -> Verification:
    """Check a run's claims offline and, with ``endpoint``, against the live model.
    ``suite_ref``: the suite to check against (a name, a folder or a loaded suite; default:
    the one the manifest names, installed here); ``expectations``: shared between runs
    verified against the same suite. The endpoint is asked twice: stored answers must not
    agree with it significantly less than it agrees with itself (or at least
    ``min_agreement``, when given)."""
    result = Verification(run)
    read = _Read(run)
    stored = RecordsByItem(reparse(run.manifest, run.predictions()), on_read=read)
    suite_check, suite = _check_suite(run, suite_ref)
    later: list[Check] = [_check_signatures(run), suite_check]
    population: list[ItemKey] | None = [] if endpoint is not None else None
    expected: Expectation | None = None
    if suite is None or not suite_check.ok:
        later.append(Check("items", False, "not checked: the suite does not match"))
    else:
        expected = (expectations.of(run, suite) if expectations is not None
                    else Expectation(run, suite))
        later += _check_items_and_prompts(expected, stored, population)
    stored.left()  # every record read: scored, its cost checked
    result.checks = [_check_scores(run, read.tally, read.count),
                     _check_usage(read.usage_problems), *later]
    if expected is None or endpoint is None or population is None:
        return result
    population.sort()
    answered = len(population)
    size = sample if isinstance(sample, int) else math.ceil(sample * answered)
    keys = random.Random(seed).sample(population, min(size, answered))
    wanted = set(keys)
    items = {entry.key: entry.item for entry in expected if entry.key in wanted}
    answers: dict[ItemKey, PredictionRecord] = {}
    for record in reparse(run.manifest, run.predictions()):
        if (record["task"], record["id"]) in wanted:
            answers.setdefault((record["task"], record["id"]), record)
    first, second, errors = asyncio.run(_ask(expected.setups, endpoint, keys, items, answers))
    result.agreement = _agreement(endpoint, keys, answers, first, second, errors)
    result.checks.append(_endpoint_check(result.agreement, min_agreement,
                                         power_statement(answered, len(keys))))
    return result
