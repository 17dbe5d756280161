"""Checks the loader applies to task files and items: first what holds for every task
type, then what the task's own type checks (:meth:`TaskType.check_spec`,
:meth:`TaskType.check_item`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import varieties
from ..errors import did_you_mean
from ..tasks.base import TaskType
from .schema import ITEM_KEYS, REQUIRED_ITEM_KEYS, SPLITS, Item, TaskSpec

#: Item problems listed per data file before the rest are summarised.
MAX_ITEM_PROBLEMS = 20


def check_task(spec: TaskSpec, task_type: TaskType) -> list[str]:
    """A task file's metrics, varieties and tools, then its type's own checks."""
    problems: list[str] = []
    known = task_type.metric_table
    if bad := [m for m in spec.metrics if m not in known]:
        problems.append(f"metrics: {', '.join(bad)} do not apply to {spec.type} "
                        f"(use {', '.join(known)})")
    registry = varieties.registry()
    for code in spec.prompt.by_variety:
        if code not in registry:
            problems.append(f"prompt.by_variety: unknown variety '{code}'")
    if spec.reference_variety and spec.reference_variety not in registry:
        problems.append(f"reference_variety: unknown variety '{spec.reference_variety}'")
    if spec.tools and not task_type.takes_tools:
        problems.append(f"tools: {spec.type} tasks take no tools")
    return problems + task_type.check_spec()


def check_items(path: Path, columns: set[str], items: Iterable[Item], task_type: TaskType,
                suite_root: Path) -> list[str]:
    """Every item of a data file (its ``columns`` are the keys items have): the ids,
    groups, splits, varieties and input fields, then the task type's checks of its
    reference and files."""
    if missing := REQUIRED_ITEM_KEYS - columns:
        return [f"{path}: every item needs the field(s) {', '.join(sorted(missing))}"]
    problems = [f"{path}: unknown item field '{c}'" for c in sorted(columns - ITEM_KEYS)]
    seen = _Seen()
    for line, item in enumerate(items, 1):
        where = f"{path}: item {line} (id {item['id']!r})"
        problems += [f"{where}: {p}" for p in _item_problems(item, task_type, seen, suite_root)]
        if len(problems) > MAX_ITEM_PROBLEMS:
            problems.append("... (further item problems not shown)")
            break
    return problems


@dataclass
class _Seen:
    """Ids and (group, variety) pairs met so far in a data file."""

    ids: set[str] = field(default_factory=set)
    pairs: set[tuple[str, str]] = field(default_factory=set)


def _item_problems(item: Item, task_type: TaskType, seen: _Seen,
                   suite_root: Path) -> Iterator[str]:
    if not item["id"] or not item["group"] or not item["consent_id"]:
        yield "id, group and consent_id must be non-empty"
    if item["id"] in seen.ids:
        yield "duplicate id"
    seen.ids.add(item["id"])
    if item["split"] not in SPLITS:
        yield f"split must be test, train or dev, not {item['split']!r}"
    known = varieties.registry()
    if item["variety"] not in known:
        yield f"unknown variety {item['variety']!r}{did_you_mean(str(item['variety']), known)}"
    if (item["group"], item["variety"]) in seen.pairs:
        yield f"group {item['group']!r} already has a {item['variety']} item"
    seen.pairs.add((item["group"], item["variety"]))
    missing = [f for f in task_type.spec.input_fields if not item["fields"].get(f)]
    if missing:
        yield f"fields.{missing[0]} is missing or empty"
    yield from task_type.check_item(item, suite_root)
