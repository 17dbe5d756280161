"""``moroccan-eval suites audit``: a credibility report of a suite, shipped or imported.

Every check gives a figure, the thresholds it is held to and a status (PASS, WARN, FAIL;
INFO for figures held to none): duplicates within and across splits, groups and answer
keys shared across splits, label words in the texts, a cue-only shortcut baseline,
script purity, parallel varieties that are transliterations of each other, references
equal to (or rewriting) their sources, answer keys that match by accident, the
confidence-interval half-width at the current n, and copies of another suite's items.
Thresholds default to :data:`DEFAULTS`; a suite states its own in ``suite.yaml`` under
``audit:`` with the reason. Results are cached by the sha256 of ``suite.yaml`` (which
seals every data file), so a report can show them without recomputing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TypedDict

from ...io import canonical_json, read_text, sha256_file, write_atomic
from ...text.normalize import normalize
from ..loader import Suite, suite_dirs
from . import checks
from .checks import CheckResult, Row, Status
from .textual import CONTRAST_WORDS, tifinagh_vocabulary

__all__ = ["AUDIT_BEGIN", "AUDIT_END", "AUDIT_VERSION", "DEFAULTS", "MESSAGES", "AuditSummary",
           "CheckResult", "SuiteAudit", "audit_markdown", "audit_suite", "cached_audit",
           "card_summary", "render_text", "report_summaries", "summarize", "thresholds_line",
           "thresholds_of", "update_card_audit"]

#: The audit's format version (cached audits are also keyed by a digest of this code).
AUDIT_VERSION = "3"

#: Default thresholds (a figure above ``*_warn`` warns, above ``*_fail`` fails); a suite
#: overrides any of them in ``suite.yaml`` under ``audit:``.
DEFAULTS: dict[str, float] = {
    # character 3-gram Jaccard of normalised texts from which two texts are near-duplicates
    "near_duplicate_similarity": 0.8,
    # % of evaluated items with a (near-)duplicate in train/dev
    "leak_across_splits_warn": 0.0, "leak_across_splits_fail": 1.0,
    # % of evaluated items with a (near-)duplicate in another group of their split
    "duplicates_within_split_warn": 1.0, "duplicates_within_split_fail": 5.0,
    # groups in both an evaluated and a training split
    "shared_groups_warn": 0.0, "shared_groups_fail": 0.0,
    # % of evaluated groups whose answer key equals a training group's
    "shared_answer_keys_warn": 0.0, "shared_answer_keys_fail": 10.0,
    # % of items (per variety) whose text names their own label
    "label_leakage_warn": 10.0, "label_leakage_fail": 20.0,
    # points the cue-only baseline scores above the majority baseline (per variety); it
    # also fails when within shortcut_margin points of char n-grams and more than
    # shortcut_min_gain points above the majority baseline
    "shortcut_warn": 15.0, "shortcut_fail": 30.0, "shortcut_margin": 10.0,
    "shortcut_min_gain": 5.0,
    # items with words mixing scripts, or letters outside IRCAM inside Tifinagh words
    "script_mixing_warn": 0.0, "script_mixing_fail": 0.0,
    # % of Tifinagh items with whole Latin words not in audit.tifinagh_allow (warns only)
    "tifinagh_latin_words_warn": 20.0, "tifinagh_latin_words_fail": 100.0,
    # % of parallel texts (same language, two scripts) that transliterate each other
    "parallel_identity_warn": 30.0, "parallel_identity_fail": 60.0,
    # % of references equal to their source
    "reference_is_source_warn": 0.0, "reference_is_source_fail": 2.0,
    # % of references of a transliteration task that rewrite rather than transliterate
    "rewrites_warn": 2.0, "rewrites_fail": 5.0,
    # answer keys of at most this many characters match by accident ...
    "short_key_chars": 1,
    # ... and this % of keyed items may have one
    "accidental_keys_warn": 0.0, "accidental_keys_fail": 0.0,
    # 95% CI half-width (points) of an accuracy at the current n, per variety
    "ci_half_width_warn": 10.0, "ci_half_width_fail": 20.0,
    # % of a task's evaluated items (text and reference) found in another suite
    "copies_warn": 10.0, "copies_fail": 50.0,
}


class AuditSummary(TypedDict):
    """What a report shows of an audit."""

    suite: str
    status: Status  # the worst status of any check (INFO aside)
    counts: dict[str, int]  # status -> checks
    problems: list[str]  # one line per FAIL or WARN


class SuiteAudit(TypedDict):
    """The audit of one suite."""

    suite: str  # ident: name@version+sha
    sha256: str  # of suite.yaml, which seals every data and task file
    path: str
    audit_version: str
    thresholds: dict[str, float]
    overridden: list[str]  # thresholds the suite sets itself
    reason: str
    results: list[CheckResult]
    summary: AuditSummary


def thresholds_of(suite: Suite) -> dict[str, float]:
    """:data:`DEFAULTS` with the suite's own thresholds applied."""
    return {**DEFAULTS, **suite.spec.audit.overrides()}


def _rows(suite: Suite) -> Iterator[tuple[str, list[Row], list[str]]]:
    """(task, rows, raw keys) of each task; raw keys identify an item's text and reference
    independently of task types, to find copies in other suites."""
    for name, task in suite.tasks.items():
        task_type = task.task_type
        rows: list[Row] = []
        raw: list[str] = []
        for item in task.all_items():
            view = task_type.audit_view(item)
            rows.append(Row(id=item["id"], group=item["group"], split=item["split"],
                            variety=item["variety"], text=view["text"],
                            norm=normalize(view["text"]), label=view["label"],
                            reference_text=view["reference_text"],
                            answer_keys=view["answer_keys"], loose_keys=view["loose_keys"]))
            raw.append("" if item["split"] in checks.TRAINING_SPLITS
                       else _raw_key(item["fields"], item["reference"]))
        yield name, rows, raw


def _raw_key(fields: object, reference: object) -> str:
    texts = [str(v) for _, v in sorted(fields.items()) if isinstance(v, str)] \
        if isinstance(fields, dict) else []
    return normalize(" ".join(texts)) + "\x00" + canonical_json(reference)


def _other_suites(suite: Suite) -> dict[str, Path]:
    """Suites beside this one (same parent folder) and the shipped ones, by name; the
    neighbours win, so a copy of the shipped suites is compared with itself."""
    found: dict[str, Path] = {}
    parent = suite.path.resolve().parent
    for child in sorted(parent.iterdir()) if parent.is_dir() else []:
        if (child / "suite.yaml").is_file():
            found[child.name] = child
    for name, path in suite_dirs().items():
        found.setdefault(name, path)
    own = suite.path.resolve()
    return {name: path for name, path in found.items() if path.resolve() != own}


def _scan_suite(path: Path) -> tuple[dict[str, set[str]], list[str]]:
    """Of another suite, read as plain JSON lines: the raw keys of its evaluated items by
    data file, and its texts holding Tifinagh (to know the words it writes in Tifinagh)."""
    keys_by_file: dict[str, set[str]] = {}
    tifinagh: list[str] = []
    data = path / "data"
    for file in sorted(data.rglob("*.jsonl")) if data.is_dir() else []:
        keys: set[str] = set()
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            if any("\u2d30" <= c <= "\u2d7f" for c in line):
                tifinagh.append(line)
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and item.get("split") not in checks.TRAINING_SPLITS:
                keys.add(_raw_key(item.get("fields"), item.get("reference")))
        keys_by_file[str(file.relative_to(path))] = keys
    return keys_by_file, tifinagh


def _copies(task: str, raw: list[str], others: dict[str, dict[str, set[str]]],
            t: dict[str, float]) -> list[CheckResult]:
    mine = [k for k in raw if k]
    if not mine or not others:
        return []
    best, where = 0, ""
    for suite_name, files in others.items():
        for file, keys in files.items():
            found = sum(k in keys for k in mine)
            if found > best:
                best, where = found, f"{suite_name}/{file}"
    texts = [k.split("\x00", 1)[0] for k in mine]
    elsewhere = {k.split("\x00", 1)[0] for files in others.values() for keys in files.values()
                 for k in keys}
    shared = sum(text in elsewhere for text in texts)
    copied = f"also in {where}" if where else "copies of another suite's items"
    return [checks.judged("copies", task, "all", checks.pct(best, len(mine)), "%",
                          t["copies_warn"], t["copies_fail"],
                          f"{best} of {len(mine)} evaluated items (text and reference) are "
                          f"{copied}", [where] if where else []),
            checks.info("texts_in_other_suites", task, "all", checks.pct(shared, len(texts)),
                        "%", f"{shared} of {len(texts)} evaluated texts also appear (with "
                        "another task or reference) in another suite")]


def audit_suite(suite: Suite) -> SuiteAudit:
    """Run every check on every task of a loaded suite."""
    t = thresholds_of(suite)
    allow = frozenset(suite.spec.audit.tifinagh_allow)
    contrast = CONTRAST_WORDS | {normalize(w) for w in suite.spec.audit.contrast_words}
    scans = {name: _scan_suite(path) for name, path in _other_suites(suite).items()}
    others = {name: keys for name, (keys, _) in scans.items()}
    results: list[CheckResult] = []
    tasks = list(_rows(suite))
    # the words this suite and its neighbours write in Tifinagh
    vocabulary = tifinagh_vocabulary(
        [text for _, rows, _ in tasks for r in rows for text in (r.text, r.reference_text or "")]
        + [line for _, lines in scans.values() for line in lines])
    for name, rows, raw in tasks:
        labels = {label: spec.aliases for label, spec in suite.tasks[name].spec.labels.items()}
        has_labels = any(r.label is not None for r in rows)
        results += checks.sample_size(name, rows, t)
        results += checks.duplicates(name, rows, t)
        results += checks.shared_groups(name, rows, t)
        results += checks.shared_answer_keys(name, rows, t)
        results += checks.accidental_keys(name, rows, t)
        if has_labels:
            results += checks.label_leakage(name, rows, labels, t)
            results += checks.shortcut(name, rows, t, contrast)
        results += checks.script_purity(name, rows, allow, t, vocabulary)
        results += checks.reference_purity(name, rows, allow, t, vocabulary)
        results += checks.parallel_identity(name, rows, t)
        results += checks.references(name, rows, t)
        results += _copies(name, raw, others, t)
        results += checks.chat_style(name, rows)
    audit: SuiteAudit = {
        "suite": suite.ident, "sha256": suite.sha256, "path": str(suite.path),
        "audit_version": AUDIT_VERSION,
        "thresholds": t, "overridden": sorted(suite.spec.audit.overrides()),
        "reason": suite.spec.audit.reason, "results": results,
        "summary": summarize(suite.ident, results)}
    _store(suite.sha256, audit)
    return audit


def summarize(ident: str, results: list[CheckResult]) -> AuditSummary:
    """The worst status, counts by status and one line per problem."""
    counts = Counter(r["status"] for r in results)
    status: Status = ("FAIL" if counts["FAIL"] else "WARN" if counts["WARN"] else "PASS")
    problems = [f"{r['status']} {r['check']} {r['task']}"
                + ("" if r["scope"] == "all" else f" {r['scope']}")
                + f": {_figure(r)} — {r['detail']}"
                for r in results if r["status"] in ("FAIL", "WARN")]
    problems.sort(key=lambda line: not line.startswith("FAIL"))
    return {"suite": ident, "status": status,
            "counts": {s: counts[s] for s in ("PASS", "WARN", "FAIL", "INFO")},
            "problems": problems}


def _figure(r: CheckResult) -> str:
    if r["figure"] is None:
        return "–"
    unit = r["unit"]
    value = f"{r['figure']:g}"
    return f"{value}%" if unit == "%" else f"{value} {unit}"


def _limits(r: CheckResult) -> str:
    if r["warn"] is None or r["fail"] is None:
        return ""
    also = f", or {r['also_fails']}" if r["also_fails"] else ""
    return f"warn > {r['warn']:g}, fail > {r['fail']:g}{also}"


def render_text(audit: SuiteAudit, *, problems_only: bool = False) -> str:
    """The audit as terminal text: one line per check, the worst first within a task."""
    summary = audit["summary"]
    counts = ", ".join(f"{n} {s}" for s, n in summary["counts"].items() if n)
    lines = [f"{audit['suite']}  {summary['status']}  ({counts})  {audit['path']}"]
    if audit["overridden"]:
        lines.append(f"  thresholds set by the suite: {', '.join(audit['overridden'])} "
                     f"({audit['reason']})")
    for r in audit["results"]:
        if problems_only and r["status"] not in ("FAIL", "WARN"):
            continue
        limits = _limits(r)
        lines.append(f"  {r['status']:<4} {r['check']:<24} {r['task']:<18} {r['scope']:<20} "
                     f"{_figure(r):>12}  {('(' + limits + ')') if limits else ''}")
        lines.append(f"       {r['detail']}")
        if r["status"] in ("FAIL", "WARN") and r["examples"]:
            lines.append(f"       e.g. {'; '.join(r['examples'][:3])}")
    return "\n".join(lines)


AUDIT_BEGIN, AUDIT_END = "<!-- audit:begin -->", "<!-- audit:end -->"


def audit_markdown(audit: SuiteAudit) -> str:
    """The card's Audit section: status, thresholds and every figure."""
    summary = audit["summary"]
    lines = ["Generated by `moroccan-eval suites audit --update-card`; do not edit by hand.",
             "", f"**Status: {summary['status']}** (" + ", ".join(
                 f"{n} {s}" for s, n in summary["counts"].items() if n) + ")", ""]
    if audit["overridden"]:
        lines += [f"Thresholds this suite sets itself: {', '.join(audit['overridden'])} — "
                  f"{audit['reason']}", ""]
    lines += [thresholds_line(audit["thresholds"]), ""]
    tasks = list(dict.fromkeys(r["task"] for r in audit["results"]))
    for task in tasks:
        rows = [r for r in audit["results"] if r["task"] == task]
        lines += [f"**{task}**", ""]
        for r in rows:
            if r["scope"] == "all":
                lines.append(f"- {r['check']}: {_figure(r)} {r['status']} — {r['detail']}")
        scoped = [r for r in rows if r["scope"] != "all"]
        columns = list(dict.fromkeys(r["check"] for r in scoped))
        scopes = list(dict.fromkeys(r["scope"] for r in scoped))
        if scoped:
            cells = {(r["scope"], r["check"]): r for r in scoped}
            lines += ["", "| scope | " + " | ".join(columns) + " |",
                      "|---|" + "---:|" * len(columns)]
            for scope in scopes:
                row = []
                for check in columns:
                    cell = cells.get((scope, check))
                    row.append("" if cell is None else _figure(cell) + (
                        "" if cell["status"] in ("PASS", "INFO") else f" **{cell['status']}**"))
                lines.append(f"| {scope} | " + " | ".join(row) + " |")
            # figures held to no threshold carry more than their one number
            notes = [r for r in scoped if r["status"] == "INFO"]
            if notes:
                lines.append("")
                lines += [f"- {r['check']} {r['scope']}: {r['detail']}" for r in notes]
        lines.append("")
    # for reports: the summary of this very suite version, read without re-auditing
    record = json.dumps({"sha256": audit["sha256"], "summary": summary}, ensure_ascii=False)
    record = record.replace("--", "-\\u002d")  # JSON still, and never closes the comment
    lines.append(f"{_SUMMARY_MARK} {record} -->")
    return "\n".join(lines)


_SUMMARY_MARK = "<!-- audit-summary:"


def card_summary(suite_dir: Path, sha256: str) -> AuditSummary | None:
    """The audit summary the card of ``suite_dir`` records (``--update-card``) if it was
    computed on the suite version whose ``suite.yaml`` has ``sha256``."""
    try:
        text = (suite_dir / "CARD.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    start = text.find(_SUMMARY_MARK)
    end = text.find("-->", start)
    if start < 0 or end < 0:
        return None
    try:
        record = json.loads(text[start + len(_SUMMARY_MARK):end])
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("sha256") != sha256:
        return None
    summary = record.get("summary")
    return summary if isinstance(summary, dict) else None  # type: ignore[return-value]


def thresholds_line(thresholds: Mapping[str, float]) -> str:
    """The card's statement of the thresholds its audit is held to."""
    return ("Thresholds (a figure above *warn* warns, above *fail* fails): "
            + "; ".join(f"{k} {v:g}" for k, v in thresholds.items()) + ".")


def update_card_audit(suite: Suite, audit: SuiteAudit) -> Path:
    """Write the Audit section into the suite's card between its audit markers, adding
    the section at the end of the card if it has none yet."""
    from ..stats import replace_card_section

    path = suite.path / "CARD.md"
    body = audit_markdown(audit)
    if not replace_card_section(path, AUDIT_BEGIN, AUDIT_END, body):
        text = read_text(path, "suite card").rstrip("\n")
        write_atomic(path, f"{text}\n\n## Audit\n\n{AUDIT_BEGIN}\n{body}\n{AUDIT_END}\n")
    return path


# ------------------------------------------------------------------ cache


@cache
def _code_digest() -> str:
    """The audit's own source, hashed: an edited check never reads a stale cached audit."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def _cache_path(sha256: str) -> Path:
    from ...cache import default_cache_dir

    return default_cache_dir() / "audit" / f"{sha256}-v{AUDIT_VERSION}-{_code_digest()}.json"


def _store(sha256: str, audit: SuiteAudit) -> None:
    # a cache that cannot be written only makes the next report slower
    with contextlib.suppress(Exception):
        write_atomic(_cache_path(sha256), json.dumps(audit, ensure_ascii=False))


def cached_audit(suite_dir: Path, sha256: str) -> SuiteAudit | None:
    """The audit of the suite at ``suite_dir`` if its ``suite.yaml`` still has
    ``sha256`` (the suite a run used): from the cache, else computed and cached;
    ``None`` when the folder holds another version or cannot be audited."""
    from ...errors import MoroccanEvalError
    from ..loader import load_suite

    yaml_path = suite_dir / "suite.yaml"
    if not yaml_path.is_file() or sha256_file(yaml_path) != sha256:
        return None
    try:
        cached = json.loads(_cache_path(sha256).read_text(encoding="utf-8"))
        if isinstance(cached, dict) and cached.get("audit_version") == AUDIT_VERSION:
            return cached  # type: ignore[return-value]
    except (OSError, ValueError):
        pass
    try:
        # the sha256 proves this is the sealed suite the run loaded through the privacy
        # gate; the audit only counts, so the PII scan is not repeated here
        return audit_suite(load_suite(suite_dir, allow_unanonymized=True))
    except MoroccanEvalError:
        return None


def report_summaries(suites: Mapping[str, tuple[str, str]]) -> dict[str, AuditSummary | None]:
    """For the report's Provenance section: by suite ident, the audit summary of the
    suite (``(name, sha256 of suite.yaml)``) if a folder of that very version is found
    (shipped or under ``$MOROCCAN_EVAL_SUITES``), else ``None``: as its card records it,
    else from the cache, else computed once."""
    folders = suite_dirs()
    out: dict[str, AuditSummary | None] = {}
    for ident, (name, sha256) in suites.items():
        folder = folders.get(name)
        if folder is None or not (folder / "suite.yaml").is_file() or sha256_file(
                folder / "suite.yaml") != sha256:
            out[ident] = None  # not found, or the folder now holds another version
        elif (recorded := card_summary(folder, sha256)) is not None:
            out[ident] = recorded
        else:
            audit = cached_audit(folder, sha256)
            out[ident] = audit["summary"] if audit is not None else None
    return out


#: The report's words for the audit, by language (passed to its translator).
MESSAGES: dict[str, dict[str, str]] = {
    "en": {"audit": "Data audit",
           "audit_counts": "{passed} checks pass, {warned} warn, {failed} fail "
                           "(moroccan-eval suites audit)",
           "audit_missing": "not available: this version of the suite was not found here "
                            "(run moroccan-eval suites audit on it)"},
    "fr": {"audit": "Audit des données",
           "audit_counts": "{passed} contrôles réussis, {warned} avertissements, {failed} "
                           "échecs (moroccan-eval suites audit)",
           "audit_missing": "indisponible : cette version de la suite est introuvable ici "
                            "(lancez moroccan-eval suites audit dessus)"},
    "ar": {"audit": "تدقيق البيانات",
           "audit_counts": "{passed} فحصًا ناجحًا، {warned} تحذيرًا، {failed} إخفاقًا "
                           "(moroccan-eval suites audit)",
           "audit_missing": "غير متاح: لم يُعثر هنا على هذه النسخة من المجموعة "
                            "(شغّل moroccan-eval suites audit عليها)"},
}
