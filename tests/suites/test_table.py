"""The streamed data file of a task (moroccan_eval.suites.table)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from moroccan_eval.errors import SuiteError
from moroccan_eval.suites.table import ItemTable


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")


ROW = {"id": "a", "group": "g", "split": "test", "variety": "ary_Arab",
       "fields": {"text": "2026-03-14"}, "reference": {"date": "2026-03-14", "n": 2**40},
       "consent_id": "authored"}


def test_items_come_back_exactly_as_written(tmp_path: Path) -> None:
    """No type inference: a date stays a string, a large integer an integer (Arrow turned
    dates into datetimes inside nested objects)."""
    path = tmp_path / "items.jsonl"
    _write(path, [ROW, {**ROW, "id": "b", "meta": {"k": "v"}}])
    table = ItemTable(path)
    first, second = list(table)
    assert first["reference"] == {"date": "2026-03-14", "n": 2**40}
    assert first["meta"] == {} and second["meta"] == {"k": "v"}
    assert table.column("id") == ["a", "b"] and table.num_rows == 2


def test_a_file_changed_after_loading_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    _write(path, [ROW])
    table = ItemTable(path)
    _write(path, [{**ROW, "reference": {"date": "2026-03-15", "n": 1}}])
    os.utime(path, ns=(1, 1))  # a different stamp even within the clock's resolution
    with pytest.raises(SuiteError, match="changed on disk since the suite was loaded"):
        list(table)


def test_rows_stream_in_flat_memory(tmp_path: Path) -> None:
    """Iterating holds one row at a time: peak traced memory while streaming 200,000 rows
    is far below what holding them would take."""
    import tracemalloc

    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(200_000):
            fh.write(json.dumps({**ROW, "id": f"i{i}", "group": f"g{i}"}) + "\n")
    table = ItemTable(path)
    tracemalloc.start()
    count = sum(1 for _ in table)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 200_000
    assert peak < 5 * 2**20, f"peak {peak / 2**20:.1f} MiB while streaming"
