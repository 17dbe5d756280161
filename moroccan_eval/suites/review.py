"""Native-speaker review of a suite: sheets a reviewer fills offline, the verdicts recorded
in the suite, agreement between reviewers, and the card's validation status derived from
them.

``suites review export`` samples items of one variety into a sheet: a self-contained HTML
form (no network, works from ``file://``; it saves the filled verdicts as CSV or JSON) or
a CSV file for spreadsheet users. ``suites review import`` checks a filled sheet strictly
and records its verdicts as ``reviews/<reviewer>-<date>.jsonl`` inside the suite, with a
pseudonymous reviewer id and nothing else about the person. ``suites review status``
derives, per variety, who-many reviewers, items, shares and Cohen's kappa, and with
``--update-card`` writes them into the card's front matter (``validation_status``,
``validation_by_variety``, which runs, the report and the leaderboard read) and between its
``review`` markers.

Reviews and checksums: ``reviews/`` is not a sealed folder (only ``tasks/`` and ``data/``
are, see :mod:`.seal`), so recording a review never invalidates a suite's checksums or its
identity (the sha256 of suite.yaml). Each verdict instead carries the sha256 of the item it
judged (variety, fields, reference): when an item changes after its review, the verdict
no longer counts and ``status`` reports it as stale.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from itertools import combinations
from pathlib import Path
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import varieties
from ..errors import ConfigError
from ..io import (
    JSONValue,
    csv_delimiter,
    parse_yaml,
    read_text,
    sha256_json,
    spreadsheet_text,
    write_atomic,
    write_jsonl,
)
from .loader import Suite, Task
from .schema import CardSpec, Item
from .stats import replace_card_section

REVIEWS = "reviews"
VERDICTS = ("natural", "stilted", "wrong_variety")
YES_NO = ("yes", "no")
#: Columns of a CSV sheet and of the CSV the HTML sheet saves (``text`` and ``label`` are
#: shown to the reviewer and ignored on import).
COLUMNS = ("suite", "suite_version", "task", "item_id", "variety", "item_sha256", "text",
           "label", "verdict", "label_correct", "suggested_fix", "comment")
JSON_FORMAT = "moroccan-eval-review/1"
MAX_FREE_TEXT = 2000
REVIEW_BEGIN, REVIEW_END = "<!-- review:begin -->", "<!-- review:end -->"
_TEMPLATES = Path(__file__).parent / "templates"

Verdict = Literal["natural", "stilted", "wrong_variety"]


class SheetItem(TypedDict):
    """One item as a reviewer sees it."""

    task: str
    item_id: str
    group: str
    variety: str
    item_sha256: str
    fields: dict[str, str]  # input field -> text shown
    label: str  # the label (classification) or reference, as text
    label_kind: str  # "label" or "reference"
    label_help: str  # the label's description, when it has one


class ReviewRecord(BaseModel):
    """One recorded verdict (a line of ``reviews/<reviewer>-<date>.jsonl``)."""

    model_config = ConfigDict(extra="forbid")

    suite: str
    suite_version: str
    task: str
    item_id: str
    group: str
    variety: str
    item_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reviewer: str
    date: date
    verdict: Verdict
    label_correct: Literal["yes", "no"]
    suggested_fix: str = Field(default="", max_length=MAX_FREE_TEXT)
    comment: str = Field(default="", max_length=MAX_FREE_TEXT)


class VarietyReview(TypedDict):
    """What the recorded reviews say of one variety."""

    variety: str
    reviewers: int
    items: int  # distinct items with at least one current verdict
    verdicts: int
    natural: float | None  # shares of current verdicts
    stilted: float | None
    wrong_variety: float | None
    label_correct: float | None
    kappa: float | None  # Cohen's kappa on the verdicts of items two reviewers judged
    label_kappa: float | None  # the same on "label correct?"
    agreement: float | None  # raw agreement on those items
    double_reviewed: int  # items judged by two reviewers or more
    stale: int  # verdicts on items that changed since they were judged
    status: str


class ReviewStatus(TypedDict):
    suite: str
    varieties: dict[str, VarietyReview]
    summary: str


# --------------------------------------------------------------------------- items


def item_sha256(item: Item) -> str:
    """What a verdict judged: the item's variety, fields and reference."""
    return sha256_json({"variety": item["variety"], "fields": item["fields"],
                        "reference": item["reference"]})


def _as_text(value: JSONValue) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def sheet_item(task: Task, item: Item) -> SheetItem:
    """The item as a reviewer sees it: its input fields and its label or reference."""
    fields = {name: _as_text(item["fields"].get(name)) for name in task.spec.input_fields
              if item["fields"].get(name) not in (None, "")}
    is_label = bool(task.spec.labels) and isinstance(item["reference"], str)
    label_help = ""
    if is_label and isinstance(item["reference"], str) and item["reference"] in task.spec.labels:
        label_help = task.spec.labels[item["reference"]].description
    return {"task": task.name, "item_id": item["id"], "group": item["group"],
            "variety": item["variety"], "item_sha256": item_sha256(item), "fields": fields,
            "label": _as_text(item["reference"]),
            "label_kind": "label" if is_label else "reference", "label_help": label_help}


def suite_varieties(suite: Suite) -> list[str]:
    """Varieties with items in any task and split, in registry order."""
    present = {v for task in suite.tasks.values() for v in task.column("variety")}
    return [code for code in varieties.registry() if code in present] + sorted(
        str(v) for v in present if v not in varieties.registry())


def sample_items(suite: Suite, variety: str, n: int, *, seed: int = 0,
                 split: str = "test", task_names: list[str] | None = None) -> list[SheetItem]:
    """A seeded sample of ``n`` items of one variety (every item when fewer), across the
    suite's tasks. The same suite version, variety and seed give the same sample, so two
    reviewers given the same seed judge the same items (for their agreement)."""
    if variety not in suite_varieties(suite):
        raise ConfigError(f"--variety: suite '{suite.name}' has no item in '{variety}'"
                          f" (varieties: {', '.join(suite_varieties(suite))})")
    if n < 1:
        raise ConfigError("--sample: give a number of items of at least 1")
    chosen_tasks = [suite.task(name) for name in task_names] if task_names else list(
        suite.tasks.values())
    pool = [(task, item) for task in chosen_tasks for item in task.all_items()
            if item["variety"] == variety and item["split"] == split]
    if not pool:
        raise ConfigError(f"--split: suite '{suite.name}' has no {split} item in '{variety}'")
    rng = random.Random(f"{seed}|{suite.name}|{suite.version}|{variety}|{split}")
    picked = rng.sample(pool, min(n, len(pool)))
    picked.sort(key=lambda pair: (pair[0].name, pair[1]["id"]))
    return [sheet_item(task, item) for task, item in picked]


# --------------------------------------------------------------------------- export


def render_html(suite: Suite, variety: str, items: list[SheetItem], *, seed: int,
                split: str) -> str:
    """The HTML sheet: one self-contained page, its styles and script inline."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(_TEMPLATES), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "j2"]))
    info = varieties.registry().get(variety)
    return env.get_template("review_sheet.html.j2").render(
        suite=suite.name, version=suite.version, variety=variety,
        variety_name=info.names.en if info else variety,
        direction=info.direction if info else "auto", items=items, seed=seed, split=split,
        exported=datetime.now(UTC).date().isoformat(), verdicts=VERDICTS,
        columns=COLUMNS, json_format=JSON_FORMAT, max_text=MAX_FREE_TEXT)


def render_csv(suite: Suite, items: list[SheetItem]) -> str:
    """The CSV sheet: one row per item, the reviewer fills the last four columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for item in items:
        text = "\n".join(f"{k}: {v}" if len(item["fields"]) > 1 else v
                         for k, v in item["fields"].items())
        writer.writerow([suite.name, suite.version, item["task"], item["item_id"],
                         item["variety"], item["item_sha256"], spreadsheet_text(text),
                         spreadsheet_text(item["label"]), "", "", "", ""])
    # a byte-order mark, so that spreadsheet programs open Arabic and Tifinagh as UTF-8
    return "\ufeff" + out.getvalue()


def export_sheet(suite: Suite, variety: str, n: int, out: Path, *, seed: int = 0,
                 split: str = "test", task_names: list[str] | None = None) -> int:
    """Write a review sheet (``.html`` or ``.csv``, by the suffix of ``out``); the number of
    items in it."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".csv"):
        raise ConfigError(f"-o: {out}: name the sheet .html (a form to fill in a browser) or "
                          ".csv (for a spreadsheet)")
    items = sample_items(suite, variety, n, seed=seed, split=split, task_names=task_names)
    text = (render_csv(suite, items) if suffix == ".csv"
            else render_html(suite, variety, items, seed=seed, split=split))
    write_atomic(out, text)
    return len(items)


# --------------------------------------------------------------------------- import

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{1,31}")
_LETTER_RUN = re.compile(r"[a-z]{5,}")


def reviewer_problem(reviewer: str) -> str | None:
    """Why ``reviewer`` is not a pseudonymous id (``r01``, ``rev-17``, ``a3f9c2``), or None.

    Only a pseudonym is ever recorded: an e-mail address, or anything with a run of five
    letters or more (a first or last name: ``fatima``, ``bennani``), is refused.
    """
    if "@" in reviewer:
        return (f"'{reviewer}' looks like an e-mail address; record a pseudonymous id such as "
                "r01 and keep who it is elsewhere (never in the suite)")
    if not _ID.fullmatch(reviewer):
        return (f"'{reviewer}' is not a pseudonymous id: use 2-32 lowercase letters, digits, "
                "'-' or '_' (e.g. r01, rev-7)")
    if _LETTER_RUN.search(reviewer) or not re.search(r"\d", reviewer):
        return (f"'{reviewer}' may be a name; use a pseudonym with digits and no run of five "
                "letters or more (e.g. r01, nat-12, a3f9c2)")
    return None


class _Row(TypedDict):
    where: str
    task: str
    item_id: str
    variety: str
    item_sha256: str
    suite: str
    suite_version: str
    verdict: str
    label_correct: str
    suggested_fix: str
    comment: str


def _read_rows(path: Path) -> list[_Row]:
    """The rows of a filled sheet, CSV or JSON (by content), each with where it came from."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 "
                          "(in a spreadsheet: CSV UTF-8)") from None
    if text.lstrip().startswith("{"):
        return _json_rows(path, text)
    return _csv_rows(path, text)


def _json_rows(path: Path, text: str) -> list[_Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): "
                          f"{exc.msg}") from None
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
        raise ConfigError(f"{path}: format: expected \"{JSON_FORMAT}\" (a file saved by the "
                          "HTML review sheet)")
    verdicts = data.get("verdicts")
    if not isinstance(verdicts, list):
        raise ConfigError(f"{path}: verdicts: expected a list of verdicts")
    rows: list[_Row] = []
    keys = set(COLUMNS) - {"text", "label"}
    for number, entry in enumerate(verdicts, start=1):
        where = f"{path}: verdicts[{number - 1}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected an object")
        if unknown := sorted(set(entry) - set(COLUMNS)):
            raise ConfigError(f"{where}: unknown field '{unknown[0]}' (fields: "
                              f"{', '.join(sorted(keys))})")
        for key in keys:
            if not isinstance(entry.get(key, ""), str):
                raise ConfigError(f"{where}: {key}: expected text")
        rows.append(_row(where, {k: str(entry.get(k, "")) for k in keys}))
    return rows


def _csv_rows(path: Path, text: str) -> list[_Row]:
    # a spreadsheet in a French locale saves the sheet with semicolons
    reader = csv.DictReader(io.StringIO(text, newline=""),
                            delimiter=csv_delimiter(text.partition("\n")[0]))
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ConfigError(f"{path}: row 1: missing column '{missing[0]}' (a sheet has the "
                          f"columns {', '.join(COLUMNS)}); export a new sheet with "
                          "`moroccan-eval suites review export`")
    if extra := [c for c in header if c not in COLUMNS]:
        raise ConfigError(f"{path}: row 1: unknown column '{extra[0]}'")
    rows: list[_Row] = []
    try:
        for record in reader:
            where = f"{path}: row {reader.line_num}"
            if None in record:
                raise ConfigError(f"{where}: more cells than columns")
            rows.append(_row(where, {k: (v or "") for k, v in record.items()}))
    except csv.Error as exc:
        raise ConfigError(f"{path}: row {reader.line_num}: not valid CSV: {exc}") from None
    return rows


def _row(where: str, cells: dict[str, str]) -> _Row:
    return {"where": where, "task": cells["task"].strip(), "item_id": cells["item_id"].strip(),
            "variety": cells["variety"].strip(), "item_sha256": cells["item_sha256"].strip(),
            "suite": cells["suite"].strip(), "suite_version": cells["suite_version"].strip(),
            "verdict": cells["verdict"].strip().lower(),
            "label_correct": cells["label_correct"].strip().lower(),
            "suggested_fix": cells["suggested_fix"].strip(),
            "comment": cells["comment"].strip()}


def read_verdicts(suite: Suite, path: Path, reviewer: str,
                  today: date | None = None) -> tuple[list[ReviewRecord], int]:
    """The verdicts of a filled sheet, checked strictly against the suite (the first
    problem names the file, row and field); and how many rows were left blank."""
    if problem := reviewer_problem(reviewer):
        raise ConfigError(f"--reviewer: {problem}")
    when = today or datetime.now(UTC).date()
    items: dict[tuple[str, str], Item] = {}
    for task in suite.tasks.values():
        for item in task.all_items():
            items[(task.name, item["id"])] = item
    records: list[ReviewRecord] = []
    seen: dict[tuple[str, str], str] = {}
    blank = 0
    rows = _read_rows(path)
    if not rows:
        raise ConfigError(f"{path}: holds no row")
    for row in rows:
        where = row["where"]
        if row["suite"] != suite.name:
            raise ConfigError(f"{where}: suite: '{row['suite']}' but this is suite "
                              f"'{suite.name}'; import the sheet into the suite it came from")
        key = (row["task"], row["item_id"])
        found = items.get(key)
        if found is None:
            raise ConfigError(f"{where}: item_id: suite '{suite.name}' has no item "
                              f"'{row['item_id']}' in task '{row['task']}'")
        item = found
        if row["variety"] != item["variety"]:
            raise ConfigError(f"{where}: variety: '{row['variety']}' but item "
                              f"'{row['item_id']}' is {item['variety']}")
        if row["item_sha256"] != item_sha256(item):
            raise ConfigError(f"{where}: item_sha256: item '{row['item_id']}' changed since "
                              "the sheet was exported (suite version "
                              f"{row['suite_version'] or '?'}, now {suite.version}); export a "
                              "new sheet and review the current text")
        if not row["verdict"] and not row["label_correct"] and not (
                row["suggested_fix"] or row["comment"]):
            blank += 1  # an item the reviewer left out
            continue
        if row["verdict"] not in VERDICTS:
            raise ConfigError(f"{where}: verdict: '{row['verdict']}' is not one of "
                              f"{', '.join(VERDICTS)}")
        if row["label_correct"] not in YES_NO:
            raise ConfigError(f"{where}: label_correct: '{row['label_correct']}' is not yes "
                              "or no")
        for name in ("suggested_fix", "comment"):
            if len(row[name]) > MAX_FREE_TEXT:
                raise ConfigError(f"{where}: {name}: longer than {MAX_FREE_TEXT} characters")
        if key in seen:
            raise ConfigError(f"{where}: item_id: '{row['item_id']}' of task '{row['task']}' "
                              f"already judged in this file ({seen[key]})")
        seen[key] = where
        records.append(ReviewRecord(
            suite=suite.name, suite_version=suite.version, task=row["task"],
            item_id=row["item_id"], group=item["group"], variety=item["variety"],
            item_sha256=row["item_sha256"], reviewer=reviewer, date=when,
            verdict=row["verdict"],  # type: ignore[arg-type]
            label_correct=row["label_correct"],  # type: ignore[arg-type]
            suggested_fix=row["suggested_fix"], comment=row["comment"]))
    if not records:
        raise ConfigError(f"{path}: no verdict filled in ({blank} blank rows); fill verdict "
                          "and label_correct for the items reviewed")
    _refuse_personal_data(path, records)
    return records, blank


def _refuse_personal_data(path: Path, records: list[ReviewRecord]) -> None:
    """Free-text answers go into the suite: the privacy gate's scanner must find nothing
    (a reviewer signing a comment with a phone number or an e-mail address)."""
    from ..privacy.gate import default_scanner

    scanner = default_scanner()
    for record in records:
        for name in ("suggested_fix", "comment"):
            text = getattr(record, name)
            if text and (found := scanner.high_confidence(scanner.scan(text))):
                raise ConfigError(
                    f"{path}: item {record.item_id}: {name}: holds personal data "
                    f"({found[0].entity}); remove it from the sheet and import it again")


def import_reviews(suite: Suite, path: Path, reviewer: str,
                   today: date | None = None) -> tuple[Path, int, int]:
    """Record a filled sheet's verdicts in ``reviews/<reviewer>-<date>.jsonl``; the file,
    the verdicts recorded and the blank rows. A second sheet of the same reviewer on the
    same day is merged into that file (a later verdict on the same item replaces the
    earlier one)."""
    records, blank = read_verdicts(suite, path, reviewer, today)
    target = suite.path / REVIEWS / f"{reviewer}-{records[0].date.isoformat()}.jsonl"
    merged: dict[tuple[str, str], ReviewRecord] = {}
    if target.is_file():
        for record in _read_review_file(target):
            merged[(record.task, record.item_id)] = record
    for record in records:
        merged[(record.task, record.item_id)] = record
    write_jsonl(target, (r.model_dump(mode="json") for r in merged.values()))
    return target, len(records), blank


# --------------------------------------------------------------------------- status


def _read_review_file(path: Path) -> list[ReviewRecord]:
    records = []
    for number, line in enumerate(read_text(path, "review file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(ReviewRecord.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "line"
            raise ConfigError(f"{path}:{number}: {field}: {first['msg']}; the review files "
                              "are written by `suites review import`, do not edit them") from None
    return records


def recorded_reviews(suite: Suite) -> list[ReviewRecord]:
    """Every verdict recorded in the suite's ``reviews/`` folder."""
    folder = suite.path / REVIEWS
    if not folder.is_dir():
        return []
    return [r for path in sorted(folder.glob("*.jsonl")) for r in _read_review_file(path)]


def cohen_kappa(pairs: Sequence[tuple[str, str]],
                labels: tuple[str, ...] = VERDICTS) -> float | None:
    """Cohen's kappa of two raters' answers on the same items; None when undefined (fewer
    than two items, or both raters gave one and the same answer throughout)."""
    if len(pairs) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    first, second = zip(*pairs, strict=True)
    if len(set(first) | set(second)) < 2:
        return None  # chance agreement is 1: kappa is 0/0
    return float(cohen_kappa_score(list(first), list(second), labels=list(labels)))


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def variety_review(variety: str, records: list[ReviewRecord], stale: int) -> VarietyReview:
    """Shares and agreement of the current verdicts on one variety's items.

    A reviewer's latest verdict on an item counts. Agreement is Cohen's kappa over every
    pair of reviewers on the items both judged, pooled (each pair of verdicts once)."""
    latest: dict[tuple[str, str, str], ReviewRecord] = {}
    for record in sorted(records, key=lambda r: r.date):
        latest[(record.reviewer, record.task, record.item_id)] = record
    current = list(latest.values())
    reviewers = sorted({r.reviewer for r in current})
    by_item: dict[tuple[str, str], dict[str, ReviewRecord]] = defaultdict(dict)
    for record in current:
        by_item[(record.task, record.item_id)][record.reviewer] = record
    pairs = [(judged[a].verdict, judged[b].verdict) for judged in by_item.values()
             for a, b in combinations(sorted(judged), 2)]
    label_pairs = [(judged[a].label_correct, judged[b].label_correct)
                   for judged in by_item.values() for a, b in combinations(sorted(judged), 2)]
    label_kappa = cohen_kappa(label_pairs, YES_NO)
    counts = Counter(r.verdict for r in current)
    total = len(current)
    kappa = cohen_kappa(pairs)
    agreement = _pct(sum(a == b for a, b in pairs), len(pairs))
    double = sum(len(v) >= 2 for v in by_item.values())
    result: VarietyReview = {
        "variety": variety, "reviewers": len(reviewers), "items": len(by_item),
        "verdicts": total, "natural": _pct(counts["natural"], total),
        "stilted": _pct(counts["stilted"], total),
        "wrong_variety": _pct(counts["wrong_variety"], total),
        "label_correct": _pct(sum(r.label_correct == "yes" for r in current), total),
        "kappa": None if kappa is None else round(kappa, 2),
        "label_kappa": None if label_kappa is None else round(label_kappa, 2),
        "agreement": agreement,
        "double_reviewed": double, "stale": stale, "status": ""}
    result["status"] = status_text(result)
    return result


def status_text(review: VarietyReview) -> str:
    """The card's words for one variety, e.g. "reviewed by 2 native reviewers, 48 items,
    92% natural, 96% labels correct, kappa 0.71 on 20 items"."""
    stale = (f" ({review['stale']} earlier review verdicts on items changed since are not "
             "counted)"
             if review["stale"] else "")
    if not review["verdicts"]:
        return f"native review pending{stale}"
    who = "1 native reviewer" if review["reviewers"] == 1 else (
        f"{review['reviewers']} native reviewers")
    if review["double_reviewed"] == 0:
        kappa = "no item reviewed twice, no agreement figure"
    elif review["kappa"] is None:
        kappa = (f"agreement {review['agreement']:g}% on {review['double_reviewed']} items "
                 "(kappa undefined)")
    else:
        kappa = f"kappa {review['kappa']:.2f} on {review['double_reviewed']} items"
    return (f"reviewed by {who}, {review['items']} items, {review['natural']:g}% natural, "
            f"{review['stilted']:g}% stilted, {review['wrong_variety']:g}% wrong variety, "
            f"{review['label_correct']:g}% labels correct, {kappa}{stale}")


def review_status(suite: Suite) -> ReviewStatus:
    """Per variety of the suite, what its recorded reviews say (pending when none)."""
    current_sha = {(task.name, item["id"]): item_sha256(item)
                   for task in suite.tasks.values() for item in task.all_items()}
    current: dict[str, list[ReviewRecord]] = defaultdict(list)
    stale: Counter[str] = Counter()
    for record in recorded_reviews(suite):
        if current_sha.get((record.task, record.item_id)) == record.item_sha256:
            current[record.variety].append(record)
        else:
            stale[record.variety] += 1
    per = {code: variety_review(code, current.get(code, []), stale[code])
           for code in suite_varieties(suite)}
    reviewed = [code for code, r in per.items() if r["verdicts"]]
    if not reviewed:
        summary = "native review pending for every variety"
    else:
        pending = [code for code in per if code not in reviewed]
        # one clause (no '; '): the card keeps clauses without "review" and replaces this
        summary = (f"native review recorded for {len(reviewed)} of {len(per)} varieties "
                   f"({', '.join(reviewed)})"
                   + (f" and pending for the others ({', '.join(pending)})" if pending else ""))
    return {"suite": suite.ident, "varieties": per, "summary": summary}


# --------------------------------------------------------------------------- the card


def status_markdown(status: ReviewStatus) -> str:
    """The table a card carries between its review markers."""
    lines = ["Generated by `moroccan-eval suites review status --update-card` from the "
             "verdicts in `reviews/`; do not edit by hand.", "",
             "| variety | reviewers | items | natural | stilted | wrong variety | "
             "labels correct | kappa (items) | label kappa | stale |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:g}%"

    for code, r in status["varieties"].items():
        kappa = ("–" if not r["double_reviewed"] else
                 f"{'undefined' if r['kappa'] is None else format(r['kappa'], '.2f')} "
                 f"({r['double_reviewed']})")
        lines.append(f"| {code} | {r['reviewers']} | {r['items']} | {pct(r['natural'])} | "
                     f"{pct(r['stilted'])} | {pct(r['wrong_variety'])} | "
                     f"{pct(r['label_correct'])} | {kappa} | "
                     f"{'–' if r['label_kappa'] is None else format(r['label_kappa'], '.2f')} | "
                     f"{r['stale']} |")
    return "\n".join(lines)


def _derived_status(old: str, summary: str) -> str:
    """The card's ``validation_status`` with its review clause derived: clauses (split on
    '; ') that speak of review are replaced by the summary, the others (how the data was
    made: "authored", "generated invoice values") are kept."""
    kept = [c for c in old.split("; ") if c.strip() and "review" not in c.lower()]
    return "; ".join([*kept, summary])


def _derived_variety(old: str, derived: str) -> str:
    """A variety's card text with its review part derived and its other notes kept:
    clauses (split on '; ') and parenthesised notes that do not speak of review stay
    ("native-speaker review pending (machine-transliterated from the IRCAM-Latin draft)"
    becomes "reviewed by ... (machine-transliterated from the IRCAM-Latin draft)")."""
    notes = [p for p in re.findall(r"\([^()]*\)", old) if "review" not in p.lower()]
    rest = re.sub(r"\s*\([^()]*\)", "", old)
    kept = [c.strip() for c in rest.split("; ") if c.strip() and "review" not in c.lower()]
    return " ".join(["; ".join([*kept, derived]), *notes])


_TOP_KEY = re.compile(r"^[^\s#-][^:]*:")


def _set_keys(front: str, values: dict[str, str | dict[str, str]]) -> str:
    """Front matter with top-level ``values`` rewritten in place (other keys, their order
    and formatting untouched); a missing key is added after ``validation_status``."""
    lines = front.split("\n")
    for key, value in values.items():
        rendered = ([f"{key}: {json.dumps(value, ensure_ascii=False)}"] if isinstance(value, str)
                    else [f"{key}:"] + [f"  {k}: {json.dumps(v, ensure_ascii=False)}"
                                        for k, v in value.items()])
        if isinstance(value, dict) and not value:
            rendered = [f"{key}: {{}}"]
        start = next((i for i, line in enumerate(lines) if line.startswith(f"{key}:")), None)
        if start is None:
            anchor = next((i for i, line in enumerate(lines)
                           if line.startswith("validation_status:")), len(lines) - 1)
            start = end = _block_end(lines, anchor)
        else:
            end = _block_end(lines, start)
        lines[start:end] = rendered
    return "\n".join(lines)


def _block_end(lines: list[str], start: int) -> int:
    """The index after the top-level key starting at ``start`` and its continuation lines."""
    end = start + 1
    while end < len(lines) and not _TOP_KEY.match(lines[end]):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # keep blank lines before the next key where they were
    return end


def update_card_review(suite: Suite, status: ReviewStatus | None = None) -> Path:
    """Write the derived status into the card: ``validation_status`` and
    ``validation_by_variety`` in its front matter (what runs record, and the report and
    the leaderboard show), and the table between its review markers (added at the end of
    the card when it has none). Nothing is written if the result would not be a valid
    card."""
    status = status or review_status(suite)
    path = suite.path / "CARD.md"
    text = read_text(path, "suite card")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        raise ConfigError(f"{path}: the card has no YAML front matter between '---' lines")
    front = _set_keys(match.group(1), {
        "validation_status": _derived_status(suite.card.validation_status, status["summary"]),
        "validation_by_variety": {
            code: _derived_variety(suite.card.validation_by_variety.get(code, ""), r["status"])
            for code, r in status["varieties"].items()},
    })
    try:
        CardSpec.model_validate(parse_yaml(front, f"{path} (front matter)"))
    except ValidationError as exc:  # pragma: no cover - the values above are plain strings
        raise ConfigError(f"{path}: the derived status does not make a valid card: {exc}") \
            from None
    body = text[match.end():]
    if REVIEW_BEGIN not in body or REVIEW_END not in body:
        body = (body.rstrip("\n") + "\n\n## Native review\n" + REVIEW_BEGIN + "\n"
                + REVIEW_END + "\n")
    write_atomic(path, f"---\n{front}\n---\n{body}")
    replace_card_section(path, REVIEW_BEGIN, REVIEW_END, status_markdown(status))
    return path
