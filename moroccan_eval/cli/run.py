"""``run`` and ``demo``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from .. import collector
from ..errors import MoroccanEvalError, Problems, RunError
from ..suites.schema import SPLITS
from .common import FRACTION, cache_dir_option, check_out_dir, epilog, print_headlines


def _check_shard(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from ..records import parse_shard

    if value is None:
        return None
    try:
        index, count = parse_shard(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return f"{index}/{count}"


@click.command(epilog=epilog("run"))
@click.option("--suite", "suite_name", required=True, help="Suite name or folder.")
@click.option("--model", "models", required=True, multiple=True,
              help="Model YAML, a shipped models/ name, or a built-in (majority, char-ngram). "
                   "Repeat for several models.")
@click.option("--task", "tasks", multiple=True, help="Only these tasks (repeatable).")
@click.option("--variety", "varieties_", multiple=True, help="Only these varieties (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="At most N items per variety.")
@click.option("--split", default="test", show_default=True, type=click.Choice(SPLITS),
              help="Items to run. test_noisy: the same meanings as test, typed as users do; "
              "report it with the test run of the same model to see its own degradation row.")
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
@click.option("--max-error-rate", type=FRACTION,
              help="Mark a run failed (exit 1) when more requests than this share (0.05, 5%) "
              "fail. A run where no request succeeded always fails.")
@click.option("--shard", callback=_check_shard, metavar="I/N",
              help="Only shard I of N (0 <= I < N) of the item groups, e.g. one job of a "
              "Slurm array or CI matrix; join the shards with `moroccan-eval merge`.")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes for each model answered in this process (the python "
              "adapter's plain functions, the built-in baselines): its items are dealt among "
              "them. Other models are unaffected.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="ray: split models x shards into Ray tasks (extra "
              "'ray'); each model's shards are merged into one run directory.")
@click.option("--address", help="Ray cluster to join (auto, ray://HOST:10001) [default: a "
              "local Ray instance]. Only with --executor ray.")
@click.option("--shards", type=click.IntRange(min=1),
              help="Shards per model for --executor ray [default: the cluster's CPUs].")
def run(suite_name: str, models: Sequence[str], tasks: Sequence[str],
        varieties_: Sequence[str], limit: int | None, split: str, concurrency: int | None,
        out_dir: Path, seed: int, max_cost: float | None, currency: str,
        usd_mad: float | None, no_cache: bool, cache_dir: Path | None,
        progress: bool | None, perturb: str | None, allow_unanonymized: bool,
        max_error_rate: float | None, shard: str | None, processes: int, executor: str,
        address: str | None, shards: int | None) -> None:
    """Run models on a suite and print per-variety scores with their signatures."""
    with collector.paused():  # the start-up makes long-lived objects only
        from .. import varieties
        from ..adapters import load_model
        from ..costing import DEFAULT_USD_MAD
        from ..runs.runner import RunOptions
        from ..runs.runner import run as run_models
        from ..suites.loader import load_suite

        if executor != "ray" and (address or shards):
            raise click.UsageError("--address and --shards go with --executor ray")
        if executor == "ray" and processes > 1:
            raise click.UsageError("--processes goes with the local executor: Ray runs each "
                                   "shard in a process of its own (--shards)")
        problems = Problems()
        for code in varieties_:
            problems.attempt(varieties.get, code)
        specs = [spec for m in models if (spec := problems.attempt(load_model, m)) is not None]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            problems.add(MoroccanEvalError(f"two --model options have the same name: {names}"))
        suite = problems.attempt(load_suite, suite_name, allow_unanonymized=allow_unanonymized)
        if suite is not None:
            for task in tasks:
                problems.attempt(suite.task, task)
        problems.attempt(check_out_dir, out_dir)
        problems.raise_any("the run cannot start")
        assert suite is not None  # raise_any raised otherwise
        if allow_unanonymized:
            click.echo("warning: --allow-unanonymized: the suite was not checked for personal "
                       "data; keep these runs private", err=True)
        options = RunOptions(
            suite=suite, out_dir=out_dir, tasks=list(tasks) or None,
            varieties=list(varieties_) or None, limit=limit, split=split, seed=seed,
            concurrency=concurrency, cache_dir=cache_dir_option(no_cache, cache_dir),
            max_cost=max_cost, currency=currency,  # type: ignore[arg-type]
            usd_mad=usd_mad or DEFAULT_USD_MAD, progress=progress, perturb=perturb,
            max_error_rate=max_error_rate, shard=shard, trivial_baselines=True,
            processes=processes,
        )
    if executor == "ray":
        from ..runs.ray_executor import run_on_ray

        results = run_on_ray(options, specs, address=address, shards=shards)
    else:
        results = run_models(options, specs)
    for result in results:
        print_headlines(result)
    failed = [r for r in results if r.status.startswith("failed")]
    if failed:
        raise RunError(f"{len(failed)} of {len(results)} run(s) failed: "
                       + "; ".join(f"{r.path.name}: {r.status}" for r in failed))


@click.command(epilog=epilog("demo"))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("demo-out"),
              show_default=True)
@click.option("--suite", "suite_names", multiple=True,
              help="Suite to include (repeatable) [default: every shipped suite].")
@click.option("--limit", type=click.IntRange(min=1), help="At most N items per variety.")
def demo(out_dir: Path, suite_names: Sequence[str], limit: int | None) -> None:
    """Evaluate the offline baselines on the shipped suites and write an HTML report."""
    from ..demo import run_demo

    check_out_dir(out_dir)
    report = run_demo(out_dir, suite_names, limit=limit, on_result=print_headlines)
    click.echo(f"\nreport: {report.resolve()}")


@click.command(epilog=epilog("merge"))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs"),
              show_default=True, help="Folder receiving the merged run directory.")
@click.option("--suite", "suite_name",
              help="Suite name or folder the shards ran [default: the shipped suite they name].")
def merge(run_dirs: Sequence[Path], out_dir: Path, suite_name: str | None) -> None:
    """Join the shards of a run (``run --shard I/N``) into the one run they split, with
    scores recomputed over every item; check it with ``verify`` as any run."""
    from ..runs.merge import merge_runs
    from ..runs.rundir import load_run
    from ..runs.runner import RunResult
    from ..suites.loader import load_suite

    check_out_dir(out_dir)
    suite = load_suite(suite_name) if suite_name else None
    path = merge_runs(list(run_dirs), out_dir, suite)
    print_headlines(RunResult(path=path, status="complete", scores=load_run(path).scores))
