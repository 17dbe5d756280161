"""Commands on finished runs: ``report``, ``recommend``, ``compare``, ``verify``,
``export``, ``rescore``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .common import (
    FRACTION,
    constraint_options,
    constraints_from,
    epilog,
    format_score,
    load_runs,
    pct,
    print_checks,
)


@click.command(epilog=epilog("report"))
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
@constraint_options
def report(run_dirs: Sequence[Path], output: Path, lang: str, reference: str | None,
           title: str | None, pdf: bool, template_dir: Path | None, **constraints: Any) -> None:
    """Write one self-contained HTML report over run directories: recommendation,
    per-variety degradation, cost/latency trade-offs, confusion matrices, error analysis
    and provenance. The constraint options drive the recommendation block."""
    from ..report.build import build_report, write_report
    from ..report.pdf import render_pdf

    if pdf and output.suffix.lower() == ".pdf":  # the HTML would go where the PDF goes
        raise click.UsageError(
            f"-o {output}: -o names the HTML report; --pdf writes the PDF beside it "
            f"(-o {output.with_suffix('.html').name} gives {output.name})")
    html = build_report(load_runs(run_dirs), title=title, lang=lang, reference=reference,
                        constraints=constraints_from(**constraints), template_dir=template_dir)
    write_report(output, html)
    click.echo(str(output.resolve()))
    if pdf:
        pdf_path = output.with_suffix(".pdf")
        render_pdf(output, pdf_path)
        click.echo(str(pdf_path.resolve()))


@click.command(epilog=epilog("recommend"))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@constraint_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def recommend(run_dirs: Sequence[Path], as_json: bool, **constraints: Any) -> None:
    """The cheapest (then smallest) model meeting every constraint, and for each other
    model the first constraint it fails. Exits 1 when no model qualifies."""
    from ..analysis.recommendation import recommend as recommend_model
    from ..analysis.summary import summarize, tasks_differ

    models = summarize(load_runs(run_dirs))
    if tasks_differ(models):
        click.echo("warning: the models were not all run on the same tasks: quality and cost "
                   "average over each model's own tasks; compare them task by task (report)",
                   err=True)
    result = recommend_model(models, constraints_from(**constraints))
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


@click.command(epilog=epilog("compare"))
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def compare(run_a: Path, run_b: Path, as_json: bool) -> None:
    """Paired differences B − A per task and variety on the items both runs answered,
    with 95% paired-bootstrap intervals and significance."""
    from dataclasses import asdict

    from ..analysis.compare import Difference, compare_runs
    from ..runs.rundir import load_all

    a, b = load_all([run_a, run_b], "the runs cannot be compared")
    diffs = compare_runs(a, b)
    if as_json:
        click.echo(json.dumps([asdict(d) for d in diffs], ensure_ascii=False, indent=2))
        return
    split_a, split_b = a.manifest.selection.split, b.manifest.selection.split
    if split_a == split_b:
        click.echo(f"B − A: {b.model} − {a.model} (paired over shared items, 95% CI)")
    else:  # a test_noisy run and its test run: B's own interval is its noisy row's score
        click.echo(f"B − A: {b.model} {split_b} − {a.model} {split_a} (paired by group: the "
                   "same meanings clean and as users type them, 95% CI)")

    def label(d: Difference) -> str:
        return d.metric + ("" if d.higher_is_better else " (lower is better)")

    def interval(d: Difference) -> str:
        if split_a == split_b or d.b_ci is None:
            return ""
        return f" [{100 * d.b_ci[0]:.1f}, {100 * d.b_ci[1]:.1f}]"

    width = max(len(label(d)) for d in diffs)
    for d in diffs:
        if d.delta is None or d.ci is None:
            continue
        worse = d.delta < 0 if d.higher_is_better else d.delta > 0
        mark = ("B worse" if worse else "B better") if d.significant else "ns"
        click.echo(f"  {d.task:<14} {label(d):<{width}} {d.variety:<12} n={d.n_pairs:<5} "
                   f"A {pct(d.a)}  B {pct(d.b)}{interval(d)}  Δ {100 * d.delta:+6.1f} "
                   f"[{100 * d.ci[0]:+.1f}, {100 * d.ci[1]:+.1f}] {mark}")


@click.command(epilog=epilog("verify"))
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--suite", "suite_ref", help="Suite name or folder to check against "
              "(default: the one named in each run's manifest).")
@click.option("--endpoint", help="Model YAML of the vendor's live endpoint: re-query a sample.")
@click.option("--sample", default="5%", show_default=True,
              help="Share (5%, 0.05) or number (20) of items re-queried with --endpoint.")
@click.option("--min-agreement", type=FRACTION,
              help="A fixed share of re-queried answers that must match the stored ones "
              "[default: not significantly less than the endpoint agrees with itself].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option("--json", "as_json", is_flag=True)
def verify(paths: Sequence[Path], suite_ref: str | None, endpoint: str | None, sample: str,
           min_agreement: float | None, seed: int, as_json: bool) -> None:
    """Check a submission (a run directory or a folder of runs): scores recomputed from
    raw outputs, signatures, suite checksums, items and prompts; with --endpoint, agreement
    with the vendor's live model on a seeded sample. Exits 1 if any check fails."""
    from ..adapters import load_model
    from ..verify import parse_sample, verify_run

    spec = load_model(endpoint) if endpoint else None
    share = parse_sample(sample)
    results = [verify_run(run, suite_ref=suite_ref, endpoint=spec, sample=share, seed=seed,
                          min_agreement=min_agreement) for run in load_runs(paths)]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        for result in results:
            print_checks(result.run.path.name, result.ok, ("VERIFIED", "FAILED"),
                         result.checks)
    if not all(r.ok for r in results):
        sys.exit(1)


@click.command(epilog=epilog("export"))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--what", type=click.Choice(["scores", "predictions"]), default="scores",
              show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json", "jsonl"]),
              default="csv", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
def export(run_dirs: Sequence[Path], what: str, fmt: str, output: Path) -> None:
    """Export scores or predictions of runs to CSV, Parquet or JSON."""
    from ..export import export as export_runs

    rows = export_runs(load_runs(run_dirs), what, fmt, output)  # type: ignore[arg-type]
    click.echo(f"{rows} rows -> {output}")


@click.command(epilog=epilog("rescore"))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
def rescore(run_dirs: Sequence[Path]) -> None:
    """Recompute parsed answers and scores from stored raw outputs (no model is called)."""
    from ..runs.scoring import rescore as rescore_run

    for run in load_runs(run_dirs):
        scores = rescore_run(run)
        for task, entry in scores.tasks.items():
            metric = entry.metrics[0]
            click.echo(f"{run.path.name} · {task} · {metric} "
                       f"{format_score(entry.overall.metrics.get(metric))}")
            click.echo(f"  signature: {entry.signature}")
