"""Exports: every record as stored (JSON), one typed column per key (CSV, Parquet), and
streamed: an export holds a batch of rows, not the runs' records."""

from __future__ import annotations

import csv
import json
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURES

from moroccan_eval import export as export_module
from moroccan_eval.export import ScoreRow, export, score_rows
from moroccan_eval.runs.rundir import Run, load_run

LEGACY = sorted((FIXTURES / "legacy_runs").iterdir())


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    """Runs of every task type: string, dict and list values, absent and null keys."""
    return [load_run(path) for path in LEGACY]


def _expected(runs: list[Run]) -> list[dict[str, Any]]:
    return [{"run_id": run.manifest.run_id, "model": run.model, **json.loads(line)}
            for run in runs
            for line in (run.path / "predictions.jsonl").read_text("utf-8").splitlines()
            if line.strip()]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_exports_keep_every_record_as_stored(runs: list[Run], tmp_path: Path,
                                                  fmt: str) -> None:
    out = tmp_path / f"p.{fmt}"
    count = export(runs, "predictions", fmt, out)  # type: ignore[arg-type]
    text = out.read_text("utf-8")
    rows = json.loads(text) if fmt == "json" else [json.loads(line) for line in
                                                   text.splitlines()]
    expected = _expected(runs)
    assert rows == expected and count == len(expected) > 200


def _written(value: Any, kind: str = "") -> Any:
    """What a text cell holds for ``value``: strings as they are, anything else as JSON
    (in CSV, every cell is text: missing is empty, booleans True/False)."""
    if kind == "csv" and (value is None or isinstance(value, bool | int | float)):
        return "" if value is None else str(value)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return json.dumps(value, ensure_ascii=False)


def test_csv_and_parquet_have_one_typed_column_per_key(runs: list[Run], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_module, "BATCH_ROWS", 7)  # many batches, many row groups
    expected = _expected(runs)
    keys = list(dict.fromkeys(key for row in expected for key in row))
    assert export(runs, "predictions", "parquet", tmp_path / "p.parquet") == len(expected)
    parquet = pq.ParquetFile(tmp_path / "p.parquet")
    assert parquet.metadata.num_row_groups == -(-len(expected) // 7)
    schema = parquet.schema_arrow
    assert schema.names == keys
    assert schema.field("correct").type == pa.bool_()
    assert schema.field("input_tokens").type == pa.int64()
    assert schema.field("latency_ms").type == pa.float64()
    assert schema.field("reference").type == pa.string()  # strings and objects: text
    table = parquet.read().to_pylist()
    for row, record in zip(table, expected, strict=True):
        assert row == {key: _written(record.get(key)) for key in keys}

    assert export(runs, "predictions", "csv", tmp_path / "p.csv") == len(expected)
    with (tmp_path / "p.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == keys and len(rows) == len(expected)
    for row, record in zip(rows, expected, strict=True):
        assert row == {key: _written(record.get(key), "csv") for key in keys}


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_scores_export_one_row_per_task_variety_metric(runs: list[Run], tmp_path: Path,
                                                       fmt: str) -> None:
    out = tmp_path / f"s.{fmt}"
    assert export(runs, "scores", fmt, out) == len(score_rows(runs)) > 50  # type: ignore[arg-type]
    if fmt == "parquet":
        schema = pq.read_schema(out)
        assert schema.names == list(ScoreRow.__annotations__)
        assert schema.field("n").type == pa.int64() and schema.field("value").type == pa.float64()
    elif fmt == "json":
        assert json.loads(out.read_text("utf-8")) == score_rows(runs)


def test_an_empty_export_still_has_its_columns(tmp_path: Path) -> None:
    assert export([], "scores", "parquet", tmp_path / "s.parquet") == 0
    assert pq.read_schema(tmp_path / "s.parquet").names == list(ScoreRow.__annotations__)
    assert export([], "predictions", "csv", tmp_path / "p.csv") == 0
    assert (tmp_path / "p.csv").read_text("utf-8") == "run_id,model\n"
    assert export([], "predictions", "json", tmp_path / "p.json") == 0
    assert json.loads((tmp_path / "p.json").read_text("utf-8")) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_an_export_holds_a_batch_not_the_records(tmp_path: Path, fmt: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of 12,600 records: exporting it allocates a fraction of what holding its
    records takes (the export used to build a list and a DataFrame of them all)."""
    monkeypatch.setattr(export_module, "BATCH_ROWS", 200)
    big = tmp_path / "big-run"
    shutil.copytree(LEGACY[1], big)  # invoice extraction: nested references and answers
    predictions = big / "predictions.jsonl"
    lines = predictions.read_text("utf-8")
    predictions.write_text(lines * 420, encoding="utf-8")
    run = load_run(big)

    tracemalloc.start()
    held = list(run.predictions())
    holding = tracemalloc.get_traced_memory()[0]
    del held
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    count = export([run], "predictions", fmt, tmp_path / f"p.{fmt}")  # type: ignore[arg-type]
    exporting = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert count == 12_600
    assert exporting < holding / 5, (exporting, holding)


def test_csv_text_that_would_run_as_a_formula_is_shown_as_text(tmp_path: Path) -> None:
    """A model's output lands in a CSV a spreadsheet opens: text that a spreadsheet would
    run as a formula gets a leading apostrophe there (Parquet and JSON keep it as it is);
    numbers written as text are left alone."""
    run_dir = tmp_path / LEGACY[0].name
    shutil.copytree(LEGACY[0], run_dir)
    outputs = ['=HYPERLINK("https://example.org/x","open")', "+cmd|' /C calc'!A0",
               "@SUM(A1:A9)", "-2+3", "\tTAB", "-41.7", "+3", "plain answer"]
    path = run_dir / "predictions.jsonl"
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert len(records) >= len(outputs)
    for record, output in zip(records, outputs, strict=False):
        record["output"] = output
    records[0]["reference"] = "=1+1"  # a column of strings and objects: strings as they are
    records[1]["reference"] = {"amount": -5}
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    run = load_run(run_dir)
    export([run], "predictions", "csv", tmp_path / "p.csv")
    with (tmp_path / "p.csv").open(encoding="utf-8", newline="") as fh:
        written = [row["output"] for row in csv.DictReader(fh)][:len(outputs)]
        fh.seek(0)
        references = [row["reference"] for row in csv.DictReader(fh)][:2]
    assert written == ["'" + o for o in outputs[:5]] + outputs[5:]
    assert references == ["'=1+1", '{"amount": -5}']
    export([run], "predictions", "parquet", tmp_path / "p.parquet")
    assert pq.read_table(tmp_path / "p.parquet").column("output").to_pylist()[
        :len(outputs)] == outputs
