"""Privacy commands: ``anonymize`` (scan, apply, evaluate), ``consent`` (list, withdraw),
``retention`` (check, purge)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .common import epilog


@click.group(epilog=epilog("anonymize"))
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

    from ..privacy.files import check_files
    from ..privacy.gate import default_scanner
    from ..privacy.operations import scan_paths

    check_files(paths, "cannot scan these files")
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
    from ..privacy.files import check_files
    from ..privacy.gate import default_scanner
    from ..privacy.operations import apply_file

    check_files([source], "cannot anonymize")
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
    from ..privacy.gate import default_scanner
    from ..privacy.operations import evaluate

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


@click.group(epilog=epilog("consent"))
def consent() -> None:
    """A suite's consent register: list consents, withdraw one."""


@consent.command("list")
@click.argument("suite_name")
def consent_list(suite_name: str) -> None:
    """Consents of a suite with their status and how many items rely on each."""
    from ..privacy.consent import load_register, today, usage
    from ..suites.loader import resolve_suite

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
    from ..privacy.consent import withdraw
    from ..suites.loader import resolve_suite

    result = withdraw(resolve_suite(suite_name), consent_id)
    click.echo(f"withdrew {result.consent_id}: {result.removed} item(s) removed from "
               f"{', '.join(result.files) or 'no file'}; suite resealed")


@click.group(epilog=epilog("retention"))
def retention() -> None:
    """Expired consents: list them, or withdraw them all."""


@retention.command("check")
@click.argument("suite_name")
def retention_check(suite_name: str) -> None:
    """List expired consents; exits 1 if any."""
    from ..privacy.consent import expired
    from ..suites.loader import resolve_suite

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
    from ..privacy.consent import expired, withdraw
    from ..suites.loader import resolve_suite

    root = resolve_suite(suite_name)
    found = expired(root)
    for c in found:
        result = withdraw(root, c.id)
        click.echo(f"purged {c.id}: {result.removed} item(s) removed")
    click.echo(f"{len(found)} expired consent(s) purged")


# --------------------------------------------------------------------------- models
