"""Turning a user's own data into a suite: ``moroccan-eval suites import``.

Reads a local CSV, JSONL or Parquet file, or a Hugging Face dataset saved with
``save_to_disk`` (no hub access), maps its columns to items, checks everything at once,
and writes a sealed suite folder. The card and consent register are skeletons whose fields
start with ``TODO``: the loader refuses the suite until a person fills them in.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import yaml

from .. import tasks, varieties
from ..errors import ConfigError, did_you_mean
from ..io import JSONObject, csv_delimiter, iter_jsonl, write_jsonl
from ..tasks.base import ImportRequest
from .schema import TODO_MARKER, Item, check_suite_name
from .seal import write_checksums

FORMATS = ("csv", "jsonl", "parquet", "hf")
MAPPABLE = ("text", "audio", "label", "reference", "variety", "split", "group", "id")


def importable_types() -> list[str]:
    """Registered task types that ``suites import`` can build from a table."""
    return [name for name in tasks.names() if tasks.get(name).importable]


@dataclass
class ImportSpec:
    """What ``suites import`` was asked to do."""

    source: Path
    fmt: str
    name: str
    mapping: dict[str, str]
    task_type: str = "classification"
    variety: str | None = None
    split_ratio: float = 0.3
    consent_id: str = "imported"
    seed: int = 0
    target_variety: str | None = None  # translation: the language of the reference column


def parse_mapping(text: str) -> dict[str, str]:
    """``text=col,label=col`` → ``{"text": "col", "label": "col"}``."""
    mapping: dict[str, str] = {}
    problems = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, column = part.partition("=")
        key = key.strip()
        if not sep or not column.strip():
            problems.append(f"'{part}': write FIELD=COLUMN")
        elif key not in MAPPABLE:
            problems.append(f"'{key}': not a mappable field (use {', '.join(MAPPABLE)})"
                            + did_you_mean(key, MAPPABLE))
        else:
            mapping[key] = column.strip()
    if "text" not in mapping and "audio" not in mapping and not problems:
        problems.append("map text=COLUMN (or audio=COLUMN for speech) is required")
    if "label" not in mapping and "reference" not in mapping and not problems:
        problems.append("map label=COLUMN (classification) or reference=COLUMN (translation) "
                        "is required")
    if problems:
        raise ConfigError("--map", problems)
    return mapping


def _read(source: Path, fmt: str) -> Any:
    """The source as a pandas DataFrame of strings."""
    import pandas as pd

    if fmt not in FORMATS:
        raise ConfigError(f"--format: '{fmt}' is not one of {', '.join(FORMATS)}")
    if not source.exists():
        raise ConfigError(f"{source}: no such file or folder")
    try:
        if fmt == "csv":
            with source.open(encoding="utf-8-sig") as fh:
                delimiter = csv_delimiter(fh.readline())
            return pd.read_csv(source, dtype=str, keep_default_na=False, encoding="utf-8",
                               sep=delimiter)
        if fmt == "jsonl":
            # our reader: a bad line is named with its number, whatever it holds
            return pd.DataFrame([row for _, row in iter_jsonl(source)])
        if fmt == "parquet":
            return pd.read_parquet(source)
        return _read_saved_dataset(source)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start}); convert it, e.g. "
                          "iconv -f WINDOWS-1256 -t UTF-8") from None
    except (ValueError, TypeError) as exc:  # pandas and pyarrow raise either on bad input
        raise ConfigError(f"{source}: cannot be read as {fmt}: {exc}") from None
    except (OSError, ImportError) as exc:
        raise ConfigError(f"{source}: cannot be read as {fmt}: {exc}") from None


def _read_saved_dataset(source: Path) -> Any:
    import datasets
    import pandas as pd

    try:
        loaded = datasets.load_from_disk(str(source))
    except FileNotFoundError:
        raise ConfigError(f"{source}: not a dataset saved with save_to_disk (no "
                          "dataset_info.json / dataset_dict.json)") from None
    if isinstance(loaded, datasets.DatasetDict):
        frames = []
        for split, part in loaded.items():
            frame = part.to_pandas()
            if "__split__" not in frame.columns:  # a DataFrame has no setdefault
                frame["__split__"] = split
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)
    return loaded.to_pandas()


class _Row(TypedDict):
    group: str
    split: str | None
    variety: str
    text: str
    label: str
    id: str | None


def _rows(spec: ImportSpec, frame: Any) -> list[_Row]:
    """Items from the frame, or every problem at once."""
    problems: list[str] = []
    if "split" not in spec.mapping and "__split__" in frame.columns:
        spec.mapping["split"] = "__split__"
    missing = [c for c in spec.mapping.values() if c not in frame.columns]
    if missing:
        shown = ", ".join(map(str, frame.columns)) or "none"
        raise ConfigError(f"{spec.source}: no column {', '.join(map(repr, missing))} "
                          f"(columns: {shown})")
    if "variety" not in spec.mapping and spec.variety is None:
        problems.append("say which variety the texts are in: --variety CODE or "
                        "--map variety=COLUMN")
    registry = varieties.registry()
    if spec.variety is not None and spec.variety not in registry:
        problems.append(f"--variety: unknown variety '{spec.variety}'"
                        + did_you_mean(spec.variety, registry))
    rows: list[_Row] = []
    for index, record in enumerate(frame.to_dict(orient="records")):
        line = index + 2 if spec.fmt == "csv" else index + 1
        where = f"{spec.source.name} row {line}"

        def get(key: str, record: dict[str, Any] = record) -> str:
            value = record.get(spec.mapping[key]) if key in spec.mapping else None
            if value is None or (isinstance(value, float) and value != value):
                return ""  # a missing cell (pandas fills it with NaN), not the text "nan"
            return str(value).strip()

        text, label = get("text") or get("audio"), get("label") or get("reference")
        variety = get("variety") or (spec.variety or "")
        if not text:
            problems.append(f"{where}: empty text")
        if not label:
            kind = "reference" if "reference" in spec.mapping else "label"
            problems.append(f"{where}: empty {kind}")
        if not variety and "variety" in spec.mapping and spec.variety is None:
            problems.append(f"{where}: empty variety (fill the column, or give --variety "
                            "for rows without one)")
        elif variety and variety not in registry and "variety" in spec.mapping:
            problems.append(f"{where}: unknown variety '{variety}'"
                            + did_you_mean(variety, registry))
        split = get("split") or None
        if split is not None and split not in ("test", "train", "dev"):
            problems.append(f"{where}: split '{split}' is not test, train or dev")
        group = get("group") or get("id") or f"row{line}"
        rows.append({"group": group, "split": split, "variety": variety, "text": text,
                     "label": label, "id": get("id") or None})
    if len(problems) > 20:
        problems = [*problems[:20], f"... and {len(problems) - 20} more"]
    if problems:
        raise ConfigError(f"{spec.source}: cannot be imported", problems)
    if not rows:
        raise ConfigError(f"{spec.source}: no rows to import")
    return rows


def _assign_splits(rows: list[_Row], ratio: float, seed: int) -> None:
    """Groups without a split go to ``train`` with probability ``ratio`` (seeded), whole
    groups at a time so parallel varieties never straddle splits."""
    groups = sorted({r["group"] for r in rows if r["split"] is None})
    chosen = set(random.Random(seed).sample(groups, round(len(groups) * ratio)))
    for row in rows:
        if row["split"] is None:
            row["split"] = "train" if row["group"] in chosen else "test"


def _items(rows: list[_Row], consent_id: str) -> list[Item]:
    seen: dict[tuple[str, str], int] = {}
    items: list[Item] = []
    problems = []
    for row in rows:
        key = (row["group"], row["variety"])
        if key in seen:
            problems.append(f"group '{row['group']}' has two {row['variety']} texts (rows "
                            f"{seen[key]} and {len(items)}); map group= to a column that is "
                            "unique per variety, or leave it out")
            continue
        seen[key] = len(items)
        items.append({
            "id": row["id"] or f"{row['group']}-{row['variety']}", "group": row["group"],
            "split": row["split"] or "test", "variety": row["variety"],
            "fields": {"text": row["text"]},
            "reference": row["label"], "consent_id": consent_id, "meta": {},
        })
    if problems:
        raise ConfigError("duplicate group and variety", problems[:20])
    return items


CARD_TEMPLATE = f"""---
sources: "{TODO_MARKER}: where these texts come from (who wrote or collected them, when, how)"
authors: "{TODO_MARKER}: who prepared this suite"
consent:
  basis: consent_register
  details: "{TODO_MARKER}: how the people behind the texts agreed to this use (see consent.yaml)"
anonymization: "{TODO_MARKER}: what personal data was removed, with which tool and policy \
version (e.g. moroccan-eval anonymize apply, policy 2026.11.1), by whom, when"
retention: "{TODO_MARKER}: how long the data is kept and when it is deleted"
validation_status: "{TODO_MARKER}: who checked the labels and texts, per variety"
---
# {{name}} — datasheet (incomplete)

Imported with `moroccan-eval suites import` from `{{source}}` on {{date}}. The loader refuses
this suite until every field above that starts with `{TODO_MARKER}` is filled in and
`consent.yaml` describes the consent behind `consent_id: {{consent_id}}`.

## Composition
See `moroccan-eval suites stats {{name}}`.
"""


def import_suite(spec: ImportSpec, out_dir: Path) -> Path:
    """Write a new suite folder ``out_dir/<name>``; nothing is written on error."""
    check_suite_name(spec.name)
    task_type = tasks.get(spec.task_type)
    if not task_type.importable:
        raise ConfigError(f"--task-type: '{spec.task_type}' cannot be imported yet; supported: "
                          + ", ".join(importable_types()))
    if problems := task_type.import_problems(spec.mapping, spec.target_variety):
        raise ConfigError("; ".join(problems))
    if spec.target_variety is not None and spec.target_variety not in varieties.registry():
        raise ConfigError(f"--target-variety: unknown variety '{spec.target_variety}'"
                          + did_you_mean(spec.target_variety, varieties.registry()))
    if not 0 <= spec.split_ratio < 1:
        raise ConfigError("--split-ratio: give the share of groups for train, 0 ≤ r < 1")
    target = out_dir / spec.name
    if target.exists():
        raise ConfigError(f"{target}: already exists; choose another --name or --out")
    rows = _rows(spec, _read(spec.source, spec.fmt))
    _assign_splits(rows, spec.split_ratio, spec.seed)
    items = _items(rows, spec.consent_id)
    present = [c for c in varieties.registry() if any(i["variety"] == c for i in items)]
    reference = "arb_Arab" if "arb_Arab" in present else present[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=out_dir))
    try:
        (staging / "tasks").mkdir()
        (staging / "data").mkdir()
        task = task_type.import_task(ImportRequest(
            source=spec.source, items=items, staging=staging, mapping=spec.mapping,
            target_variety=spec.target_variety))
        _write_suite(staging, spec, task, items, reference)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write_suite(staging: Path, spec: ImportSpec, task: JSONObject, items: list[Item],
                 reference: str) -> None:
    """The task file, data, card and consent skeletons, suite.yaml, and the seal."""
    task = {"name": "main", "version": "1", **task, "data": "data/main.jsonl"}
    (staging / "tasks" / "main.yaml").write_text(
        yaml.safe_dump(task, sort_keys=False, allow_unicode=True), encoding="utf-8")
    write_jsonl(staging / "data" / "main.jsonl", items)
    today = datetime.now(UTC).date().isoformat()
    (staging / "CARD.md").write_text(CARD_TEMPLATE.format(
        name=spec.name, source=spec.source.name, date=today, consent_id=spec.consent_id),
        encoding="utf-8")
    (staging / "consent.yaml").write_text(yaml.safe_dump({"consents": [{
        "id": spec.consent_id, "source": f"{TODO_MARKER}: origin of {spec.source.name}",
        "scope": "evaluation", "given": today, "expires": None, "withdrawn": None,
    }], "tombstones": []}, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (staging / "suite.yaml").write_text(yaml.safe_dump({
        "name": spec.name, "version": "0.1.0",
        "description": f"Imported from {spec.source.name}",
        "license": f"{TODO_MARKER}: the licence of the data (e.g. CC-BY-4.0)",
        "reference_variety": reference, "tasks": ["main"], "checksums": {},
    }, sort_keys=False, allow_unicode=True), encoding="utf-8")
    write_checksums(staging)


def import_summary(target: Path) -> dict[str, int]:
    """Counts per split and variety of a freshly imported suite."""
    counts: dict[str, int] = {}
    for line in (target / "data" / "main.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        key = f"{item['split']}/{item['variety']}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))

