"""``suites``: list, show, validate, count, import and seal evaluation suites; ``tasks``:
the registered task types."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import MoroccanEvalError
from .common import epilog


class ImportableTaskType(click.Choice):  # type: ignore[type-arg]
    """The task types ``suites import`` can build, read from the registry only when the
    option is used (``--help`` of other commands stays fast)."""

    def __init__(self) -> None:
        super().__init__([])

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from ..suites.importer import importable_types

        self.choices = tuple(importable_types())
        return super().convert(value, param, ctx)


@click.group(epilog=epilog("suites"))
def suites() -> None:
    """List, inspect and validate evaluation suites."""


@suites.command("list")
def suites_list() -> None:
    """Shipped suites and those under $MOROCCAN_EVAL_SUITES."""
    from ..suites.loader import load_suite, suite_dirs

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

    from ..suites.loader import load_suite

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
    from ..suites.loader import load_suite, suite_dirs

    failed = 0
    for name in suite_names or list(suite_dirs()):
        try:
            suite = load_suite(name)
            n = sum(t.table.num_rows for t in suite.tasks.values())
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
    from ..suites.loader import load_suite, suite_dirs
    from ..suites.stats import suite_stats, update_card_stats

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


@suites.command("audit")
@click.argument("suite_names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the audits as JSON.")
@click.option("--update-card", is_flag=True,
              help="Write the thresholds and figures into each card's Audit section.")
@click.option("--problems", is_flag=True, help="Print only the checks that warn or fail.")
def suites_audit(suite_names: Sequence[str], as_json: bool, update_card: bool,
                 problems: bool) -> None:
    """A credibility report of suites (names or folders; all shipped ones by default):
    duplicates and leakage across splits, label words in texts, a cue-only shortcut
    baseline, script purity, transliterated parallel varieties, references equal to their
    sources, accidental answer keys, CI half-widths. Exit 1 if any check fails."""
    from ..suites.audit import audit_suite, render_text, update_card_audit
    from ..suites.loader import load_suite, suite_dirs

    loaded = [load_suite(name) for name in (suite_names or list(suite_dirs()))]
    audits = [audit_suite(suite) for suite in loaded]
    if update_card:
        for suite, audit in zip(loaded, audits, strict=True):
            click.echo(f"updated {update_card_audit(suite, audit)}", err=True)
    if as_json:
        click.echo(json.dumps(audits, ensure_ascii=False, indent=2))
    else:
        click.echo("\n\n".join(render_text(audit, problems_only=problems) for audit in audits))
    if any(audit["summary"]["status"] == "FAIL" for audit in audits):
        sys.exit(1)


@suites.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet", "hf"]),
              required=True, help="hf: a dataset saved with datasets' save_to_disk.")
@click.option("--task-type", type=ImportableTaskType(), default="classification",
              show_default=True, metavar="TYPE",
              help="A task type that imports from a table: classification, translation, "
                   "asr, or a plugin's (`moroccan-eval tasks` lists them).")
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
    dataset. Its licence, card and consent register start as TODO skeletons the loader
    refuses until they are filled in."""
    from ..suites.importer import ImportSpec, import_suite, import_summary, parse_mapping

    target = import_suite(ImportSpec(
        source=source, fmt=fmt, name=name, mapping=parse_mapping(mapping), task_type=task_type,
        variety=variety, split_ratio=split_ratio, consent_id=consent_id,
        target_variety=target_variety), out_dir)
    for key, count in import_summary(target).items():
        click.echo(f"  {key:<22} {count:>5} items")
    click.echo(f"created {target}; fill in the TODO fields of suite.yaml (license), CARD.md "
               "and consent.yaml, then "
               f"run `moroccan-eval suites validate {target}`")


@suites.command("checksum")
@click.argument("suite_name")
@click.option("--write", is_flag=True, help="Update suite.yaml with the new checksums.")
def suites_checksum(suite_name: str, write: bool) -> None:
    """Print (or --write) the sha256 of a suite's task and data files after editing them."""
    from ..suites.loader import resolve_suite
    from ..suites.seal import compute_checksums, write_checksums

    root = resolve_suite(suite_name)
    sums = write_checksums(root) if write else compute_checksums(root)
    for rel, digest in sums.items():
        click.echo(f"{digest}  {rel}")
    if write:
        click.echo(f"updated {root / 'suite.yaml'}")



# --------------------------------------------------------------------------- review


@suites.group("review")
def suites_review() -> None:
    """Native-speaker review: export a sheet, import the filled verdicts, derive the
    card's validation status from them."""


@suites_review.command("export")
@click.argument("suite_name")
@click.option("--variety", required=True, help="The variety to review, e.g. ary_Latn.")
@click.option("--sample", "sample", type=int, required=True, metavar="N",
              help="Items to sample (every item of the variety when it has fewer).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Give two reviewers the same seed: they judge the same items (agreement).")
@click.option("--split", default="test", show_default=True)
@click.option("--task", "task_names", multiple=True, help="Only these tasks (repeatable).")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), required=True,
              help="sheet.html (a form filled in a browser, offline) or sheet.csv.")
def suites_review_export(suite_name: str, variety: str, sample: int, seed: int, split: str,
                         task_names: Sequence[str], out: Path) -> None:
    """Write a review sheet of a sample of one variety's items."""
    from ..suites.loader import load_suite
    from ..suites.review import export_sheet

    suite = load_suite(suite_name)
    n = export_sheet(suite, variety, sample, out, seed=seed, split=split,
                     task_names=list(task_names) or None)
    click.echo(f"wrote {out}: {n} {variety} items of {suite.ident} (seed {seed})")


@suites_review.command("import")
@click.argument("suite_name")
@click.argument("sheet", type=click.Path(path_type=Path))
@click.option("--reviewer", required=True, metavar="ID",
              help="A pseudonymous reviewer id (r01, rev-7): never a name or e-mail.")
def suites_review_import(suite_name: str, sheet: Path, reviewer: str) -> None:
    """Check a filled sheet (CSV or JSON) strictly and record its verdicts in the suite's
    reviews/ folder (not sealed: the suite's checksums stay valid)."""
    from ..suites.loader import load_suite
    from ..suites.review import import_reviews

    suite = load_suite(suite_name)
    target, recorded, blank = import_reviews(suite, sheet, reviewer)
    skipped = f"; {blank} rows left blank" if blank else ""
    click.echo(f"recorded {recorded} verdicts of {reviewer} in {target}{skipped}")


@suites_review.command("status")
@click.argument("suite_names", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
@click.option("--update-card", is_flag=True,
              help="Write the derived status into the card (front matter and review section).")
def suites_review_status(suite_names: Sequence[str], as_json: bool, update_card: bool) -> None:
    """Per variety: reviewers, items, shares of natural / stilted / wrong variety, labels
    correct, Cohen's kappa between reviewers (all shipped suites by default)."""
    from ..suites.loader import load_suite, suite_dirs
    from ..suites.review import review_status, update_card_review

    statuses = []
    for name in suite_names or list(suite_dirs()):
        suite = load_suite(name)
        status = review_status(suite)
        if update_card:
            click.echo(f"updated {update_card_review(suite, status)}", err=True)
        statuses.append(status)
    if as_json:
        click.echo(json.dumps(statuses, ensure_ascii=False, indent=2))
        return
    for status in statuses:
        click.echo(f"{status['suite']}: {status['summary']}")
        for code, review in status["varieties"].items():
            click.echo(f"  {code:<12} {review['status']}")


# --------------------------------------------------------------------------- FLORES+


@suites.command("import-flores")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("suites"),
              show_default=True, help="Folder the new suite goes into.")
@click.option("--name", default="flores-plus", show_default=True, help="Name of the new suite.")
@click.option("--password", default=None,
              help="Password of a FLORES+ release zip (its README gives it); default: the "
                   "published one.")
def suites_import_flores(source: Path, out_dir: Path, name: str, password: str | None) -> None:
    """Build translation and variety-id suites from a FLORES+ release you downloaded (zip
    archive, or its unpacked folder, or the Hugging Face dataset's parquet files):
    ary_Arab, arb_Arab, fra_Latn, zgh_Tfng, eng_Latn; dev and devtest."""
    from ..suites.flores import import_flores

    target, counts = import_flores(source, out_dir, name=name, password=password)
    for key, count in counts.items():
        click.echo(f"  {key:<32} {count:>5} items")
    click.echo(f"created {target} (CC BY-SA 4.0, attribution in its CARD.md); do not "
               "re-publish its data as plain text. Check it: "
               f"`moroccan-eval suites validate {target}`")

# --------------------------------------------------------------------------- privacy


@click.group(epilog=epilog("tasks"))
def tasks() -> None:
    """The task types installed: built-in and plugins (entry points
    ``moroccan_eval.task_types``)."""


@tasks.command("list")
def tasks_list() -> None:
    """Each task type with its metrics and baselines."""
    from .. import tasks as registry

    for name in registry.names():
        task_type = registry.get(name)
        click.echo(f"{name:<16} {task_type.description}")
        metrics = ", ".join(f"{m} ({'higher' if d else 'lower'} is better)"
                            for m, d in _directions(task_type).items())
        click.echo(f"{'':<16} metrics: {metrics}")
        if task_type.baselines:
            click.echo(f"{'':<16} baselines: {', '.join(task_type.baselines)}")


def _directions(task_type: Any) -> dict[str, bool]:
    from ..suites.schema import PromptSpec, TaskSpec

    probe = task_type(TaskSpec(name="probe", type=task_type.name, description="probe",
                               data="data/probe.jsonl", input_fields=["text"],
                               prompt=PromptSpec(user="{{ text }}")))
    return {name: metric.higher_is_better for name, metric in probe.metric_table.items()}
