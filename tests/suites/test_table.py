"""The streamed data file of a task (moroccan_eval.suites.table)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


GROUPS = ["g", "g2", 'q"uote', "back\\slash", "درب", "a/b", "tab\tbed", "gg", "g "]


def _spelled(row: dict[str, object], how: int) -> str:
    """A row as JSON text in one of the ways a file may spell it."""
    if how == 0:
        return json.dumps(row, ensure_ascii=False)
    if how == 1:
        return json.dumps(row)  # every non-ASCII letter as \\u
    text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    return text.replace("/", "\\/").replace('"g', '"\\u0067', 1)  # escapes JSON allows


def test_items_of_some_groups_are_found_however_the_file_spells_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``--limit`` run streams the groups it drew: lines surely of no drawn group are
    left unparsed, and every line of a drawn group is read, whatever escapes it uses."""
    import moroccan_eval.suites.table as table_module

    rows = [{**ROW, "id": f"{group}-{how}-{split}", "group": group, "split": split}
            for group in GROUPS for how in range(3) for split in ("test", "train")]
    lines = [_spelled(row, how) for row in rows
             for how in [int(str(row["id"]).split("-")[-2])]]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    table = ItemTable(path)
    for chosen in ([g] for g in GROUPS):
        found = {item["id"] for item in table.items("test", groups=chosen)
                 if item["split"] == "test" and item["group"] in chosen}
        assert found == {str(r["id"]) for r in rows
                         if r["group"] in chosen and r["split"] == "test"}, chosen

    parsed: list[bytes] = []
    real = table_module.iter_jsonl

    def noting(path: Path, *, skip: Callable[[bytes], bool]) -> Iterator[tuple[int, Any]]:
        def skipping(raw: bytes) -> bool:
            if not skip(raw):
                parsed.append(raw)
            return skip(raw)
        return real(path, skip=skipping)

    monkeypatch.setattr(table_module, "iter_jsonl", noting)
    list(table.items("test", groups=["g2"]))
    plain = [line.encode("utf-8") + b"\n" for line in lines if "\\" not in line]
    assert len(plain) > len(GROUPS)  # lines a group's name can be told in unparsed
    assert [raw for raw in parsed if raw in plain] == [
        raw for raw in plain if b'"g2"' in raw and b'"test"' in raw]
