"""What the ``anonymize`` commands do: scan files, apply an operator with an audit record,
and measure the scanner on the labelled evaluation set."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from .. import varieties
from ..errors import ConfigError, did_you_mean
from ..io import format_validation_errors, iter_jsonl, sha256_file, utc_now
from ..resources import shipped
from ..version import __version__
from .anonymizer import Anonymizer, Operator
from .files import RecordWriter, csv_layout, file_format, read_records
from .policy import Policy
from .scanner import Finding, Scanner


@dataclass(frozen=True)
class Located:
    """A finding with where it is: file, line, field."""

    path: Path
    line: int
    field: str
    finding: Finding

    def to_dict(self) -> dict[str, Any]:
        f = self.finding
        return {"file": str(self.path), "line": self.line, "field": self.field,
                "entity": f.entity, "start": f.start, "end": f.end, "score": f.score,
                "value": f.masked()}


def scan_paths(scanner: Scanner, paths: Sequence[Path],
               fields: Sequence[str] = ()) -> Iterator[Located]:
    """Every finding in the files, streamed."""
    for path in paths:
        file_format(path)  # refuse an unsupported file before reading anything
        for record in read_records(path, fields):
            for field, text in record.texts.items():
                for finding in scanner.scan(text):
                    yield Located(path, record.line, field, finding)


def apply_file(
    scanner: Scanner, source: Path, target: Path, *, operator: Operator = "placeholder",
    fields: Sequence[str] = (), audit: Path | None = None,
) -> dict[str, Any]:
    """Write an anonymized copy of ``source`` to ``target`` (same format) and append an
    audit record (no raw values). On any error nothing is written."""
    fmt = file_format(source)
    if file_format(target) != fmt:
        raise ConfigError(f"{target}: the output must have the input's type ({source.suffix})")
    if source.resolve() == target.resolve():
        raise ConfigError(f"{target}: write the anonymized copy to another file; the input "
                          "is kept for the audit's checksum")
    anonymizer = Anonymizer(scanner, operator)
    counts: Counter[str] = Counter()
    records = 0
    header, delimiter = csv_layout(source) if fmt == "csv" else (None, ",")
    writer = RecordWriter(target, fmt, header, delimiter)
    try:
        for record in read_records(source, fields):
            texts, found = anonymizer.record(record.texts)
            counts.update(found)
            writer.write(record, texts)
            records += 1
    except BaseException:
        writer.discard()
        raise
    writer.commit()
    entry = {
        "time": utc_now(), "tool": f"moroccan-eval {__version__}",
        "policy_version": scanner.policy.version, "policy_fingerprint": scanner.policy.fingerprint,
        "operator": operator, "fields": list(fields) or "all",
        "input": source.name, "input_sha256": sha256_file(source),
        "output": target.name, "output_sha256": sha256_file(target),
        "records": records, "entities": dict(sorted(counts.items())),
    }
    audit = audit or target.with_name("anonymization-audit.jsonl")
    with audit.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return {**entry, "audit": str(audit)}


# --------------------------------------------------------------------------- evaluation


def default_eval_set() -> Path:
    return shipped("anonymize", "eval", "pii-eval.jsonl")


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def scores(self) -> dict[str, float | int | None]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else None
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else None
        f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r else None
        return {"precision": p, "recall": r, "f1": f1, "tp": self.tp, "fp": self.fp,
                "fn": self.fn}


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """A prediction counts for a gold span when it covers at least half of it."""
    shared = min(a[1], b[1]) - max(a[0], b[0])
    return shared > 0 and shared >= (b[1] - b[0]) / 2


class Span(BaseModel):
    start: int
    end: int
    entity: str


class LabelledSentence(BaseModel):
    """A line of the scanner's evaluation set: a sentence and its personal-data spans."""

    text: str
    variety: str
    spans: list[Span] = Field(default_factory=list)
    hard_negative: bool = False


def _labelled_sentences(path: Path, policy: Policy) -> list[LabelledSentence]:
    """The evaluation set, checked whole first: a span outside its text, or an entity or
    variety the scanner does not know, would be scored silently wrong."""
    entities = {*policy.placeholder_types, *policy.entities}
    known_varieties = varieties.registry()
    items, problems = [], []
    for number, line in iter_jsonl(path):
        try:
            item = LabelledSentence.model_validate(line)
        except ValidationError as exc:
            problems += [f"line {number}: {problem}" for problem in format_validation_errors(exc)]
            continue
        if item.variety not in known_varieties:
            problems.append(f"line {number}: unknown variety '{item.variety}'"
                            + did_you_mean(item.variety, known_varieties))
        for k, span in enumerate(item.spans):
            if not 0 <= span.start < span.end <= len(item.text):
                problems.append(f"line {number}: spans[{k}]: {span.start}..{span.end} is not "
                                f"within the text ({len(item.text)} characters)")
            if span.entity not in entities:
                problems.append(f"line {number}: spans[{k}]: unknown entity '{span.entity}'"
                                + did_you_mean(span.entity, entities))
        items.append(item)
    if problems:
        raise ConfigError(f"{path}: not a labelled evaluation set (text, variety and spans "
                          "[{start, end, entity}] per line)", problems)
    return items


def evaluate(scanner: Scanner, path: Path | None = None) -> dict[str, Any]:
    """Precision, recall and F1 per entity type, per variety and overall; and how many
    hard negatives (prices, order numbers, event dates, place names) were left alone."""
    path = path or default_eval_set()
    by_entity: dict[str, Tally] = defaultdict(Tally)
    by_variety: dict[str, Tally] = defaultdict(Tally)
    names_by_script: dict[str, Tally] = defaultdict(Tally)
    overall = Tally()

    def _tallies(entity: str, variety: str, span: str) -> list[Tally]:
        found = [by_entity[entity], by_variety[variety], overall]
        if entity == "PERSON":
            found.append(names_by_script[varieties.detect_script(span)])
        return found
    negatives = clean_negatives = sentences = 0
    for item in _labelled_sentences(path, scanner.policy):
        text, variety = item.text, item.variety
        gold = [(span.start, span.end, span.entity) for span in item.spans]
        sentences += 1
        predicted = [(f.start, f.end, f.entity) for f in scanner.scan(text)]
        matched_gold: set[int] = set()
        matched_pred: set[int] = set()
        for i, (gs, ge, gent) in enumerate(gold):
            for j, (ps, pe, pent) in enumerate(predicted):
                if j not in matched_pred and pent == gent and _overlaps((ps, pe), (gs, ge)):
                    matched_gold.add(i)
                    matched_pred.add(j)
                    break
        for i, (start, end, entity) in enumerate(gold):
            hit = i in matched_gold
            for tally in _tallies(entity, variety, text[start:end]):
                if hit:
                    tally.tp += 1
                else:
                    tally.fn += 1
        for j, (start, end, entity) in enumerate(predicted):
            if j not in matched_pred:
                for tally in _tallies(entity, variety, text[start:end]):
                    tally.fp += 1
        if item.hard_negative:
            negatives += 1
            clean_negatives += not predicted
    structured = Tally()
    for entity in scanner.policy.structured:
        tally = by_entity.get(entity, Tally())
        structured.tp += tally.tp
        structured.fn += tally.fn
        structured.fp += tally.fp
    return {
        "eval_set": str(path), "sentences": sentences,
        "policy_version": scanner.policy.version,
        "overall": overall.scores(),
        "structured": structured.scores(),
        "entities": {k: v.scores() for k, v in sorted(by_entity.items())},
        "varieties": {k: v.scores() for k, v in sorted(by_variety.items())},
        "person_by_script": {k: v.scores() for k, v in sorted(names_by_script.items())},
        "hard_negatives": {"sentences": negatives, "left_alone": clean_negatives},
    }
