"""File input/output with user-grade error messages and no half-written files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pydantic_core
import yaml
from pydantic import BaseModel, ValidationError, model_serializer
from typing_extensions import TypeAliasType

from .errors import ConfigError, MoroccanEvalError, OutputError

M = TypeVar("M", bound=BaseModel)

#: What a JSON document may hold: item fields, references, parsed answers, details.
JSONValue = TypeAliasType(
    "JSONValue", "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None")
JSONObject = dict[str, JSONValue]


#: How a cell that a spreadsheet runs as a formula starts (OWASP's "CSV injection").
_FORMULA_START = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_text(value: object) -> object:
    """A CSV cell that a spreadsheet shows as it is: text that would start a formula (a
    model's answer, a user's message: anyone's text) gets a leading apostrophe; a number
    written as text does not."""
    if isinstance(value, str) and value[:1] in _FORMULA_START \
            and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_delimiter(header: str) -> str:
    """A CSV file's delimiter, from its header line: the comma, or the semicolon or tab that
    spreadsheets write in French and other locales, whichever the header holds most (the
    comma on a tie)."""
    return max((",", ";", "\t"), key=header.count)


def utc_now() -> str:
    """The current time in UTC as ISO 8601 to the second (manifests, audit logs, reports)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_text(path: Path, what: str = "file") -> str:
    """Read a UTF-8 text file, turning OS and decoding errors into one clear message."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a directory, expected a file: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases (``&a`` / ``*a`` / ``<<: *a``).

    Aliases let a few hundred bytes expand into billions of nodes ("billion laughs"): the
    load itself is quick, but validating or hashing the result hangs and exhausts memory.
    No file of the toolkit needs them, so user files (models, suites, cards, registers)
    may not use them at all.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent) or anchor is not None:
            raise yaml.composer.ComposerError(
                None, None, f"YAML anchors and aliases (&{anchor} / *{anchor}) are not "
                "accepted; write the value out in full", event.start_mark)
        return super().compose_node(parent, index)


_FastLoader: type[Any] | None = getattr(yaml, "CSafeLoader", None)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text from ``source`` (a file name, for the message) without aliases;
    a syntax error names the file, line and column."""
    try:
        # aliases are refused, so no expansion can blow up; only plain Python data is built
        # (SafeLoader's constructors). libyaml, when PyYAML has it, is 5x faster: its events
        # are checked for anchors first, then it builds the data
        if _FastLoader is None:
            return yaml.load(text, Loader=_NoAliasLoader)
        for event in yaml.parse(text, Loader=_FastLoader):
            anchor = getattr(event, "anchor", None)
            if isinstance(event, yaml.AliasEvent) or anchor is not None:
                raise yaml.composer.ComposerError(
                    None, None, f"YAML anchors and aliases (&{anchor} / *{anchor}) are not "
                    "accepted; write the value out in full",
                    event.start_mark)  # type: ignore[arg-type]  # libyaml's Mark, same fields
        return yaml.load(text, Loader=_FastLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    except UnicodeEncodeError as exc:  # libyaml reads UTF-8: a lone surrogate has none
        raise ConfigError(f"{source}: invalid YAML: character {exc.start + 1} is not a "
                          "Unicode character (a lone surrogate)") from None


def load_yaml(path: Path, what: str = "YAML file") -> Any:
    """Parse a YAML file (no anchors or aliases); a syntax error names the file, line and
    column."""
    return parse_yaml(read_text(path, what), str(path))


class WrittenWhenSet(BaseModel):
    """A model of a file format whose fields named in ``written_when_set`` are left out of
    what it writes while they are None: files of older toolkits lack them and must read
    back unchanged."""

    written_when_set: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: Any) -> Any:
        data = handler(self)
        for key in self.written_when_set:
            if getattr(self, key) is None:
                data.pop(key, None)
        return data


def format_validation_errors(exc: ValidationError) -> list[str]:
    """One line per pydantic error: ``field.path: message``."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see the documentation for allowed fields)"
        problems.append(f"{loc}: {msg}")
    return problems


def validate(
    model: type[M], data: Any, source: str, error: type[MoroccanEvalError] = ConfigError
) -> M:
    """Validate ``data`` against ``model``, reporting every error at once with its field."""
    if data is None:
        raise error(f"{source}: file is empty")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{source}: invalid", format_validation_errors(exc)) from None


def load_model_yaml(model: type[M], path: Path, what: str = "YAML file") -> M:
    """Load and validate a YAML file into a pydantic model."""
    return validate(model, load_yaml(path, what), str(path))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so memory stays flat."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_json(obj: Any) -> str:
    """Deterministic JSON used for hashing: sorted keys, no spaces, UTF-8 kept; exactly
    ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``."""
    if _CANONICAL_C is not None:
        try:
            return "".join(_CANONICAL_C(obj, 0))
        except RecursionError:
            pass  # a cycle, or nesting too deep: said again below, in json's own words
    return _CANONICAL.encode(obj)


#: What ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` makes
#: for each call, made once (half the cost of hashing a small object).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
#: The C encoder that ``_CANONICAL.encode`` makes on each call (``json.encoder.iterencode``),
#: made once, without the dict of objects seen (which finds cycles): a request hashed
#: 5.0 -> 3.4 µs. A cycle then recurses until :class:`RecursionError`, and ``_CANONICAL``
#: says what it is.
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)  # None without json's C part
_CANONICAL_C: Callable[[Any, int], tuple[str, ...]] | None = (
    None if _make_c_encoder is None
    else _make_c_encoder(None, _CANONICAL.default, json.encoder.encode_basestring, None, ":",
                         ",", True, False, True))


def sha256_json(obj: Any) -> str:
    """Hex sha256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def json_line(obj: Any) -> str:
    """``obj`` as one line of compact JSON with UTF-8 kept (a prediction, a cached answer,
    a request's body).

    pydantic's Rust serializer writes a prediction record three to four times as fast as
    :mod:`json`. What it refuses (a lone surrogate, a type it does not know) goes through
    :mod:`json`, which raises as it always did. Not for hashing: its floats are spelled
    differently (``0.00001`` for ``1e-05``), though they read back the same."""
    try:
        return pydantic_core.to_json(obj).decode("utf-8")
    except ValueError:  # PydanticSerializationError is one
        return _COMPACT.encode(obj)


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@cache
def _default_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0o666 minus the umask); read once,
    because reading the umask means setting it."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _check_destination(path: Path) -> None:
    if path.exists() and not path.is_file():
        raise OutputError(f"{path}: exists and is not a regular file (a folder, device, FIFO "
                          "or socket); choose another output path")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write into; renamed onto ``path`` when the block
    succeeds, removed when it fails, so ``path`` is never half-written. A destination that
    exists and is not a regular file (``/dev/null``, a FIFO) is refused, not replaced. The
    file gets the usual permissions, not mkstemp's private 0600."""
    _check_destination(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        _check_destination(path)  # it may have appeared while we wrote
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_path`: never half-written."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, obj: Any) -> None:
    """Atomically write pretty JSON."""
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, records: Iterable[Any]) -> None:
    """Atomically write one JSON object per line, streamed (records may be a generator)."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def iter_jsonl(path: Path, *, errors: list[str] | None = None, max_line_bytes: int | None = None,
               strict: bool = False, skip: Callable[[bytes], bool] | None = None,
               lines: Container[int] | None = None) -> Iterator[tuple[int, JSONObject]]:
    """Yield ``(line_number, object)`` of a JSON-lines file; a bad line raises an error
    naming file and line.

    With ``errors``, a bad line is appended to it instead and reading goes on, so a
    validator can report every bad line at once. ``max_line_bytes`` refuses longer lines
    before reading them whole (a hostile file may be one endless line); ``strict`` refuses
    what :func:`parse_json_line` accepts only leniently, and a UTF-8 byte-order mark
    starting the file, which is otherwise read past. ``skip`` is asked about each
    line's bytes first: a line it says yes to is not parsed; with ``lines``, only the
    lines of those numbers are parsed. Lines are split on
    ``\\n`` only, as Arrow's JSON reader does, so line numbers match its.
    """
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        lineno = 0
        while True:
            lineno += 1
            try:
                raw = fh.readline(max_line_bytes + 1 if max_line_bytes else -1)
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
            if not raw:
                return
            if lines is not None and lineno not in lines:
                if max_line_bytes and len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                    _skip_line(fh)
                continue
            if max_line_bytes and len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                _skip_line(fh)
                problem = (f"{path}:{lineno}: line longer than {max_line_bytes:,} bytes; "
                           "an item must be far shorter (split long texts)")
            else:
                if lineno == 1 and raw.startswith(_BOM):  # Windows editors and Excel add it
                    if strict:
                        problem = (f"{path}:1: starts with a UTF-8 byte-order mark; save the "
                                   "file as UTF-8 without one")
                        if errors is None:
                            raise ConfigError(problem)
                        errors.append(problem)
                    raw = raw[len(_BOM):]
                if skip is not None and skip(raw):
                    continue
                try:
                    obj = parse_json_line(raw, strict=strict)
                except ValueError as exc:
                    problem = f"{path}:{lineno}: {exc}"
                else:
                    if obj is not None:
                        yield lineno, obj
                    continue
            if errors is None:
                raise ConfigError(problem)
            errors.append(problem)


_BOM = b"\xef\xbb\xbf"


def _skip_line(fh: Any) -> None:
    """Read on to the end of the current line in bounded chunks."""
    while chunk := fh.readline(1 << 20):
        if chunk.endswith(b"\n"):
            return


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all distinct: with a repeated key, readers disagree on
    which value counts (Python keeps the last)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        repeated = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise ValueError(f"key {repeated!r} appears twice in one object")
    return obj


def parse_json_line(raw: bytes, *, strict: bool = False) -> JSONObject | None:
    """One line of a JSON-lines file as an object, ``None`` for a blank line; raises
    ``ValueError`` with a message for the user (invalid UTF-8 or JSON, numbers of thousands
    of digits, absurd nesting, not an object).

    ``strict`` (data files of suites) also refuses NaN/Infinity and repeated keys: Python
    accepts them, but Arrow and other readers do not or read them differently, so an item
    holding them would not mean the same thing everywhere. Files the toolkit writes itself
    (predictions may hold a model's NaN) are read leniently.
    """
    if not strict:
        try:  # pydantic's Rust parser: 2-3 times as fast on an item or a prediction
            fast = pydantic_core.from_json(raw)
        except ValueError:
            pass  # what it refuses, json accepts (a lone surrogate) or explains as ever
        else:
            if isinstance(fast, dict):
                return fast
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (byte {exc.start + 1} of the line); save the "
                         "file as UTF-8") from None
    if not line.strip():
        return None
    options: dict[str, Any] = (
        {"parse_constant": _refuse_constant, "object_pairs_hook": _unique_keys}
        if strict else {})
    try:
        obj = json.loads(line, **options)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ValueError(f"invalid JSON ({exc})") from None
    except RecursionError:
        raise ValueError("invalid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object per line")
    return obj
