"""The ``moroccan-eval`` command line. Thin: parse options, call the library, print."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import MoroccanEvalError

EXAMPLES = {
    "demo": "moroccan-eval demo --out demo-out\n"
            "  moroccan-eval demo --suite support-intents --limit 10",
    "run": (
        "moroccan-eval run --suite support-intents --model char-ngram --out runs\n"
        "  moroccan-eval run --suite support-intents --model models/ollama-qwen.yaml "
        "--variety ary_Latn --variety arb_Arab --limit 20"
    ),
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


def _epilog(name: str) -> str:
    return "\b\nExamples:\n  " + EXAMPLES[name]


class _Group(click.Group):
    """Turns library errors into one message and an exit code: never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MoroccanEvalError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:  # output piped into e.g. `head`: not an error
            sys.stderr.close()
            ctx.exit(0)
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            click.echo(f"error: cannot access{where}: {exc.strerror or exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted; re-run the same command to resume from the cache", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="moroccan-eval")
def main() -> None:
    """Evaluate language models on Darija (Arabic and Latin script), Moroccan French,
    MSA, Amazigh and Darija–French code-switching; report per-variety degradation,
    latency and cost."""


# --------------------------------------------------------------------------- run & demo


def _print_headlines(result: Any) -> None:
    from .results import load_run
    from .scoring import HIGHER_IS_BETTER

    run = load_run(result.path, require_complete=False)
    model = run.manifest["model"]["spec"]["name"]
    for task, entry in result.scores["tasks"].items():
        metric = entry["metrics"][0]
        usage = entry["usage"]
        direction = "" if HIGHER_IS_BETTER.get(metric, True) else ", lower is better"
        click.echo(f"\n{model} · {task} · {metric} (%{direction}), 95% CI, "
                   f"Δ vs {entry['reference_variety']}")
        for variety, values in {**entry["varieties"], "all": entry["overall"]}.items():
            score = values.get(metric) or {}
            delta = (values.get("delta_vs_reference") or {}).get(metric)
            line = f"  {variety:<12} {_fmt(score)}  n={score.get('n', values['n'])}"
            if delta and delta.get("value") is not None:
                mark = "" if delta["significant"] else " ns"
                line += f"  Δ {100 * delta['value']:+.1f} [{100 * delta['ci'][0]:+.1f}, " \
                        f"{100 * delta['ci'][1]:+.1f}]{mark}"
            click.echo(line)
        click.echo(f"  latency p50 {usage['p50_ms']} ms, p95 {usage['p95_ms']} ms; "
                   f"errors {usage['n_errors']}; cost/1k {usage['cost_per_1k']['MAD']} MAD")
        click.echo(f"  signature: {entry['signature']}")
        for metric_signature in (entry.get("metric_signatures") or {}).values():
            click.echo(f"  metric: {metric_signature}")
    click.echo(f"  run: {result.path} ({result.status})")


def _fmt(score: dict[str, Any]) -> str:
    if score.get("value") is None:
        return "   –"
    lo, hi = score["ci"]
    return f"{100 * score['value']:5.1f} [{100 * lo:5.1f}, {100 * hi:5.1f}]"


def _cache_dir(no_cache: bool, cache_dir: Path | None) -> Path | None:
    from .cache import default_cache_dir

    return None if no_cache else (cache_dir or default_cache_dir())


def _check_out_dir(out: Path) -> None:
    import os

    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise MoroccanEvalError(f"output folder {out} is not writable; choose another --out")


@main.command(epilog=_epilog("run"))
@click.option("--suite", "suite_name", required=True, help="Suite name or folder.")
@click.option("--model", "models", required=True, multiple=True,
              help="Model YAML, a shipped models/ name, or a built-in (majority, char-ngram). "
                   "Repeat for several models.")
@click.option("--task", "tasks", multiple=True, help="Only these tasks (repeatable).")
@click.option("--variety", "varieties_", multiple=True, help="Only these varieties (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="At most N items per variety.")
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["test", "dev", "train"]))
@click.option("--concurrency", type=click.IntRange(min=1), help="Override limits.concurrency.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs"),
              show_default=True, help="Folder receiving one run directory per model.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-cost", type=click.FloatRange(min=0),
              help="Stop sending requests once this much is spent (in --currency).")
@click.option("--currency", type=click.Choice(["MAD", "USD"]), default="MAD", show_default=True)
@click.option("--usd-mad", type=click.FloatRange(min=0, min_open=True),
              envvar="MOROCCAN_EVAL_USD_MAD", help="MAD per USD for conversions [default: 10].")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the response cache.")
@click.option("--cache-dir", type=click.Path(path_type=Path),
              help="Response cache folder [default: ~/.cache/moroccan-eval or $XDG_CACHE_HOME].")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar [default: only on a terminal].")
@click.option("--perturb", type=click.Choice(["transliterate", "arabizi-variants", "elongation",
                                               "no-diacritics", "typos"]),
              help="Perturb item text (robustness); compare with the clean run.")
@click.option("--allow-unanonymized", is_flag=True,
              help="Skip the residual-PII check of the suite (the data owner's private runs "
              "only); recorded in the manifest and flagged in reports.")
def run(suite_name: str, models: Sequence[str], tasks: Sequence[str],
        varieties_: Sequence[str], limit: int | None, split: str, concurrency: int | None,
        out_dir: Path, seed: int, max_cost: float | None, currency: str,
        usd_mad: float | None, no_cache: bool, cache_dir: Path | None,
        progress: bool | None, perturb: str | None, allow_unanonymized: bool) -> None:
    """Run models on a suite and print per-variety scores with their signatures."""
    from . import varieties
    from .adapters import load_model
    from .costing import DEFAULT_USD_MAD
    from .runner import RunOptions
    from .runner import run as run_models
    from .suites import load_suite

    for code in varieties_:
        varieties.get(code)
    specs = [load_model(m) for m in models]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise MoroccanEvalError(f"two --model options have the same name: {names}")
    suite = load_suite(suite_name, allow_unanonymized=allow_unanonymized)
    if allow_unanonymized:
        click.echo("warning: --allow-unanonymized: the suite was not checked for personal "
                   "data; keep these runs private", err=True)
    for task in tasks:
        suite.task(task)
    _check_out_dir(out_dir)
    options = RunOptions(
        suite=suite, out_dir=out_dir, tasks=list(tasks) or None,
        varieties=list(varieties_) or None, limit=limit, split=split, seed=seed,
        concurrency=concurrency, cache_dir=_cache_dir(no_cache, cache_dir),
        max_cost=max_cost, currency=currency,  # type: ignore[arg-type]
        usd_mad=usd_mad or DEFAULT_USD_MAD, progress=progress, perturb=perturb,
    )
    for result in run_models(options, specs):
        _print_headlines(result)


@main.command(epilog=_epilog("demo"))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("demo-out"),
              show_default=True)
@click.option("--suite", "suite_names", multiple=True,
              help="Suite to include (repeatable) [default: every shipped suite].")
@click.option("--limit", type=click.IntRange(min=1), help="At most N items per variety.")
def demo(out_dir: Path, suite_names: Sequence[str], limit: int | None) -> None:
    """Evaluate the offline baselines on the shipped suites and write an HTML report."""
    from .adapters import BASELINES_BY_TYPE, load_model
    from .report import build_report, write_report
    from .results import load_run
    from .runner import RunOptions
    from .runner import run as run_models
    from .suites import load_suite, suite_dirs

    _check_out_dir(out_dir)
    runs = []
    for name in suite_names or list(suite_dirs()):
        suite = load_suite(name)
        for task_type, models in BASELINES_BY_TYPE.items():
            tasks = [t for t, task in suite.tasks.items() if task.spec.type == task_type]
            if not tasks:
                continue
            options = RunOptions(suite=suite, out_dir=out_dir / "runs", tasks=tasks,
                                 limit=limit, progress=False)
            for result in run_models(options, [load_model(m) for m in models]):
                _print_headlines(result)
                runs.append(load_run(result.path))
    report = out_dir / "report.html"
    write_report(report, build_report(runs, title="moroccan-eval demo: offline baselines"))
    click.echo(f"\nreport: {report.resolve()}")


# --------------------------------------------------------------------------- results


def _load_runs(paths: Sequence[Path]) -> list[Any]:
    from .results import expand_run_paths, load_run

    return [load_run(p) for p in expand_run_paths(paths)]


class _Fraction(click.ParamType):  # type: ignore[type-arg]
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


FRACTION = _Fraction()


def _constraint_options(command: Any) -> Any:
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


def _constraints(min_score: float | None, min_variety: Sequence[str], max_p95_ms: float | None,
                 max_cost_per_1k: float | None, currency: str, strict: bool) -> Any:
    from .errors import ConfigError
    from .recommendation import Constraints

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


@main.command(epilog=_epilog("report"))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="HTML file to write.")
@click.option("--lang", type=click.Choice(["en", "fr", "ar"]), default="en", show_default=True,
              help="Language of the report (ar is laid out right to left).")
@click.option("--reference", metavar="VARIETY",
              help="Compute deltas against this variety instead of each suite's reference.")
@click.option("--title", help="Title of the report.")
@click.option("--pdf", is_flag=True,
              help="Also print the report to an A4 PDF next to it (needs Chromium).")
@click.option("--template-dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Folder of templates overriding the shipped ones (e.g. _summary.html.j2).")
@_constraint_options
def report(run_dirs: Sequence[Path], output: Path, lang: str, reference: str | None,
           title: str | None, pdf: bool, template_dir: Path | None, **constraints: Any) -> None:
    """Write one self-contained HTML report over run directories: recommendation,
    per-variety degradation, cost/latency trade-offs, confusion matrices, error analysis
    and provenance. The constraint options drive the recommendation block."""
    from .report import build_report, render_pdf, write_report

    html = build_report(_load_runs(run_dirs), title=title, lang=lang, reference=reference,
                        constraints=_constraints(**constraints), template_dir=template_dir)
    write_report(output, html)
    click.echo(str(output.resolve()))
    if pdf:
        pdf_path = output.with_suffix(".pdf")
        render_pdf(output, pdf_path)
        click.echo(str(pdf_path.resolve()))


@main.command(epilog=_epilog("recommend"))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@_constraint_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def recommend(run_dirs: Sequence[Path], as_json: bool, **constraints: Any) -> None:
    """The cheapest (then smallest) model meeting every constraint, and for each other
    model the first constraint it fails. Exits 1 when no model qualifies."""
    from .analysis import summarize
    from .recommendation import recommend as recommend_model

    result = recommend_model(summarize(_load_runs(run_dirs)), _constraints(**constraints))
    chosen = result.chosen
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        currency = result.constraints.currency
        click.echo("constraints: " + ("; ".join(result.constraints.describe()) or "none"))
        click.echo(f"recommended: {chosen.model.name}" if chosen
                   else "no model meets every constraint")
        for v in result.verdicts:
            quality = "–" if v.quality is None else f"{100 * v.quality:.1f}%"
            cost = "–" if v.cost_per_1k is None else f"{v.cost_per_1k:.4g} {currency}/1k"
            status = "ok" if v.passed else f"fails: {v.failure}"
            click.echo(f"  {v.model.name:<28} quality {quality:>6}  {cost:<16} {status}")
    if chosen is None:
        sys.exit(1)


@main.command(epilog=_epilog("compare"))
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def compare(run_a: Path, run_b: Path, as_json: bool) -> None:
    """Paired differences B − A per task and variety on the items both runs answered,
    with 95% paired-bootstrap intervals and significance."""
    from dataclasses import asdict

    from .analysis import Difference, compare_runs
    from .results import load_run

    a, b = load_run(run_a), load_run(run_b)
    diffs = compare_runs(a, b)
    if as_json:
        click.echo(json.dumps([asdict(d) for d in diffs], ensure_ascii=False, indent=2))
        return
    name_a = a.manifest["model"]["spec"]["name"]
    name_b = b.manifest["model"]["spec"]["name"]
    click.echo(f"B − A: {name_b} − {name_a} (paired over shared items, 95% CI)")

    def label(d: Difference) -> str:
        return d.metric + ("" if d.higher_is_better else " (lower is better)")

    width = max(len(label(d)) for d in diffs)
    for d in diffs:
        if d.delta is None or d.ci is None:
            continue
        worse = d.delta < 0 if d.higher_is_better else d.delta > 0
        mark = ("B worse" if worse else "B better") if d.significant else "ns"
        click.echo(f"  {d.task:<14} {label(d):<{width}} {d.variety:<12} n={d.n_pairs:<5} "
                   f"A {_pct(d.a)}  B {_pct(d.b)}  Δ {100 * d.delta:+6.1f} "
                   f"[{100 * d.ci[0]:+.1f}, {100 * d.ci[1]:+.1f}] {mark}")


@main.command(epilog=_epilog("verify"))
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--suite", "suite_ref", help="Suite name or folder to check against "
              "(default: the one named in each run's manifest).")
@click.option("--endpoint", help="Model YAML of the vendor's live endpoint: re-query a sample.")
@click.option("--sample", default="5%", show_default=True,
              help="Share (5%, 0.05) or number (20) of items re-queried with --endpoint.")
@click.option("--min-agreement", type=FRACTION, default=0.9, show_default=True,
              help="Share of re-queried answers that must match the stored ones.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option("--json", "as_json", is_flag=True)
def verify(paths: Sequence[Path], suite_ref: str | None, endpoint: str | None, sample: str,
           min_agreement: float, seed: int, as_json: bool) -> None:
    """Check a submission (a run directory or a folder of runs): scores recomputed from
    raw outputs, signatures, suite checksums, items and prompts; with --endpoint, agreement
    with the vendor's live model on a seeded sample. Exits 1 if any check fails."""
    from .adapters import load_model
    from .verify import parse_sample, verify_run

    spec = load_model(endpoint) if endpoint else None
    share = parse_sample(sample)
    results = [verify_run(run, suite_ref=suite_ref, endpoint=spec, sample=share, seed=seed,
                          min_agreement=min_agreement) for run in _load_runs(paths)]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        for result in results:
            click.echo(f"{result.run.path.name}: {'VERIFIED' if result.ok else 'FAILED'}")
            for check in result.checks:
                click.echo(f"  {'ok  ' if check.ok else 'FAIL'} {check.name:<10} {check.detail}")
    if not all(r.ok for r in results):
        sys.exit(1)


def _pct(value: float | None) -> str:
    return "    –" if value is None else f"{100 * value:5.1f}"


@main.command(epilog=_epilog("export"))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--what", type=click.Choice(["scores", "predictions"]), default="scores",
              show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json", "jsonl"]),
              default="csv", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
def export(run_dirs: Sequence[Path], what: str, fmt: str, output: Path) -> None:
    """Export scores or predictions of runs to CSV, Parquet or JSON."""
    from .results import export as export_runs

    rows = export_runs(_load_runs(run_dirs), what, fmt, output)
    click.echo(f"{rows} rows -> {output}")


@main.command(epilog=_epilog("rescore"))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
def rescore(run_dirs: Sequence[Path]) -> None:
    """Recompute parsed answers and scores from stored raw outputs (no model is called)."""
    from .results import rescore as rescore_run

    for run in _load_runs(run_dirs):
        scores = rescore_run(run)
        for task, entry in scores["tasks"].items():
            metric = entry["metrics"][0]
            click.echo(f"{run.path.name} · {task} · {metric} {_fmt(entry['overall'][metric])}")
            click.echo(f"  signature: {entry['signature']}")


# --------------------------------------------------------------------------- suites


@main.group(epilog=_epilog("suites"))
def suites() -> None:
    """List, inspect and validate evaluation suites."""


@suites.command("list")
def suites_list() -> None:
    """Shipped suites and those under $MOROCCAN_EVAL_SUITES."""
    from .suites import load_suite, suite_dirs

    for name, path in suite_dirs().items():
        try:
            suite = load_suite(path, load_data=False)
            click.echo(f"{name:<24} {suite.version:<8} {', '.join(suite.spec.tasks):<30} "
                       f"{suite.spec.description}")
        except MoroccanEvalError as exc:
            click.echo(f"{name:<24} INVALID: {str(exc).splitlines()[0]}")


@suites.command("show")
@click.argument("suite_name")
@click.option("--json", "as_json", is_flag=True)
def suites_show(suite_name: str, as_json: bool) -> None:
    """Describe a suite: card, tasks, items per split and variety."""
    from collections import Counter

    from .suites import load_suite

    suite = load_suite(suite_name)
    info: dict[str, Any] = {
        "name": suite.name, "version": suite.version, "ident": suite.ident,
        "path": str(suite.path), "license": suite.spec.license,
        "reference_variety": suite.spec.reference_variety,
        "card": suite.card.model_dump(mode="json"), "tasks": {},
    }
    for task in suite.tasks.values():
        counts = Counter(zip(task.column("split"), task.column("variety"), strict=True))
        info["tasks"][task.name] = {
            "type": task.spec.type, "labels": task.labels,
            "items": {f"{s}/{v}": n for (s, v), n in sorted(counts.items())},
        }
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    click.echo(f"{suite.ident}  ({suite.path})\n{suite.spec.description}")
    click.echo(f"licence: {suite.spec.license}; reference: {suite.spec.reference_variety}")
    click.echo(f"validation: {suite.card.validation_status}")
    for name, task in info["tasks"].items():
        click.echo(f"\ntask {name} ({task['type']}), labels: {', '.join(task['labels'])}")
        for key, n in task["items"].items():
            click.echo(f"  {key:<24} {n}")


@suites.command("validate")
@click.argument("suite_names", nargs=-1)
def suites_validate(suite_names: Sequence[str]) -> None:
    """Check suites (all shipped ones by default); exit 2 if any is invalid."""
    from .suites import load_suite, suite_dirs

    failed = 0
    for name in suite_names or list(suite_dirs()):
        try:
            suite = load_suite(name)
            n = sum(t.dataset.num_rows for t in suite.tasks.values())
            click.echo(f"ok   {suite.ident} ({n} items)")
        except MoroccanEvalError as exc:
            failed += 1
            click.echo(f"FAIL {exc}", err=True)
    if failed:
        sys.exit(2)


@suites.command("stats")
@click.argument("suite_names", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@click.option("--update-card", is_flag=True,
              help="Write the counts into each card between its stats markers.")
def suites_stats(suite_names: Sequence[str], as_json: bool, update_card: bool) -> None:
    """Items per task × variety × split, mean length, and groups complete in every variety
    (all shipped suites by default)."""
    from .suites import load_suite, suite_dirs, suite_stats, update_card_stats

    loaded = [load_suite(name) for name in (suite_names or list(suite_dirs()))]
    if update_card:
        for suite in loaded:
            if update_card_stats(suite):
                click.echo(f"updated {suite.path / 'CARD.md'}", err=True)
    stats = [suite_stats(suite) for suite in loaded]
    if as_json:
        click.echo(json.dumps(stats, ensure_ascii=False, indent=2))
        return
    for entry in stats:
        click.echo(entry["suite"])
        for task, info in entry["tasks"].items():
            groups = "; ".join(f"{split}: {g['complete']} of {g['groups']} groups complete"
                               for split, g in info["groups"].items())
            click.echo(f"  {task} ({info['type']}, {info['labels']} labels) — {groups}")
            for key, count in info["items"].items():
                click.echo(f"    {key:<22} {count:>5} items, mean "
                           f"{info['mean_chars'][key]:>6.1f} chars")


@suites.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet", "hf"]),
              required=True, help="hf: a dataset saved with datasets' save_to_disk.")
@click.option("--task-type", type=click.Choice(["classification", "translation", "asr"]),
              default="classification", show_default=True)
@click.option("--map", "mapping", required=True, metavar="text=COL,label=COL[,...]",
              help="Columns: text and label (classification), text and reference "
              "(translation), audio and reference (asr: audio paths relative to SRC's folder); "
              "optionally variety, split, group, id.")
@click.option("--variety", help="Variety of every text, when no variety column is mapped.")
@click.option("--split-ratio", type=float, default=0.3, show_default=True,
              help="Share of groups without a split column that go to train.")
@click.option("--name", required=True, help="Name of the new suite (lowercase, a-z0-9_.-).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("suites"),
              show_default=True)
@click.option("--consent-id", default="imported", show_default=True,
              help="consent_id of every item (describe it in the generated consent.yaml).")
@click.option("--target-variety", metavar="VARIETY",
              help="translation: the variety of the reference column (e.g. eng_Latn).")
def suites_import(source: Path, fmt: str, task_type: str, mapping: str, variety: str | None,
                  split_ratio: float, name: str, out_dir: Path, consent_id: str,
                  target_variety: str | None) -> None:
    """Create a suite folder from a local CSV/JSONL/Parquet file or a saved Hugging Face
    dataset. Its card and consent register start as TODO skeletons the loader refuses until
    they are filled in."""
    import re

    from .importer import ImportSpec, import_suite, import_summary, parse_mapping

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        raise MoroccanEvalError(f"--name: '{name}' must be lowercase letters, digits, _ . -")
    target = import_suite(ImportSpec(
        source=source, fmt=fmt, name=name, mapping=parse_mapping(mapping), task_type=task_type,
        variety=variety, split_ratio=split_ratio, consent_id=consent_id,
        target_variety=target_variety), out_dir)
    for key, count in import_summary(target).items():
        click.echo(f"  {key:<22} {count:>5} items")
    click.echo(f"created {target}; fill in the TODO fields of CARD.md and consent.yaml, then "
               f"run `moroccan-eval suites validate {target}`")


@suites.command("checksum")
@click.argument("suite_name")
@click.option("--write", is_flag=True, help="Update suite.yaml with the new checksums.")
def suites_checksum(suite_name: str, write: bool) -> None:
    """Print (or --write) the sha256 of a suite's task and data files after editing them."""
    from .suites import compute_checksums, resolve_suite, write_checksums

    root = resolve_suite(suite_name)
    sums = write_checksums(root) if write else compute_checksums(root)
    for rel, digest in sums.items():
        click.echo(f"{digest}  {rel}")
    if write:
        click.echo(f"updated {root / 'suite.yaml'}")


# --------------------------------------------------------------------------- privacy


@main.group(epilog=_epilog("anonymize"))
def anonymize() -> None:
    """Find and replace personal data offline (Moroccan phone numbers, CIN, RIB/IBAN, ICE,
    cards, plates, addresses, names in Latin, Arabic and Tifinagh script ...)."""


@anonymize.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--field", "fields", multiple=True,
              help="Field to scan (CSV column, JSON key or dotted path); default: all text.")
@click.option("--json", "as_json", is_flag=True, help="One JSON finding per line.")
def anonymize_scan(paths: Sequence[Path], fields: Sequence[str], as_json: bool) -> None:
    """Report personal data by file, line, field and entity type; values are never shown.
    Exits 1 when a high-confidence finding remains."""
    from collections import Counter

    from .privacy.gate import default_scanner
    from .privacy.operations import scan_paths

    scanner = default_scanner()
    counts: Counter[str] = Counter()
    high = 0
    for located in scan_paths(scanner, paths, fields):
        counts[located.finding.entity] += 1
        high += located.finding.score >= scanner.policy.high_confidence
        if as_json:
            click.echo(json.dumps(located.to_dict(), ensure_ascii=False))
        else:
            f = located.finding
            click.echo(f"{located.path}:{located.line} {located.field} {f.entity} "
                       f"{f.start}-{f.end} score {f.score:.2f} {f.masked()}")
    if not as_json:
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing found"
        click.echo(f"{sum(counts.values())} finding(s), {high} high-confidence: {summary} "
                   f"(policy {scanner.policy.version})")
    if high:
        sys.exit(1)


@anonymize.command("apply")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option("--field", "fields", multiple=True,
              help="Field to anonymize (CSV column, JSON key or dotted path); default: all.")
@click.option("--operator", type=click.Choice(["placeholder", "pseudonym", "redact"]),
              default="placeholder", show_default=True,
              help="<PERSON_1> per record; <PERSON_3fa9c2d1> keyed by "
              "$MOROCCAN_EVAL_PSEUDONYM_KEY across a corpus; or <PERSON>.")
@click.option("--audit", type=click.Path(path_type=Path),
              help="Audit log to append to [default: anonymization-audit.jsonl next to -o].")
def anonymize_apply(source: Path, output: Path, fields: Sequence[str], operator: str,
                    audit: Path | None) -> None:
    """Write an anonymized copy of a JSONL, CSV or text file and append an audit record
    (checksums, counts per entity, policy version; no raw values)."""
    from .privacy.gate import default_scanner
    from .privacy.operations import apply_file

    entry = apply_file(default_scanner(), source, output, operator=operator,  # type: ignore[arg-type]
                       fields=fields, audit=audit)
    found = ", ".join(f"{k} {v}" for k, v in entry["entities"].items()) or "nothing found"
    click.echo(f"{entry['records']} record(s) -> {output}: {found}")
    click.echo(f"audit: {entry['audit']}")


@anonymize.command("evaluate")
@click.option("--eval-set", type=click.Path(path_type=Path),
              help="Labelled JSONL [default: the shipped anonymize/eval/pii-eval.jsonl].")
@click.option("--json", "as_json", is_flag=True)
def anonymize_evaluate(eval_set: Path | None, as_json: bool) -> None:
    """Precision, recall and F1 of the scanner per entity type and per variety."""
    from .privacy.gate import default_scanner
    from .privacy.operations import evaluate

    result = evaluate(default_scanner(), eval_set)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return

    def line(name: str, s: dict[str, Any]) -> str:
        cells = [("P", s["precision"]), ("R", s["recall"]), ("F1", s["f1"])]
        shown = "  ".join(f"{k} {'  –  ' if v is None else f'{100 * v:5.1f}'}" for k, v in cells)
        return f"  {name:<16} {shown}  (tp {s['tp']}, fp {s['fp']}, fn {s['fn']})"

    click.echo(f"{result['sentences']} sentences, policy {result['policy_version']}")
    for title, key in (("by entity", "entities"), ("by variety", "varieties"),
                       ("person names by script", "person_by_script")):
        click.echo(title + ":")
        for name, scores in result[key].items():
            click.echo(line(name, scores))
    click.echo(line("structured", result["structured"]))
    click.echo(line("overall", result["overall"]))
    negatives = result["hard_negatives"]
    click.echo(f"hard negatives left alone: {negatives['left_alone']} of "
               f"{negatives['sentences']}")


@main.group(epilog=_epilog("consent"))
def consent() -> None:
    """A suite's consent register: list consents, withdraw one."""


@consent.command("list")
@click.argument("suite_name")
def consent_list(suite_name: str) -> None:
    """Consents of a suite with their status and how many items rely on each."""
    from .privacy.consent import load_register, today, usage
    from .suites import resolve_suite

    root = resolve_suite(suite_name)
    counts = usage(root)
    register = load_register(root)
    if counts.get("authored"):
        click.echo(f"authored           {counts['authored']} item(s) written by the project")
    for c in register.consents if register else []:
        status = c.problem(today()) or f"valid (until {c.expires or 'no expiry'})"
        click.echo(f"{c.id:<18} {counts.get(c.id, 0)} item(s), scope {c.scope}, given "
                   f"{c.given}, {status}; source: {c.source}")
    if register is None:
        click.echo(f"no consent register ({root / 'consent.yaml'})")


@consent.command("withdraw")
@click.argument("suite_name")
@click.argument("consent_id")
def consent_withdraw(suite_name: str, consent_id: str) -> None:
    """Remove every item given under CONSENT_ID, reseal the suite, record tombstones and
    an audit entry."""
    from .privacy.consent import withdraw
    from .suites import resolve_suite

    result = withdraw(resolve_suite(suite_name), consent_id)
    click.echo(f"withdrew {result.consent_id}: {result.removed} item(s) removed from "
               f"{', '.join(result.files) or 'no file'}; suite resealed")


@main.group(epilog=_epilog("retention"))
def retention() -> None:
    """Expired consents: list them, or withdraw them all."""


@retention.command("check")
@click.argument("suite_name")
def retention_check(suite_name: str) -> None:
    """List expired consents; exits 1 if any."""
    from .privacy.consent import expired
    from .suites import resolve_suite

    found = expired(resolve_suite(suite_name))
    for c in found:
        click.echo(f"{c.id}: expired on {c.expires}")
    click.echo(f"{len(found)} expired consent(s)")
    if found:
        sys.exit(1)


@retention.command("purge")
@click.argument("suite_name")
def retention_purge(suite_name: str) -> None:
    """Withdraw every expired consent (removes their items)."""
    from .privacy.consent import expired, withdraw
    from .suites import resolve_suite

    root = resolve_suite(suite_name)
    found = expired(root)
    for c in found:
        result = withdraw(root, c.id)
        click.echo(f"purged {c.id}: {result.removed} item(s) removed")
    click.echo(f"{len(found)} expired consent(s) purged")


# --------------------------------------------------------------------------- models


@main.group(epilog=_epilog("models"))
def models() -> None:
    """List example model specs and check that a model answers."""


@models.command("list")
def models_list() -> None:
    """Built-in models, shipped example specs and available adapters."""
    from .adapters import BUILTIN_MODELS, adapter_names, load_model
    from .resources import shipped

    click.echo("built-in (no YAML needed):")
    for name in BUILTIN_MODELS:
        click.echo(f"  {name}")
    click.echo("example specs (models/):")
    for path in sorted(shipped("models").glob("*.yaml")):
        try:
            spec = load_model(str(path))
            click.echo(f"  {path.stem:<24} adapter={spec.adapter:<14} {spec.name}")
        except MoroccanEvalError as exc:
            click.echo(f"  {path.stem:<24} INVALID: {str(exc).splitlines()[0]}")
    click.echo(f"adapters: {', '.join(adapter_names())}")


@models.command("check")
@click.argument("model")
@click.option("--prompt", default="Reply with the single word: ok", show_default=True)
def models_check(model: str, prompt: str) -> None:
    """Validate a model spec and send it one request."""
    import asyncio

    from .adapters import build_adapter, load_model
    from .adapters.base import Request, TaskContext
    from .runner import RateLimiter, call_with_retries

    spec = load_model(model)
    adapter = build_adapter(spec)

    async def once() -> tuple[Any, str | None, int]:
        try:
            if not adapter.cacheable:  # baselines need a task to train on
                await adapter.prepare(TaskContext(
                    name="check", type="classification", labels=["ok", "ko"],
                    input_fields=["text"],
                    train=[{"fields": {"text": "ok"}, "reference": "ok"},
                           {"fields": {"text": "ko"}, "reference": "ko"}]))
            request = Request(messages=[{"role": "user", "content": prompt}],
                              input={"text": prompt})
            return await call_with_retries(adapter, request, spec, RateLimiter(None))
        finally:
            await adapter.aclose()

    response, error, attempts = asyncio.run(once())
    if response is None:
        raise MoroccanEvalError(f"model '{spec.name}' did not answer: {error}")
    click.echo(f"ok: {spec.name} answered in {response.latency_ms:.0f} ms "
               f"({response.input_tokens} tokens in, {response.output_tokens} out, "
               f"{attempts} attempt(s)): {response.text[:200]!r}")
