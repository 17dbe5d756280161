"""Numbers kept on disk: a spilled column's mean and percentiles are numpy's to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from moroccan_eval.stats import spill
from moroccan_eval.stats.spill import FloatColumn, SpillFile


@pytest.mark.parametrize("count", [1, 2, 7, 63, 64, 65, 1000, 20_011])
@pytest.mark.parametrize("kind", ["spread", "ties", "signed"])
def test_a_spilled_columns_mean_and_percentiles_are_numpys(monkeypatch: pytest.MonkeyPatch,
                                                           count: int, kind: str) -> None:
    monkeypatch.setattr(spill, "_READ_BLOCK", 256)  # numpy's own sums on small blocks only
    rng = np.random.default_rng(count)
    values = rng.lognormal(5, 1.5, count)
    if kind == "ties":
        values = np.round(values, -1)
    elif kind == "signed":
        values -= np.median(values)
    column = FloatColumn(memory=64)
    for value in values.tolist():
        column.append(value)
    assert len(column) == count
    assert (column._disk is not None) == (count >= 64)
    quantiles = [0, 2.5, 50, 95, 99, 100]
    assert column.mean() == values.mean()
    assert column.percentiles(quantiles) == [float(v) for v in np.percentile(values, quantiles)]


def test_a_spill_file_reads_back_its_records_in_order() -> None:
    dtype = np.dtype([("a", "<i4"), ("b", "<f8")])
    file = SpillFile(dtype)
    blocks = [np.array([(i, i / 3) for i in range(start, start + 5)], dtype=dtype)
              for start in (0, 5, 10)]
    for block in blocks:
        file.append(block)
    assert file.read(3, 12).tolist() == np.concatenate(blocks)[3:12].tolist()
    assert [b.tolist() for b in file.blocks(4)] == [
        np.concatenate(blocks)[i:i + 4].tolist() for i in range(0, 15, 4)]
    file.close()
    assert file.read(0, 3).size == 0
