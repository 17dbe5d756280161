"""File input/output with user-grade error messages and no half-written files."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from typing_extensions import TypeAliasType

from .errors import ConfigError, MoroccanEvalError, OutputError

M = TypeVar("M", bound=BaseModel)

#: What a JSON document may hold: item fields, references, parsed answers, details.
JSONValue = TypeAliasType(
    "JSONValue", "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None")
JSONObject = dict[str, JSONValue]


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


def load_yaml(path: Path, what: str = "YAML file") -> Any:
    """Parse a YAML file; a syntax error names the file, line and column."""
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from None


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
    """Deterministic JSON used for hashing: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_json(obj: Any) -> str:
    """Hex sha256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


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


def iter_jsonl(path: Path) -> Iterator[tuple[int, JSONObject]]:
    """Yield ``(line_number, object)``; a bad line raises an error naming file and line."""
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(
                        f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})"
                    ) from None
                if not isinstance(obj, dict):
                    raise ConfigError(f"{path}:{lineno}: expected a JSON object per line")
                yield lineno, obj
        except UnicodeDecodeError:
            raise ConfigError(
                f"{path}:{lineno + 1}: not valid UTF-8; save the file as UTF-8"
            ) from None
