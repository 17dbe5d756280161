"""Numbers kept on disk past a few tens of thousands: what lets a run of a million items be
scored in about the memory of a run of ten thousand.

:class:`SpillFile` holds fixed-width numpy records in an anonymous temporary file (deleted
by the system when it is closed or the process ends). :class:`FloatColumn` is a column of
floats (a run's latencies) whose mean and percentiles are numpy's to the bit, worked out
from the disk a block at a time once it has spilled.
"""

from __future__ import annotations

import math
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING

from ..errors import RunError

if TYPE_CHECKING:
    import numpy as np

#: Values a column keeps in memory before it writes them to disk.
SPILL_VALUES = 1 << 13
#: Values read from disk at a time.
_READ_BLOCK = 1 << 14
#: numpy sums at most this many values without halving them (its ``PW_BLOCKSIZE``).
_PAIRWISE_LEAF = 128


class SpillFile:
    """Records of one numpy ``dtype`` appended in blocks to an anonymous temporary file."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.count = 0
        self._file: IO[bytes] | None = None

    def append(self, block: np.ndarray) -> None:
        """Write ``block`` (records of the file's dtype) after the others."""
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="moroccan-eval-")  # noqa: SIM115 (kept open, closed by close())
            self._file.seek(0, 2)
            block.astype(self.dtype, copy=False).tofile(self._file)
        except OSError as error:  # no such folder, no right to write, a full disk
            raise unwritable_temporary_file("scores are counted", error.strerror or str(error)
                                            ) from error
        self.count += len(block)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Records ``start`` to ``stop`` (a new array, not a view of the file)."""
        import numpy as np
        if self._file is None or stop <= start:
            return np.empty(0, dtype=self.dtype)
        self._file.seek(start * self.dtype.itemsize)
        return np.fromfile(self._file, dtype=self.dtype, count=stop - start)

    def blocks(self, size: int = _READ_BLOCK) -> Iterator[np.ndarray]:
        """Every record, in order, ``size`` at a time."""
        for start in range(0, self.count, size):
            yield self.read(start, min(start + size, self.count))

    def close(self) -> None:
        """Free the disk space (the records can no longer be read)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def unwritable_temporary_file(what: str, reason: str) -> RunError:
    """The error of a temporary file that could not be written: where it was and what to
    do (``what`` says what it was for)."""
    return RunError(f"{what} in a temporary file in {tempfile.gettempdir()}, which could not "
                    f"be written ({reason}): set TMPDIR to a folder with free space that you "
                    "may write to")


class FloatColumn:
    """Floats appended one at a time, the first :data:`SPILL_VALUES` in memory and all of
    them on disk past that. :meth:`mean` and :meth:`percentiles` give what numpy's
    ``mean`` and ``percentile`` give on all the values, to the bit."""

    def __init__(self, memory: int | None = None) -> None:
        self._memory = memory or SPILL_VALUES
        self._values = array("d")
        self._disk: SpillFile | None = None

    def append(self, value: float) -> None:
        self._values.append(value)
        if len(self._values) >= self._memory:
            self._spill()

    def __len__(self) -> int:
        return len(self._values) + (self._disk.count if self._disk is not None else 0)

    def _spill(self) -> None:
        import numpy as np
        if self._disk is None:
            self._disk = SpillFile(np.dtype(float))
        self._disk.append(np.frombuffer(self._values, dtype=float))
        self._values = array("d")

    def _on_disk(self) -> SpillFile | None:
        """The file holding every value, or None while they are all in memory."""
        if self._disk is not None and self._values:
            self._spill()
        return self._disk

    def mean(self) -> float:
        """``np.mean`` of the values: their pairwise sum, split where numpy splits it."""
        import numpy as np
        disk = self._on_disk()
        if disk is None:
            return float(np.frombuffer(self._values, dtype=float).mean())

        def pairwise(start: int, stop: int) -> float:
            count = stop - start
            if count <= max(_READ_BLOCK, _PAIRWISE_LEAF):  # numpy sums a block the same way
                return float(np.add.reduce(disk.read(start, stop)))
            half = count // 2
            half -= half % 8  # numpy halves at a multiple of its unrolling
            return pairwise(start, start + half) + pairwise(start + half, stop)

        return float(np.float64(pairwise(0, disk.count)) / disk.count)

    def percentiles(self, quantiles: Sequence[float]) -> list[float]:
        """``np.percentile(values, quantiles)`` (its linear method), reading on disk only
        the order statistics it interpolates between (:func:`order_statistics`)."""
        import numpy as np
        disk = self._on_disk()
        if disk is None:
            found = np.percentile(np.frombuffer(self._values, dtype=float), list(quantiles))
            return [float(value) for value in found]
        reads = percentile_reads(disk.count, tuple(quantiles))
        ranks = sorted({rank for below, above, _ in reads for rank in (below, above)})
        values = dict(zip(ranks, order_statistics(disk, ranks), strict=True))
        return [lerp(values[below], values[above], gamma) for below, above, gamma in reads]


def percentile_reads(count: int, quantiles: tuple[float, ...]) -> list[tuple[int, int, float]]:
    """Where numpy's linear ``percentile`` of ``count`` values reads each quantile: the
    ranks below and above and the weight of the one above (none for no value)."""
    if count == 0:
        return []
    reads = []
    for quantile in quantiles:
        virtual = (count - 1) * (quantile / 100)
        below = math.floor(virtual)
        if virtual >= count - 1:  # at the top: numpy reads the last value twice
            below, above, gamma = count - 1, count - 1, virtual + 1
        else:
            above, gamma = below + 1, virtual - below
        reads.append((below, above, gamma))
    return reads


def lerp(low: float, high: float, gamma: float) -> float:
    """numpy's interpolation between two order statistics (``np.lib._function_base_impl.
    _lerp``): the same float operations, so the same bits."""
    spread = high - low
    return high - spread * (1 - gamma) if gamma >= 0.5 else low + spread * gamma


def order_statistics(disk: SpillFile, ranks: Sequence[int]) -> list[float]:
    """The values of the given ranks (0: the smallest) among the floats in ``disk``, found
    a byte of their sort key at a time (a radix selection: eight passes over the file,
    nothing held but a histogram of 256 counts per rank)."""
    import numpy as np

    prefixes = [0] * len(ranks)  # the key bits found so far, per rank
    remaining = list(ranks)  # the rank among the values sharing those bits
    for shift in range(56, -1, -8):
        histograms = {prefix: np.zeros(256, dtype=np.int64) for prefix in prefixes}
        for block in disk.blocks():
            keys = _sort_keys(block)
            high = keys >> np.uint64(shift + 8) if shift < 56 else None
            digits = ((keys >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.intp)
            for prefix, histogram in histograms.items():
                chosen = digits if high is None else digits[high == np.uint64(prefix)]
                histogram += np.bincount(chosen, minlength=256)
        for i, prefix in enumerate(prefixes):
            below = np.cumsum(histograms[prefix])
            digit = int(np.searchsorted(below, remaining[i], side="right"))
            remaining[i] -= int(below[digit - 1]) if digit else 0
            prefixes[i] = prefix << 8 | digit
    return [float(_from_sort_key(np.array([key], dtype=np.uint64))[0]) for key in prefixes]


def _sort_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integers in the order of the floats (negative ones flipped whole, the sign
    bit of others set)."""
    import numpy as np
    bits = values.view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint64(1 << 63))


def _from_sort_key(keys: np.ndarray) -> np.ndarray:
    import numpy as np
    positive = (keys >> np.uint64(63)).astype(bool)
    return np.where(positive, keys & np.uint64((1 << 63) - 1), ~keys).view(np.float64)
