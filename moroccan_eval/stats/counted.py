"""Grouping by counts, for task types whose every metric is resampled by cells (labels:
classification, QA): the bootstrap of such a metric reads only how many items of each
distinct row a variety holds (:func:`~moroccan_eval.stats.bootstrap._layout`), and its
paired delta how many items of each pair of rows two varieties of one group hold. So this
grouping keeps those counts, and nothing per record.

:class:`CountedBuilder` codes each record's rows as the number of a distinct row and keeps
a few numbers per record (a digest of its group, its labellings' codes, its failure, its
rows' numbers), in memory for the first :data:`SPILL_RECORDS` records and on disk past
that. :meth:`CountedBuilder.build` counts them a partition of the groups at a time (every
record of a group falls in the same partition, so replaced records and pairs are found
within one), into a :class:`Counted` the bootstrap scores exactly as it scores a
:class:`~moroccan_eval.stats.bootstrap.Grouped` of the same records: the same cells in the
same order, the same counts, so the same numbers.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..records import PredictionRecord
from .bootstrap import _DIGEST, MetricDef, PoolBy, Statistics
from .spill import SpillFile

if TYPE_CHECKING:
    import numpy as np

#: Records a builder keeps in memory before it writes them to disk.
SPILL_RECORDS = 1 << 13
#: Records counted at a time: the groups are split into partitions of about this many.
PARTITION_RECORDS = 1 << 13
#: At most this many partitions (files open at once while records are split into them).
_MAX_PARTITIONS = 256
#: The one NaN object rows hold, so that rows with NaN at the same places are one row.
_NAN = math.nan

#: Counts keyed by integers: the distinct keys (sorted) and how many of each.
_Counts = tuple["np.ndarray", "np.ndarray"]


class CountedBuilder:
    """Takes records one at a time, as :class:`~moroccan_eval.stats.bootstrap.GroupedBuilder`
    does, for statistics that are only read as cells; :meth:`build` makes the
    :class:`Counted` the bootstrap reads."""

    def __init__(self, statistics: Sequence[Statistics],
                 labels: Mapping[str, PoolBy] | None = None):
        self.statistics = list(dict.fromkeys(statistics))  # metrics may share one
        self.labels = dict(labels or {})
        self._codes: dict[str, dict[str, int]] = {name: {} for name in ("", *self.labels)}
        self._rows: list[dict[tuple[float, ...], int]] = [{} for _ in self.statistics]
        self._widths: list[int | None] = [None] * len(self.statistics)
        self._new_buffers()
        self._disk: SpillFile | None = None

    def _new_buffers(self) -> None:
        # array("i"), not numpy: a run imports numpy only once its first request is out
        self._pools = [array("i") for _ in self._codes]
        self._row_codes = [array("i") for _ in self.statistics]
        self._digests = bytearray()
        self._failures = bytearray()  # 1: error, 2: unparsed

    def add(self, record: PredictionRecord) -> None:
        """Take one record (a record a spend cap skipped is left out, as unscored)."""
        if record.get("skipped"):
            return
        pools = self._pools
        _code(self._codes[""], pools[0], record["variety"])
        for i, (name, label) in enumerate(self.labels.items(), start=1):
            _code(self._codes[name], pools[i], label(record))
        self._digests += hashlib.blake2b(record["group"].encode("utf-8"),
                                         digest_size=_DIGEST).digest()
        self._failures.append(1 if record.get("error") else
                              2 if record.get("parsed") is None else 0)
        for i, statistics in enumerate(self.statistics):
            row = tuple(statistics(record))
            code = self._rows[i].get(row)
            self._row_codes[i].append(self._new_row(i, row) if code is None else code)
        if len(self._failures) >= SPILL_RECORDS:
            self._spill()

    def _new_row(self, index: int, row: tuple[float, ...]) -> int:
        """The code of a row not seen as such: one already coded with its NaN as the one
        NaN object, or a new one."""
        rows = self._rows[index]
        if any(value != value for value in row):
            row = tuple(_NAN if value != value else value for value in row)
            if row in rows:
                return rows[row]
        width = self._widths[index]
        if width is None:
            self._widths[index] = len(row)
        elif len(row) != width:
            raise ValueError(f"a statistics row of {len(row)} numbers after rows of {width}")
        code = rows[row] = len(rows)
        return code

    @property
    def _dtype(self) -> np.dtype:
        """One record as the builder writes it to disk and counts it."""
        import numpy as np
        return np.dtype([("group", ">u8", (2,)), ("failure", "u1"),
                         *((f"pool{i}", "<i4") for i in range(len(self._codes))),
                         *((f"row{i}", "<i4") for i in range(len(self.statistics)))])

    def _buffered(self) -> np.ndarray:
        """The records in memory as an array of :attr:`_dtype`."""
        import numpy as np
        records = np.empty(len(self._failures), dtype=self._dtype)
        records["group"] = np.frombuffer(self._digests, dtype=">u8").reshape(-1, 2)
        records["failure"] = np.frombuffer(self._failures, dtype=np.uint8)
        for i, pool in enumerate(self._pools):
            records[f"pool{i}"] = np.frombuffer(pool, dtype=np.int32)
        for i, codes in enumerate(self._row_codes):
            records[f"row{i}"] = np.frombuffer(codes, dtype=np.int32)
        return records

    def _spill(self) -> None:
        if self._disk is None:
            self._disk = SpillFile(self._dtype)
        self._disk.append(self._buffered())
        self._new_buffers()

    def build(self, *, complete: bool = False) -> Counted:
        """The counts of the records taken (the builder takes no record after it); with
        ``complete``, of the groups that hold a record of every variety taken only (as
        :meth:`GroupedBuilder.build <moroccan_eval.stats.bootstrap.GroupedBuilder.build>`)."""

        tables, ranks = [], []
        for i, rows in enumerate(self._rows):
            table, rank = _sorted_table(rows, self._widths[i] or 0)
            tables.append(table)
            ranks.append(rank)
        counter = _Counter([len(codes) for codes in self._codes.values()], ranks,
                           whole=len(self._codes[""]) if complete else None)
        for partition in self._partitions():
            counter.add(partition)
        return Counted(names={name: list(codes) for name, codes in self._codes.items()},
                       statistics={statistics: i for i, statistics in enumerate(self.statistics)},
                       tables=tables, items=counter.items, failures=counter.failures,
                       cells=_totals(counter.cells), pairs=_totals(counter.pairs))

    def _partitions(self) -> Iterator[np.ndarray]:
        """The records, split by group into partitions of about :data:`PARTITION_RECORDS`
        (all of them at once when none went to disk), each in the order taken."""
        import numpy as np

        if self._disk is None:
            yield self._buffered()
            return
        self._spill()
        disk = self._disk
        count = min(_MAX_PARTITIONS, -(-disk.count // PARTITION_RECORDS))
        parts = [SpillFile(disk.dtype) for _ in range(count)]
        try:
            for block in disk.blocks(PARTITION_RECORDS):
                part = (block["group"][:, 0] % np.uint64(count)).astype(np.intp)
                order = np.argsort(part, kind="stable")
                bounds = np.searchsorted(part[order], np.arange(count + 1))
                for i in np.flatnonzero(np.diff(bounds)):
                    parts[i].append(block[order[bounds[i]:bounds[i + 1]]])
            disk.close()
            for part_file in parts:
                yield part_file.read(0, part_file.count)
                part_file.close()
        finally:
            for part_file in parts:
                part_file.close()


def _sorted_table(rows: Mapping[tuple[float, ...], int],
                  width: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows (coded in order) in lexicographic order, and each code's rank."""
    import numpy as np
    table = np.array(list(rows), dtype=float).reshape(len(rows), width)
    order = np.lexsort(table.T[::-1]) if width else np.arange(len(rows))
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows))
    return table[order], rank


def _code(codes: dict[str, int], pool: array[int], value: str) -> None:
    code = codes.get(value)
    if code is None:
        code = codes[value] = len(codes)
    pool.append(code)


class _Counter:
    """The counts of partitions of records, summed as they come."""

    def __init__(self, values: list[int], ranks: list[np.ndarray], *, whole: int | None):
        import numpy as np
        self.values, self.ranks, self.whole = values, ranks, whole
        self.items = [np.zeros(count, dtype=np.int64) for count in values]
        self.failures = [np.zeros((count, 3), dtype=np.int64) for count in values]
        self.cells: dict[tuple[int, int], list[_Counts]] = {}
        self.pairs: dict[tuple[int, int], list[_Counts]] = {}

    def add(self, records: np.ndarray) -> None:
        """Count one partition: every record of a group is in it, in the order taken
        (with ``whole``, only the groups holding items of that many varieties)."""
        import numpy as np

        if not records.size:
            return
        groups = records["group"]
        order = np.lexsort((records["pool0"], groups[:, 1], groups[:, 0]))  # stable
        records = records[order]
        groups = records["group"]
        new_group = np.zeros(records.size, dtype=bool)
        new_group[0] = True
        new_group[1:] = np.any(groups[1:] != groups[:-1], axis=1)
        new_key = new_group.copy()
        new_key[1:] |= records["pool0"][1:] != records["pool0"][:-1]
        # the last record of each (group, variety) is its item, as Grouped keeps it
        last = np.append(np.flatnonzero(new_key)[1:], records.size) - 1
        items = records[last]
        group_of_record = np.cumsum(new_group) - 1
        group_of_item = group_of_record[last]
        if self.whole is not None:
            whole = np.bincount(group_of_item) == self.whole
            if not whole.all():  # count the records of whole groups, the others not at all
                self.add(records[whole[group_of_record]])
                return
        for labelling, values in enumerate(self.values):
            pool = records[f"pool{labelling}"].astype(np.intp)
            self.failures[labelling] += np.bincount(
                pool * 3 + records["failure"], minlength=3 * values).reshape(values, 3)
            codes = items[f"pool{labelling}"].astype(np.int64)
            self.items[labelling] += np.bincount(codes, minlength=values)
            for s, rank in enumerate(self.ranks):
                _tally(self.cells.setdefault((labelling, s), []),
                       codes * rank.size + rank[items[f"row{s}"]])
        varieties = items["pool0"].astype(np.int64)
        for reference in np.unique(varieties):
            holder = np.full(int(group_of_item[-1]) + 1, -1, dtype=np.intp)
            is_reference = varieties == reference
            holder[group_of_item[is_reference]] = np.flatnonzero(is_reference)
            theirs = holder[group_of_item]
            own = np.flatnonzero((theirs >= 0) & ~is_reference)
            for s, rank in enumerate(self.ranks):
                size = rank.size
                _tally(self.pairs.setdefault((int(reference), s), []),
                       (varieties[own] * size + rank[items[f"row{s}"][own]]) * size
                       + rank[items[f"row{s}"][theirs[own]]])


def _tally(parts: list[_Counts], keys: np.ndarray) -> None:
    """Add the counts of ``keys`` to ``parts`` (merged now and then, to stay small)."""
    import numpy as np
    parts.append(np.unique(keys, return_counts=True))
    if len(parts) >= 16:
        parts[:] = [_merged(parts)]


def _totals(tallies: dict[tuple[int, int], list[_Counts]]) -> dict[tuple[int, int], _Counts]:
    return {key: _merged(parts) for key, parts in tallies.items()}


def _merged(parts: list[_Counts]) -> _Counts:
    import numpy as np
    if len(parts) == 1:
        return parts[0]
    keys = np.concatenate([keys for keys, _ in parts])
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    counts = np.concatenate([counts for _, counts in parts])[order]
    if not keys.size:
        return keys, counts
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.add.reduceat(counts, starts)


@dataclass
class Counted:
    """What the bootstrap reads of records counted by a :class:`CountedBuilder`: per value
    of each labelling, its items and failures, and its items per distinct row of each
    statistics; per pair of varieties, the items of one whose group the other holds, per
    pair of rows."""

    names: dict[str, list[str]]
    statistics: dict[Statistics, int]
    tables: list[np.ndarray]  # per statistics, its distinct rows in lexicographic order
    items: list[np.ndarray]  # per labelling, items per value
    failures: list[np.ndarray]  # per labelling, (value, [none, error, unparsed]) records
    cells: dict[tuple[int, int], _Counts]  # (labelling, statistics): value × row
    pairs: dict[tuple[int, int], _Counts]  # (reference, statistics): variety × row × row
    labelling: str = ""
    paired: bool = True
    details: None = field(default=None, init=False)

    @classmethod
    def of_rows(cls, statistics: Statistics,
                rows: Sequence[tuple[Sequence[float], int]]) -> Counted:
        """Items given as rows of one statistics and how many items hold each, all under
        the variety ``all`` and none paired (a trivial baseline's: one row per distinct
        reference), counted as a :class:`CountedBuilder` would count those items."""
        import numpy as np

        coded: dict[tuple[float, ...], int] = {}
        codes = []
        for row in rows:
            key = tuple(_NAN if value != value else value for value in row[0])
            codes.append(coded.setdefault(key, len(coded)))
        table, rank = _sorted_table(coded, len(rows[0][0]) if rows else 0)
        totals = np.zeros(len(coded), dtype=np.int64)
        np.add.at(totals, rank[np.array(codes, dtype=np.intp)], [count for _, count in rows])
        held = np.flatnonzero(totals)
        n = int(totals.sum())
        return cls(names={"": ["all"]}, statistics={statistics: 0}, tables=[table],
                   items=[np.array([n])], failures=[np.array([[n, 0, 0]])],
                   cells={(0, 0): (held, totals[held])}, pairs={}, paired=False)

    def view(self, labelling: str) -> Counted:
        """The same items under the values of a labelling of the builder, each a group of
        its own (no two items of a value are paired)."""
        return replace(self, labelling=labelling, paired=False)

    @property
    def _index(self) -> int:
        return list(self.names).index(self.labelling)

    def _code(self, value: str) -> int:
        return self.names[self.labelling].index(value)

    @property
    def varieties(self) -> list[str]:
        """The values with at least one item."""
        import numpy as np
        names = self.names[self.labelling]
        return [names[code] for code in np.flatnonzero(self.items[self._index])]

    def failures_of(self, variety: str) -> tuple[int, int]:
        """Errors and unparsed answers among the variety's records (replaced ones too)."""
        counts = self.failures[self._index][self._code(variety)]
        return int(counts[1]), int(counts[2])

    def detail_sums(self, variety: str) -> dict[str, tuple[float, int]]:
        """No details: a type that has some is grouped by :class:`Grouped`."""
        return {}

    def rows(self, variety: str) -> CountedRows:
        """The items of a variety, as the bootstrap scores them."""
        return CountedRows(self, self._code(variety))


@dataclass
class CountedRows:
    """The items of one value of a :class:`Counted` (``code`` in its labelling)."""

    counted: Counted
    code: int

    @property
    def n(self) -> int:
        return int(self.counted.items[self.counted._index][self.code])

    def layout(self, metric: MetricDef) -> tuple[np.ndarray, np.ndarray]:
        """The distinct rows of the items and how many items hold each."""
        counted = self.counted
        s = counted.statistics[metric.statistics]
        table = counted.tables[s]
        rows, counts = _between(counted.cells.get((counted._index, s)), self.code, table.shape[0])
        return table[rows], counts[None, :]

    def paired(self, reference: CountedRows,
               metric: MetricDef) -> tuple[int, np.ndarray, np.ndarray] | None:
        """The distinct pairs of rows of this value's items and the reference's items of
        the same groups, side by side, with how many pairs hold each; None without pairs."""
        import numpy as np

        counted = self.counted
        if not counted.paired:
            return None
        s = counted.statistics[metric.statistics]
        table = counted.tables[s]
        size = table.shape[0]
        pairs, counts = _between(counted.pairs.get((reference.code, s)), self.code, size * size)
        if not pairs.size:
            return None
        cells = np.hstack([table[pairs // size], table[pairs % size]])
        return table.shape[1], cells, counts[None, :]


def _between(counts: _Counts | None, code: int, size: int) -> _Counts:
    """The counts of keys ``code * size`` to ``(code + 1) * size``, as keys less the first."""
    import numpy as np
    if counts is None:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    keys, numbers = counts
    start, stop = np.searchsorted(keys, [code * size, (code + 1) * size])
    return keys[start:stop] - code * size, numbers[start:stop]
