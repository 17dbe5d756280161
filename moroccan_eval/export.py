"""Exports of runs to open formats another tool can read: scores (one flat row per run ×
task × variety × metric) and predictions, as CSV, Parquet, JSON or JSON lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Literal, TextIO, TypedDict

from .io import atomic_path, spreadsheet_text
from .runs.rundir import Run

Format = Literal["csv", "parquet", "json", "jsonl"]


class ScoreRow(TypedDict):
    run_id: str
    model: str
    suite: str
    task: str
    variety: str
    metric: str
    n: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    delta: float | None
    delta_ci_low: float | None
    delta_ci_high: float | None
    delta_significant: bool | None
    p50_ms: float | None
    p95_ms: float | None
    cost_per_1k_mad: float | None
    cost_per_1k_usd: float | None
    signature: str


def score_rows(runs: Iterable[Run]) -> list[ScoreRow]:
    """One flat row per run × task × variety × metric (for CSV/Parquet/pandas)."""
    rows: list[ScoreRow] = []
    for run in runs:
        for task, entry in run.scores.tasks.items():
            usage = entry.usage
            for variety, values in entry.all_varieties():
                for metric in entry.metrics:
                    score, delta = values.metrics.get(metric), values.deltas.get(metric)
                    ci = score.ci if score and score.ci else (None, None)
                    dci = delta.ci if delta and delta.ci else (None, None)
                    rows.append({
                        "run_id": run.manifest.run_id,
                        "model": run.model,
                        "suite": run.manifest.suite.ident,
                        "task": task,
                        "variety": variety,
                        "metric": metric,
                        "n": values.n,
                        "value": score.value if score else None,
                        "ci_low": ci[0],
                        "ci_high": ci[1],
                        "delta": delta.value if delta else None,
                        "delta_ci_low": dci[0],
                        "delta_ci_high": dci[1],
                        "delta_significant": delta.significant if delta else None,
                        "p50_ms": usage.p50_ms,
                        "p95_ms": usage.p95_ms,
                        "cost_per_1k_mad": usage.cost_per_1k["MAD"],
                        "cost_per_1k_usd": usage.cost_per_1k["USD"],
                        "signature": entry.signature,
                    })
    return rows


def prediction_rows(runs: Iterable[Run]) -> Iterator[dict[str, object]]:
    """Every record of the runs, read one at a time, after its run's id and model."""
    for run in runs:
        for record in run.predictions():
            yield {"run_id": run.manifest.run_id, "model": run.model, **record}


#: Rows of a Parquet row group: an export holds one, whatever the size of the runs.
BATCH_ROWS = 10_000

#: What gives the rows to write, each time it is called (a writer may read them twice).
Rows = Callable[[], Iterator[Mapping[str, object]]]
Kind = Literal["bool", "int", "float", "text"]


class _Columns:
    """The columns of rows (in the order they first appear, after ``first``) and what each
    holds: bool, int, float (ints and floats) or text (strings, and anything else written
    as JSON in CSV and Parquet). Reads the rows once."""

    def __init__(self, rows: Rows, first: Sequence[str]):
        # Rows come in a few shapes (their keys and their values' types): each row is read
        # as its shape, in C, and the shapes, in the order they first appear, give the
        # columns in the order they first appear.
        shapes = dict.fromkeys((tuple(row), tuple(map(type, row.values()))) for row in rows())
        kinds: dict[str, set[type]] = {name: set() for name in first}
        for names, types in shapes:
            for name, kind in zip(names, types, strict=True):
                kinds.setdefault(name, set()).add(kind)
        self.kinds = kinds
        self.names = list(kinds)

    def kind(self, name: str) -> Kind:
        seen = self.kinds[name] - {type(None)}
        if seen == {bool}:
            return "bool"
        if seen and seen <= {int}:
            return "int"
        if seen and seen <= {int, float}:
            return "float"
        return "text"

    def as_json(self) -> set[str]:
        """The columns with values other than strings and numbers, written as JSON text."""
        return {name for name in self.names if self.kind(name) == "text"
                and self.kinds[name] - {str, type(None)}}


def _text(value: object) -> object:
    """A value of a text column: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def write_csv(rows: Rows, first: Sequence[str], out: TextIO) -> int:
    """The rows as CSV (read twice: once for their columns), one column per key: empty
    cells for missing values, True/False, numbers as Python writes them, values other than
    strings and numbers as JSON, text that a spreadsheet would run as a formula after an
    apostrophe. Returns the rows written."""
    columns = _Columns(rows, first)
    names, as_json = columns.names, columns.as_json()
    text = {name for name in names if columns.kind(name) == "text"}
    writer = csv.writer(out, lineterminator="\n")  # None: an empty cell
    writer.writerow(names)
    count = 0
    for row in rows():
        get = row.get
        writer.writerow([get(name) if name not in text else
                         spreadsheet_text(_text(get(name)) if name in as_json else get(name))
                         for name in names])
        count += 1
    return count


def write_parquet(rows: Rows, first: Sequence[str], out: Path) -> int:
    """The rows as Parquet (read twice: once for their columns and types), one typed
    column per key (values other than strings and numbers as JSON text), in row groups of
    :data:`BATCH_ROWS` gathered column by column (the values, not the rows). Returns the
    rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = _Columns(rows, first)
    names = columns.names
    types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "text": pa.string()}
    schema = pa.schema([(name, types[columns.kind(name)]) for name in names])
    as_json = columns.as_json()
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        values: dict[str, list[object]] = {name: [] for name in names}
        appends = [(name, values[name].append, name in as_json) for name in names]
        for row in rows():
            get = row.get
            for name, append, encoded in appends:
                append(_text(get(name)) if encoded else get(name))
            count += 1
            if count % BATCH_ROWS == 0:
                writer.write_table(pa.table(values, schema=schema))
                for column in values.values():
                    column.clear()
        if not count or count % BATCH_ROWS:  # the last row group (or none: the schema)
            writer.write_table(pa.table(values, schema=schema))
    return count


def _write_json(rows: Rows, out: Path, *, lines: bool) -> int:
    """Each row as a JSON object as it is (nested values nested), one a line or all in one
    array."""
    count = 0
    with out.open("w", encoding="utf-8") as fh:
        if not lines:
            fh.write("[")
        for row in rows():
            if lines:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                fh.write(("," if count else "") + "\n" + json.dumps(row, ensure_ascii=False))
            count += 1
        if not lines:
            fh.write("\n]\n" if count else "]\n")
    return count


def export(runs: list[Run], what: Literal["scores", "predictions"], fmt: Format,
           out: Path) -> int:
    """Write scores or predictions of runs as CSV, Parquet, JSON or JSONL; returns rows.
    Predictions are streamed (read twice for CSV and Parquet, once for their columns):
    an export holds one batch of rows, not the runs' records."""
    first: Sequence[str]
    if what == "scores":
        rows: Rows = partial(iter, score_rows(runs))
        first = list(ScoreRow.__annotations__)
    else:
        rows, first = partial(prediction_rows, runs), ("run_id", "model")
    with atomic_path(out) as tmp:
        if fmt == "csv":
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                return write_csv(rows, first, fh)
        if fmt == "parquet":
            return write_parquet(rows, first, tmp)
        return _write_json(rows, tmp, lines=fmt == "jsonl")
