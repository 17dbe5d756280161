"""What the command modules share: examples in help texts, option types, the constraint
options of ``report`` and ``recommend``, reading runs, printing scores."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import MoroccanEvalError

if TYPE_CHECKING:
    from ..analysis.recommendation import Constraints
    from ..records import MetricScore
    from ..runs.rundir import Run
    from ..runs.runner import RunResult
    from ..verify import Check

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = {
    "demo": "moroccan-eval demo --out demo-out\n"
            "  moroccan-eval demo --suite support-intents --limit 10",
    "run": (
        "moroccan-eval run --suite support-intents --model char-ngram --out runs\n"
        "  moroccan-eval run --suite support-intents --model models/ollama-qwen.yaml "
        "--variety ary_Latn --variety arb_Arab --limit 20\n"
        "  moroccan-eval run --suite support-intents --model char-ngram --shard 0/4 --out shards"
    ),
    "merge": "moroccan-eval merge shards/* --out runs",
    "report": (
        "moroccan-eval report runs/* -o report.html\n"
        "  moroccan-eval report runs/* -o rapport.html --lang fr --pdf "
        "--min-variety ary_Arab=0.75 --max-p95-ms 1500"
    ),
    "recommend": (
        "moroccan-eval recommend runs/* --min-score 0.8 --min-variety ary_Arab=0.75 "
        "--max-p95-ms 1500 --max-cost-per-1k 5\n"
        "  moroccan-eval recommend runs/* --min-score 0.8 --strict --json"
    ),
    "compare": "moroccan-eval compare runs/RUN_A runs/RUN_B",
    "verify": (
        "moroccan-eval verify vendor-submission/\n"
        "  moroccan-eval verify runs/RUN --endpoint models/vendor.yaml --sample 5%"
    ),
    "export": "moroccan-eval export runs/* --what scores --format csv -o scores.csv",
    "rescore": "moroccan-eval rescore runs/20261124T101500Z-support-intents-char-ngram-1a2b3c",
    "suites": (
        "moroccan-eval suites list\n  moroccan-eval suites show support-intents --json\n"
        "  moroccan-eval suites validate\n  moroccan-eval suites checksum suites/my-suite --write\n"
        "  moroccan-eval suites stats support-intents\n"
        "  moroccan-eval suites import chats.csv --format csv --map text=message,label=team "
        "--variety ary_Latn --name my-chats"
    ),
    "models": "moroccan-eval models list\n  moroccan-eval models check models/ollama-qwen.yaml",
    "tasks": "moroccan-eval tasks list",
    "leaderboard": (
        "moroccan-eval leaderboard submit runs/RUN_A runs/RUN_B --info submission.yaml\n"
        "  moroccan-eval leaderboard validate leaderboard/submissions/acme-tiny-2026-12-03\n"
        "  moroccan-eval leaderboard build -o leaderboard/_site\n"
        "  moroccan-eval leaderboard serve leaderboard/_site"
    ),
    "anonymize": (
        "moroccan-eval anonymize scan chats.jsonl --field fields.text\n"
        "  moroccan-eval anonymize apply chats.jsonl -o chats.anon.jsonl --operator placeholder\n"
        "  moroccan-eval anonymize evaluate"
    ),
    "consent": (
        "moroccan-eval consent list suites/my-suite\n"
        "  moroccan-eval consent withdraw suites/my-suite C-2026-014"
    ),
    "retention": (
        "moroccan-eval retention check suites/my-suite\n"
        "  moroccan-eval retention purge suites/my-suite"
    ),
}


def epilog(name: str) -> str:
    return "\b\nExamples:\n  " + EXAMPLES[name]


def print_headlines(result: RunResult) -> None:
    """Each task's headline metric per variety with its interval, paired delta, errors
    and unparsed answers, and signature: what ``run`` and ``demo`` print. A model at or
    below the trivial baseline is flagged."""
    from .. import tasks
    from ..runs.rundir import load_run
    from ..runs.scoring import trivial_baselines

    run = load_run(result.path, require_complete=False)
    trivial = dict(result.trivial or {})
    if missing := set(result.scores.tasks) - set(trivial):  # not worked out with the scores
        trivial |= trivial_baselines(run, {task: result.scores.tasks[task].metrics[0]
                                           for task in missing})
    for task, entry in result.scores.tasks.items():
        metric = entry.metrics[0]
        usage = entry.usage
        task_type = tasks.for_spec(run.manifest.tasks[task].spec)
        higher = task_type.higher_is_better(metric)
        click.echo(f"\n{run.model} · {task} · {metric} (%{'' if higher else ', lower is better'}"
                   f"), 95% CI, Δ vs {entry.reference_variety}")
        for variety, values in entry.all_varieties():
            score = values.metrics.get(metric)
            delta = values.deltas.get(metric)
            n = values.n if score is None or score.n is None else score.n
            line = f"  {variety:<12} {format_score(score)}  n={n}"
            if delta and delta.value is not None and delta.ci is not None:
                mark = "" if delta.significant else " ns"
                line += f"  Δ {100 * delta.value:+.1f} [{100 * delta.ci[0]:+.1f}, " \
                        f"{100 * delta.ci[1]:+.1f}]{mark}"
            failures = [f"{count} {what}" for count, what in
                        ((values.errors, "errors"), (values.unparsed, "unparsed")) if count]
            click.echo(line + (f"  ({', '.join(failures)})" if failures else ""))
        if entry.breakdown is not None:  # the task file's breakdown_by
            click.echo(f"  by {entry.breakdown.by}, all varieties pooled:")
            for value, values in entry.breakdown.values.items():
                score = values.metrics.get(metric)
                n = values.n if score is None or score.n is None else score.n
                click.echo(f"    {value:<14} {format_score(score)}  n={n}")
        unparsed = sum(v.unparsed for v in entry.varieties.values())
        click.echo(f"  latency p50 {usage.p50_ms} ms, p95 {usage.p95_ms} ms; "
                   f"errors {usage.n_errors}; unparsed {unparsed}; "
                   f"cost/1k {usage.cost_per_1k['MAD']} MAD")
        overall = entry.overall.metrics.get(metric)
        baseline = trivial.get(task)
        if overall is not None and overall.value is not None and baseline is not None and (
                overall.value <= baseline if higher else overall.value >= baseline):
            click.echo(f"  warning: {metric} {100 * overall.value:.1f}% is no better than the "
                       f"trivial baseline ({100 * baseline:.1f}%: the same answer to every "
                       "item)", err=True)
        click.echo(f"  signature: {entry.signature}")
        for metric_signature in entry.metric_signatures.values():
            click.echo(f"  metric: {metric_signature}")
    click.echo(f"  run: {result.path} ({result.status})")


def print_checks(title: str, ok: bool, words: tuple[str, str],
                 checks: Sequence[Check]) -> None:
    """A verdict line (``title: VERIFIED``) and one line per check, as ``verify`` and
    ``leaderboard validate`` print them."""
    click.echo(f"{title}: {words[0] if ok else words[1]}")
    for check in checks:
        click.echo(f"  {'ok  ' if check.ok else 'FAIL'} {check.name:<10} {check.detail}")


def format_score(score: MetricScore | None) -> str:
    """``" 57.1 [ 40.0,  72.5]"``: a value and its interval in percent."""
    if score is None or score.value is None or score.ci is None:
        return "   –"
    lo, hi = score.ci
    return f"{100 * score.value:5.1f} [{100 * lo:5.1f}, {100 * hi:5.1f}]"


def pct(value: float | None) -> str:
    return "    –" if value is None else f"{100 * value:5.1f}"


def cache_dir_option(no_cache: bool, cache_dir: Path | None) -> Path | None:
    """The response cache folder, or ``None`` with ``--no-cache``."""
    from ..cache import default_cache_dir

    return None if no_cache else (cache_dir or default_cache_dir())


def check_out_dir(out: Path) -> None:
    """Refuse an output folder that cannot be written before any work is done."""
    import os

    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise MoroccanEvalError(f"output folder {out}: {probe} is a file, not a folder; "
                                "choose another --out")
    if not os.access(probe, os.W_OK):
        raise MoroccanEvalError(f"output folder {out} is not writable; choose another --out")


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """The finished runs among ``paths`` (run directories or folders of them)."""
    from ..runs import rundir

    return rundir.load_all(rundir.expand_run_paths(paths), "some runs cannot be read")


class Fraction(click.ParamType):  # type: ignore[type-arg]
    """A score written as a fraction in [0, 1]; ``80`` gets a hint instead of a range error."""

    name = "fraction"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"'{value}' is not a number", param, ctx)
        if not 0 <= number <= 1:
            hint = f" (write {number / 100:g} for {number:g}%)" if 1 < number <= 100 else ""
            self.fail(f"{value} is not a fraction between 0 and 1{hint}", param, ctx)
        return number


FRACTION = Fraction()


def constraint_options(command: Any) -> Any:
    """The options shared by ``report`` and ``recommend``."""
    options = [
        click.option("--min-score", type=FRACTION,
                     help="Minimum overall score on every task, as a fraction (0.8 = 80%)."),
        click.option("--min-variety", multiple=True, metavar="VARIETY=SCORE",
                     help="Minimum score on one variety, e.g. ary_Arab=0.75 (repeatable)."),
        click.option("--max-p95-ms", type=click.FloatRange(min=0, min_open=True),
                     help="Maximum p95 latency in milliseconds."),
        click.option("--max-cost-per-1k", type=click.FloatRange(min=0),
                     help="Maximum cost of 1,000 requests, in --currency."),
        click.option("--currency", type=click.Choice(["MAD", "USD"]), default="MAD",
                     show_default=True),
        click.option("--strict", is_flag=True,
                     help="Judge scores by their 95% CI lower bound instead of the estimate."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def constraints_from(min_score: float | None, min_variety: Sequence[str], max_p95_ms: float | None,
                 max_cost_per_1k: float | None, currency: str, strict: bool) -> Constraints:
    from ..analysis.recommendation import Constraints
    from ..errors import ConfigError

    per_variety: dict[str, float] = {}
    problems = []
    for entry in min_variety:
        code, sep, value = entry.partition("=")
        try:
            score = float(value)
        except ValueError:
            score = -1.0
        if not sep or not 0 <= score <= 1:
            problems.append(f"'{entry}': write VARIETY=SCORE with a score between 0 and 1, "
                            "e.g. ary_Arab=0.75")
        else:
            per_variety[code.strip()] = score
    if problems:
        raise ConfigError("--min-variety", problems)
    return Constraints.model_validate({
        "min_score": min_score, "min_variety": per_variety, "max_p95_ms": max_p95_ms,
        "max_cost_per_1k": max_cost_per_1k, "currency": currency, "strict": strict})
