"""Streaming JSONL, CSV and plain-text files record by record, for scan and apply.

Every record is read, processed and written one at a time, so memory stays flat whatever
the file size. Fields are addressed by name (CSV column, JSON key) or by dotted path into
nested JSON (``fields.text``); without ``--field``, every string is scanned.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, Problems
from ..io import csv_delimiter

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "txt"}


@dataclass
class Record:
    """One record: its line number, its parsed form, and its text fields by path."""

    line: int
    data: Any
    texts: dict[str, str]


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: unsupported file type '{path.suffix}'; use .jsonl, .csv "
                          "or .txt")
    return fmt


def _missing(path: Path) -> ConfigError:
    return ConfigError(f"{path}: no such file")


def _folder(path: Path) -> ConfigError:
    return ConfigError(f"{path}: is a folder; pass the files inside it")


def _readable(path: Path) -> None:
    file_format(path)
    if path.is_dir():
        raise _folder(path)
    if not path.exists():
        raise _missing(path)


def check_files(paths: Iterable[Path], title: str) -> None:
    """Refuse, naming every one at once under ``title``, the paths that are not files of a
    supported type: before the scanner is built (seconds) and before any finding is
    printed, which a file found missing later would leave as partial output."""
    problems = Problems()
    for path in paths:
        problems.attempt(_readable, path)
    problems.raise_any(title)


def leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar inside a JSON value with its dotted path (``reference.calls[0].name``);
    ``--field`` accepts these paths."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from leaves(inner, f"{prefix}[{i}]")
    else:
        yield prefix, value


def strings(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a JSON value with its dotted path (see :func:`leaves`)."""
    return ((path, leaf) for path, leaf in leaves(value, prefix) if isinstance(leaf, str))


def _get(data: Any, path: str) -> Any:
    """The value at a path of :func:`strings` (``a.b[2].c``), or None."""
    for part in path.replace("[", ".[").split("."):
        if part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            index = int(part[1:-1])
            if not isinstance(data, list) or index >= len(data):
                return None
            data = data[index]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return None
    return data


def _set(data: Any, path: str, value: str) -> None:
    """Write back a path produced by ``_strings`` or ``--field``."""
    target = data
    parts = path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        target = target[int(part[1:-1])] if part.startswith("[") else target[part]
    last = parts[-1]
    if last.startswith("["):
        target[int(last[1:-1])] = value
    else:
        target[last] = value


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a UTF-8 file (without the byte-order mark Windows editors and
    spreadsheets put first); clear errors for a missing or non-UTF-8 file."""
    try:
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise ConfigError(f"{path}:{number}: not UTF-8 text; convert the file "
                                      "(e.g. iconv -f WINDOWS-1256 -t UTF-8)") from None
    except FileNotFoundError:
        raise _missing(path) from None
    except IsADirectoryError:
        raise _folder(path) from None


def read_records(path: Path, fields: Sequence[str] = ()) -> Iterator[Record]:
    """The records of a JSONL, CSV or text file, with the text fields to process."""
    fmt = file_format(path)
    if fmt == "txt":
        for number, line in read_lines(path):
            yield Record(number, line.rstrip("\n"), {"line": line.rstrip("\n")})
    elif fmt == "jsonl":
        for number, line in read_lines(path):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: invalid JSON ({exc.msg}); fix the line "
                                  "or remove it") from None
            if fields:
                texts = {f: v for f in fields if isinstance(v := _get(data, f), str)}
            else:
                texts = dict(strings(data))
            yield Record(number, data, texts)
    else:
        yield from _read_csv(path, fields)


def csv_layout(path: Path) -> tuple[list[str], str]:
    """A CSV file's header and delimiter (comma, semicolon or tab)."""
    first = next(read_lines(path), (0, ""))[1]
    delimiter = csv_delimiter(first)
    return next(csv.reader([first], delimiter=delimiter), []), delimiter


def _read_csv(path: Path, fields: Sequence[str]) -> Iterator[Record]:
    lines = (line for _, line in read_lines(path))
    first = next(lines, "")
    reader = csv.DictReader(chain([first], lines), delimiter=csv_delimiter(first))
    header = reader.fieldnames or []
    missing = [f for f in fields if f not in header]
    if missing:
        raise ConfigError(f"{path}: no column {', '.join(map(repr, missing))} "
                          f"(columns: {', '.join(header) or 'none'})")
    for number, row in enumerate(reader, start=2):
        chosen = fields or header
        yield Record(number, row, {f: row[f] for f in chosen if row.get(f)})


class RecordWriter:
    """Writes records in the input's format to a temporary file, renamed into place by
    :meth:`commit`; :meth:`discard` leaves nothing behind."""

    def __init__(self, path: Path, fmt: str, header: list[str] | None = None,
                 delimiter: str = ","):
        self.path = path
        self.fmt = fmt
        self.delimiter = delimiter
        self.tmp = path.with_name(f".{path.name}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = self.tmp.open("w", encoding="utf-8", newline="")
        self._csv: Any = None
        self._header = header

    def write(self, record: Record, texts: dict[str, str]) -> None:
        if self.fmt == "txt":
            self._fh.write(texts.get("line", record.data) + "\n")
        elif self.fmt == "jsonl":
            for field, value in texts.items():
                _set(record.data, field, value)
            self._fh.write(json.dumps(record.data, ensure_ascii=False) + "\n")
        else:
            if self._csv is None:
                self._csv = csv.DictWriter(self._fh, fieldnames=self._header
                                           or list(record.data), delimiter=self.delimiter)
                self._csv.writeheader()
            self._csv.writerow({**record.data, **texts})

    def commit(self) -> None:
        self._fh.close()
        self.tmp.replace(self.path)

    def discard(self) -> None:
        self._fh.close()
        self.tmp.unlink(missing_ok=True)
