"""Checks the loader applies to task files and items: first what holds for every task
type, then what the task's own type checks (:meth:`TaskType.check_spec`,
:meth:`TaskType.check_item`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import varieties
from ..errors import did_you_mean
from ..io import JSONObject, iter_jsonl
from ..tasks.base import TaskType
from .schema import ITEM_KEYS, REQUIRED_ITEM_KEYS, SHADOW_SPLITS, SPLITS, Item, TaskSpec
from .seal import escape_problem

#: Item problems listed per data file before the rest are summarised.
MAX_ITEM_PROBLEMS = 20

#: Characters of text one item may hold, all its strings together (fields, reference,
#: meta). Real items are a few hundred characters; the cap keeps a hostile 50 MB item from
#: reaching the privacy gate (spaCy refuses texts over 1,000,000 characters) or prompts.
MAX_ITEM_CHARS = 100_000

#: Bytes of one line of a data file, checked before the line is parsed so that a file of
#: one endless line is never read whole into memory. Far above :data:`MAX_ITEM_CHARS`, so
#: that a long item is usually refused with its id.
MAX_LINE_BYTES = 64 * 1024 * 1024

#: Characters of a task's ``context_file`` (its sources, put into every prompt; shipped
#: ones are a few thousand). The privacy gate's spaCy refuses texts over 1,000,000.
MAX_CONTEXT_CHARS = 500_000

#: How deep JSON values of an item may nest (a conversation history is 3 levels deep).
MAX_ITEM_DEPTH = 32

#: Item keys whose value is one string.
STRING_ITEM_KEYS = ("id", "group", "split", "variety", "consent_id")

#: Template variables the prompt renderer sets itself (see :mod:`moroccan_eval.prompts`):
#: an item field of the same name would silently replace them (e.g. the label list).
RESERVED_FIELDS = frozenset({"labels", "label_descriptions", "variety", "examples", "context",
                             "canary", "literals"})

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_item_lines(path: Path, input_fields: Iterable[str] = ()) -> list[str]:
    """A fast pre-pass over a data file before ``datasets``/Arrow reads it: every line is
    UTF-8 JSON of an item's shape (string ids, object ``fields`` ...), within
    :data:`MAX_ITEM_CHARS` and :data:`MAX_ITEM_DEPTH`. Every problem is listed with its
    ``file:line``, up to :data:`MAX_ITEM_PROBLEMS`.

    Arrow would otherwise raise a decoding traceback, coerce types silently (an integer id
    becomes a string, 2**70 a float) or hand a 50 MB text on to the privacy gate. The
    task's ``input_fields``, when present, must be strings (the text a prompt shows).
    """
    inputs = tuple(input_fields)
    problems: list[str] = []
    for lineno, obj in iter_jsonl(path, errors=problems, max_line_bytes=MAX_LINE_BYTES,
                                  strict=True):
        ident = obj.get("id")
        where = f"{path}:{lineno}" + (f" (id {ident[:80]!r})" if isinstance(ident, str) else "")
        problems += [f"{where}: {p}" for p in item_shape_problems(obj, inputs)]
        if len(problems) > MAX_ITEM_PROBLEMS:
            break
    if len(problems) > MAX_ITEM_PROBLEMS:
        problems = [*problems[:MAX_ITEM_PROBLEMS], "... (further item problems not shown)"]
    return problems


def item_shape_problems(obj: JSONObject, input_fields: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with the shape of one parsed line of a data file (not its meaning:
    that is :func:`check_items`' job once the file is loaded)."""
    problems = [f"missing item field '{k}'" for k in sorted(REQUIRED_ITEM_KEYS - obj.keys())]
    problems += [f"unknown item field {k[:80]!r} (allowed: {', '.join(sorted(ITEM_KEYS))})"
                 for k in sorted(obj.keys() - ITEM_KEYS)]
    for key in STRING_ITEM_KEYS:
        if key in obj and not isinstance(obj[key], str):
            problems.append(f"{key} must be a string, not {_json_type(obj[key])}")
    fields = obj.get("fields")
    if "fields" in obj and not isinstance(fields, dict):
        problems.append(f"fields must be a JSON object ({{\"text\": ...}}), not "
                        f"{_json_type(fields)}")
    if "meta" in obj and not isinstance(obj["meta"], dict):
        problems.append(f"meta must be a JSON object, not {_json_type(obj['meta'])}")
    if isinstance(fields, dict):
        problems += [f"fields.{name}: '{name}' is a template variable the toolkit sets; "
                     "rename the field" for name in sorted(RESERVED_FIELDS & fields.keys())]
        problems += [f"fields.{name} must be a string (an input of the task), not "
                     f"{_json_type(fields[name])}" for name in input_fields
                     if name in fields and not isinstance(fields[name], str)]
    chars, depth, surrogate, wide = _measure(obj)
    if chars > MAX_ITEM_CHARS:
        problems.append(f"holds {chars:,} characters of text, over the limit of "
                        f"{MAX_ITEM_CHARS:,} per item; shorten or split it")
    if depth > MAX_ITEM_DEPTH:
        problems.append(f"values nested deeper than {MAX_ITEM_DEPTH} levels")
    if wide:
        problems.append(f"a number beyond 64-bit integers ({wide}); write it as a "
                        "string, or it is read back as an approximate float")
    if surrogate:
        problems.append("a string holds a lone surrogate (\\ud800-\\udfff escape): not "
                        "text; fix the tool that wrote the file")
    return problems


def _measure(value: Any) -> tuple[int, int, bool, str]:
    """Characters of all strings (keys included), nesting depth, whether a string holds a
    lone surrogate, and an integer beyond 64 bits (``""`` if none); iterative, so no
    nesting depth can overflow the stack."""
    chars, deepest, surrogate, wide = 0, 0, False, ""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, int) and not isinstance(node, bool):
            if not -(2 ** 63) <= node < 2 ** 63 and not wide:
                # str() refuses integers over 4,300 digits: name the big ones by size
                wide = (str(node)[:40] if node.bit_length() <= 128
                        else f"an integer of {node.bit_length():,} bits")
        elif isinstance(node, str):
            chars += len(node)
            surrogate = surrogate or _SURROGATE.search(node) is not None
        elif isinstance(node, dict):
            stack += [(k, depth) for k in node]
            stack += [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node]
    return chars, deepest, surrogate, wide


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


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


def check_items(path: Path, items: Iterable[Item], task_type: TaskType,
                suite_root: Path) -> list[str]:
    """Every item of a data file that passed :func:`check_item_lines` (so every item has
    the required keys and no other): the ids, groups, splits, varieties and input fields,
    then the task type's checks of its reference and files."""
    problems: list[str] = []
    seen = _Seen()
    for line, item in enumerate(items, 1):
        where = f"{path}: item {line} (id {item['id']!r})"
        problems += [f"{where}: {p}" for p in _item_problems(item, task_type, seen, suite_root)]
        if len(problems) > MAX_ITEM_PROBLEMS:
            problems.append("... (further item problems not shown)")
            break
    else:
        problems += [f"{path}: {p}" for p in seen.orphan_problems()]
    return problems


@dataclass
class _Seen:
    """Ids and (group, variety) pairs met so far in a data file: ``pairs`` for the
    ordinary splits (a group holds one item per variety across them), ``shadows`` for the
    items of a shadow split (``test_noisy``), each keyed with its split."""

    ids: set[str] = field(default_factory=set)
    pairs: dict[tuple[str, str], str] = field(default_factory=dict)  # -> its split
    shadows: dict[tuple[str, str, str], str] = field(default_factory=dict)  # -> item id

    def orphan_problems(self) -> list[str]:
        """Shadow items whose clean item (same group and variety, in the split they
        shadow) is missing: they could not be paired with it."""
        return [f"item {item_id!r} (split {split}): no {SHADOW_SPLITS[split]} item of group "
                f"{group!r} in {variety} to re-type; a {split} item keeps the group and "
                f"variety of the clean item it pairs with"
                for (group, variety, split), item_id in self.shadows.items()
                if self.pairs.get((group, variety)) != SHADOW_SPLITS[split]][:MAX_ITEM_PROBLEMS]


def _item_problems(item: Item, task_type: TaskType, seen: _Seen,
                   suite_root: Path) -> Iterator[str]:
    if not item["id"] or not item["group"] or not item["consent_id"]:
        yield "id, group and consent_id must be non-empty"
    if item["id"] in seen.ids:
        yield "duplicate id"
    seen.ids.add(item["id"])
    if item["split"] not in SPLITS:
        yield f"split must be {', '.join(SPLITS)}, not {item['split']!r}"
    known = varieties.registry()
    if item["variety"] not in known:
        yield f"unknown variety {item['variety']!r}{did_you_mean(str(item['variety']), known)}"
    if item["split"] in SHADOW_SPLITS:
        key = (item["group"], item["variety"], item["split"])
        if key in seen.shadows:
            yield f"group {item['group']!r} already has a {item['variety']} {item['split']} item"
        seen.shadows.setdefault(key, item["id"])
    else:
        if (item["group"], item["variety"]) in seen.pairs:
            yield f"group {item['group']!r} already has a {item['variety']} item"
        seen.pairs.setdefault((item["group"], item["variety"]), item["split"])
    missing = [f for f in task_type.spec.input_fields if not item["fields"].get(f)]
    if missing:
        yield f"fields.{missing[0]} is missing or empty"
    meta_key = task_type.spec.breakdown_key
    value = (item.get("meta") or {}).get(meta_key) if meta_key is not None else None
    if meta_key is not None and not (isinstance(value, str) and value):
        yield (f"meta.{meta_key} must be a non-empty string: the task's scores are broken down "
               f"by it (breakdown_by: {task_type.spec.breakdown_by})")
    # whatever the task type, an audio path is read by speech adapters: keep it inside
    audio = item["fields"].get("audio")
    if isinstance(audio, str) and audio and (problem := escape_problem(suite_root, audio)):
        yield f"fields.audio: {problem}"
        return
    yield from task_type.check_item(item, suite_root)
