"""A task's data file, streamed: items are parsed line by line on every pass, so a suite of
a million items costs no more memory than one of a hundred.

The loader checks the file once (:func:`~moroccan_eval.suites.checks.check_item_lines`);
later passes read it again. A file changed on disk after it was checked and sealed is
refused, never read: a run must score the items the suite's checksum stands for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SuiteError
from ..io import JSONObject, JSONValue, iter_jsonl
from .schema import Item


@dataclass
class ItemTable:
    """The items of one JSON-lines data file, read on demand (no copy held in memory)."""

    path: Path
    _stamp: tuple[int, int] = field(init=False, repr=False)
    _rows: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> tuple[int, int]:
        stat = os.stat(self.path)
        return stat.st_size, stat.st_mtime_ns

    def rows(self, split: str | None = None,
             groups: Collection[str] | None = None) -> Iterator[JSONObject]:
        """Every parsed line, in file order. With ``split``, lines that cannot be items of
        that split are left out unparsed (a run reads its few train items without parsing
        the test items), and with ``groups`` too, lines that cannot be items of one of these
        groups (a ``--limit`` run reads the groups it drew); others may remain: the caller
        still filters on ``split`` and group."""
        if self._current_stamp() != self._stamp:
            raise SuiteError(f"{self.path}: changed on disk since the suite was loaded; "
                             "load the suite again (its checksums are checked on load)")
        if split is not None:
            skip = _not_of_split(split)
            if groups is not None and len(groups) <= _MAX_GROUP_NEEDLES:
                skip = _not_of_groups(skip, groups)
            yield from (obj for _, obj in iter_jsonl(self.path, skip=skip))
            return
        count = 0
        for _, obj in iter_jsonl(self.path):
            count += 1
            yield obj
        self._rows = count

    def __iter__(self) -> Iterator[Item]:
        return (as_item(row) for row in self.rows())

    def items(self, split: str | None = None,
              groups: Collection[str] | None = None) -> Iterator[Item]:
        """The items, or with ``split`` (and ``groups``) at least those of that split (and
        of one of these groups; see :meth:`rows`)."""
        return (as_item(row) for row in self.rows(split, groups))

    def column(self, name: str) -> list[JSONValue]:
        """One key of every item (``None`` where an item lacks it)."""
        return [row.get(name) for row in self.rows()]

    @property
    def num_rows(self) -> int:
        if self._rows is None:
            self._rows = sum(1 for _ in self.rows())
        return self._rows


def _not_of_split(split: str) -> Callable[[bytes], bool]:
    """Whether a line surely is not an item of ``split``: its JSON text holds the split
    name as the JSON string ``"<split>"`` nowhere, and no ``\\u`` escape (the one way a
    JSON string can spell a letter otherwise)."""
    needle = json.dumps(split).encode("utf-8")

    def skip(raw: bytes) -> bool:
        return needle not in raw and b"\\u" not in raw

    return skip


#: Above this many groups, looking for each in a line costs more than parsing it.
_MAX_GROUP_NEEDLES = 64


def _not_of_groups(not_of_split: Callable[[bytes], bool],
                   groups: Collection[str]) -> Callable[[bytes], bool]:
    """Whether a line surely is not an item of the split or of one of ``groups``: it has
    no backslash (so every JSON string in it is spelled as it reads) and none of the
    groups' names as a JSON string (a name JSON must escape never is, in such a line)."""
    needles = [json.dumps(group, ensure_ascii=False).encode("utf-8") for group in groups]

    def skip(raw: bytes) -> bool:
        return not_of_split(raw) or (b"\\" not in raw
                                     and not any(needle in raw for needle in needles))

    return skip


def as_item(row: JSONObject) -> Item:
    """A parsed line as an item, with ``meta`` always set."""
    fields, meta = row.get("fields"), row.get("meta")
    # check_item_lines has made sure the keys are strings and fields and meta objects
    return {"id": str(row["id"]), "group": str(row["group"]), "split": str(row["split"]),
            "variety": str(row["variety"]), "fields": fields if isinstance(fields, dict) else {},
            "reference": row.get("reference"), "consent_id": str(row["consent_id"]),
            "meta": meta if isinstance(meta, dict) else {}}
