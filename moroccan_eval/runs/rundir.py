"""Run directories: layout, writing while a run goes, and reading back.

``<out>/<run_id>/``
  ``manifest.json``     what produced the run (suite, tasks, model spec without secrets,
                        toolkit version, seed, host, times) and its ``status``
  ``predictions.jsonl`` one line per item, streamed while the run goes
  ``scores.json``       per task × variety: n, metrics with 95% CIs, paired deltas;
                        latency, tokens and cost

The manifest is written first (``running``) and last, so a directory only says
``complete`` when everything is in it. Report, export and rescore refuse unfinished runs.
"""

from __future__ import annotations

import functools
import json
import platform
import re
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

from pydantic import BaseModel, ValidationError

from ..adapters.base import ModelSpec
from ..errors import MoroccanEvalWarning, Problems, RunError
from ..io import format_validation_errors, iter_jsonl, json_line, sha256_file, utc_now, write_json
from ..records import (
    Host,
    Manifest,
    ModelRef,
    PredictionRecord,
    RunScores,
    Selection,
    SuiteRef,
    TaskRef,
)
from ..stats.bootstrap import DEFAULT_BOOTSTRAP, DRAWS
from ..suites.loader import Suite, Task
from ..version import __version__

MANIFEST = "manifest.json"
PREDICTIONS = "predictions.jsonl"
SCORES = "scores.json"


def new_run_id(suite: str, model: str) -> str:
    """``20261124T231500Z-support-intents-char-ngram-1a2b3c``: sortable and readable."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", model).strip("-")[:40] or "model"
    suffix = f"{time.time_ns() & 0xFFFFFF:06x}"
    return f"{stamp}-{suite}-{slug}-{suffix}"


def new_manifest(*, suite: Suite, tasks: Iterable[Task], spec: ModelSpec, selection: Selection,
                 seed: int, usd_mad: float, bootstrap: int = DEFAULT_BOOTSTRAP) -> Manifest:
    """The manifest of a new run (without secrets: the spec holds env var names only)."""
    return Manifest(
        run_id=new_run_id(suite.name, spec.name),
        toolkit_version=__version__,
        created=utc_now(),
        seed=seed,
        bootstrap=bootstrap,
        bootstrap_draws=DRAWS,
        usd_mad=usd_mad,
        selection=selection,
        suite=SuiteRef(name=suite.name, version=suite.version, sha256=suite.sha256,
                       ident=suite.ident, reference_variety=suite.spec.reference_variety,
                       license=suite.spec.license, card=suite.card),
        tasks={task.name: TaskRef(version=task.spec.version,
                                  sha256=sha256_file(suite.path / "tasks" / f"{task.name}.yaml"),
                                  spec=task.spec)
               for task in tasks},
        model=ModelRef(spec=spec, cache_hash=spec.cache_hash),
        allow_unanonymized=suite.allow_unanonymized,
        host=Host(hostname=socket.gethostname(), platform=platform.platform(),
                  python=sys.version.split()[0]),
    )


class RunWriter:
    """Creates a run directory and streams predictions into it."""

    def __init__(self, root: Path, manifest: Manifest):
        self.dir = root / manifest.run_id
        self.manifest = manifest
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
            write_json(self.dir / MANIFEST, manifest.to_json())
            self._fh: IO[str] = (self.dir / PREDICTIONS).open("w", encoding="utf-8")
        except OSError as exc:
            raise RunError(f"cannot write the run directory {self.dir}: {exc.strerror}") from None

    def write(self, record: PredictionRecord) -> str:
        """Append ``record``; returns its line."""
        line = json_line(record)
        self._fh.write(line + "\n")
        return line

    def write_lines(self, lines: str) -> None:
        """Append records already written as JSON lines (``lines`` without its last
        newline), as a worker process sends them."""
        self._fh.write(lines + "\n")

    def predictions(self) -> Iterator[PredictionRecord]:
        """The predictions written so far, read back (streamed) once the file is closed."""
        self._fh.close()
        for _, record in iter_jsonl(self.dir / PREDICTIONS):
            yield record  # type: ignore[misc]  # a JSON object read back as the record it was

    def finish(self, scores: RunScores, status: str = "complete") -> None:
        """Close predictions, write scores, then mark the manifest."""
        self._fh.close()
        write_json(self.dir / SCORES, scores.to_json())
        self._mark(status)

    def abort(self, status: str) -> None:
        """Mark an unfinished run; a run that wrote no prediction leaves nothing behind."""
        empty = self._fh.tell() == 0
        self._fh.close()
        if empty:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            self._mark(status)

    def discard(self) -> None:
        """Remove the run directory and all it holds (a run whose making failed)."""
        self._fh.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _mark(self, status: str) -> None:
        self.manifest.status = status
        self.manifest.finished = utc_now()
        write_json(self.dir / MANIFEST, self.manifest.to_json())


@dataclass
class Run:
    """A run directory, its manifest and scores parsed once."""

    path: Path
    manifest: Manifest
    scores: RunScores

    @property
    def model(self) -> str:
        return self.manifest.model.spec.name

    def predictions(self) -> Iterator[PredictionRecord]:
        """The stored prediction records, streamed. A record of another shape (a field
        missing or of the wrong type: a hand-edited or foreign file) raises an error naming
        its line and fields, not a crash further on in scoring."""
        for _, record in self.numbered_predictions():
            yield record

    def numbered_predictions(self, lines: Container[int] | None = None
                             ) -> Iterator[tuple[int, PredictionRecord]]:
        """:meth:`predictions` with their line numbers; with ``lines``, only the records
        of those lines (the others are read past, not parsed)."""
        path = self.path / PREDICTIONS
        check = _record_check()
        for lineno, record in iter_jsonl(path, lines=lines):
            try:
                check(record)
            except ValidationError as exc:
                raise RunError(f"{path}:{lineno}: not a prediction record as moroccan-eval "
                               f"writes it: {'; '.join(format_validation_errors(exc))}"
                               ) from None
            yield lineno, record  # type: ignore[misc]  # checked: the record it was written as


@functools.cache
def _record_check() -> Callable[[object], object]:
    """Validates a record against :class:`PredictionRecord` (strict: no coercion; about
    2 µs a record, against 5 µs for parsing its line)."""
    from pydantic import TypeAdapter

    adapter = TypeAdapter(PredictionRecord)
    return functools.partial(adapter.validate_python, strict=True)


M = TypeVar("M", bound=BaseModel)


def _read_record(path: Path, model: type[M]) -> M:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunError(f"{path}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunError(f"{path}: corrupted (not JSON)") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RunError(f"{path}: not a moroccan-eval {path.name}",
                       format_validation_errors(exc)) from None


ItemKey = tuple[str, str]  # (task, item id)


class RecordsByItem:
    """A run's records, read once in file order and taken by item in another order (the
    suite's): a record read before its item's turn waits until it is taken. A run writes
    its answers as they come back, out of order within its concurrency: the records
    waiting are that window, not the run (a record missing from the file makes all after it
    wait). ``on_read`` sees every record as it is read, in file order."""

    def __init__(self, records: Iterator[PredictionRecord],
                 on_read: Callable[[PredictionRecord], object] | None = None):
        self._records = records
        self._on_read = on_read
        self._ahead: dict[ItemKey, PredictionRecord] = {}
        self.repeated: set[ItemKey] = set()  # read again while the first was waiting

    def take(self, key: ItemKey) -> PredictionRecord | None:
        """The first record of ``key``'s item, or ``None`` if the file has none."""
        found = self._ahead.pop(key, None)
        if found is not None:
            return found
        for record in self._records:
            other = self._read(record)
            if other == key:
                return record
            if other in self._ahead:
                self.repeated.add(other)
            else:
                self._ahead[other] = record
        return None

    def left(self) -> set[ItemKey]:
        """The items of the records no :meth:`take` took (the file read to its end): items
        taken already (repeated), or not asked for."""
        return set(self._ahead) | {self._read(record) for record in self._records}

    def _read(self, record: PredictionRecord) -> ItemKey:
        if self._on_read is not None:
            self._on_read(record)
        return record["task"], record["id"]


def load_run(path: Path, *, require_complete: bool = True) -> Run:
    """Open a run directory; refuse it when it is not a finished run."""
    if not (path / MANIFEST).is_file():
        raise RunError(f"{path}: not a run directory (no {MANIFEST})")
    manifest = _read_record(path / MANIFEST, Manifest)
    if require_complete and not manifest.finished_ok:
        raise RunError(
            f"{path}: run status is '{manifest.status}', not 'complete' (it was interrupted "
            "or is still going); re-run the same command to finish it from the cache")
    if (path / SCORES).is_file():
        scores = _read_record(path / SCORES, RunScores)
    elif require_complete:
        raise RunError(f"{path}: {SCORES} is missing")
    else:
        scores = RunScores(run_id=manifest.run_id, model=manifest.model.spec.name,
                           suite=manifest.suite.ident, tasks={})
    return Run(path=path, manifest=manifest, scores=scores)


def load_all(paths: Iterable[Path], title: str) -> list[Run]:
    """The finished runs at ``paths`` (:func:`load_run` on each), or one error naming,
    under ``title``, every one that cannot be opened."""
    problems = Problems()
    runs = [problems.attempt(load_run, path) for path in paths]
    problems.raise_any(title)
    return [run for run in runs if run is not None]


def expand_run_paths(paths: Iterable[Path]) -> list[Path]:
    """Run directories from arguments that may be runs or folders of runs. In a folder,
    runs that did not finish (a killed run's stale directory, a failed run) are skipped with
    a warning; a run directory named explicitly is kept (and refused when it is opened)."""
    paths = list(paths)
    found: list[Path] = []
    problems = Problems()
    for path in paths:
        if not path.is_dir():
            problems.add(RunError(f"{path}: no such run directory"))
    problems.raise_any("run directories not found")
    empty: list[Path] = []
    for path in paths:
        if (path / MANIFEST).is_file():
            found.append(path)
            continue
        inside = sorted(p.parent for p in path.glob(f"*/{MANIFEST}"))
        if not inside:
            empty.append(path)
        for run_dir in inside:
            status = _status(run_dir)
            if status == "complete" or status.startswith("stopped"):
                found.append(run_dir)
            else:
                warnings.warn(f"skipped {run_dir.name}: status '{status}' (not a finished "
                              "run)", MoroccanEvalWarning, stacklevel=2)
    if not found:
        raise RunError("no finished run directories found in " + ", ".join(map(str, paths)))
    for path in empty:  # the others' runs go on; this one may be a mistyped path
        warnings.warn(f"{path}: no run directory in it (none of its folders holds a "
                      f"{MANIFEST})", MoroccanEvalWarning, stacklevel=2)
    return found


def _status(run_dir: Path) -> str:
    """A run's status from its manifest, or why it has none (without validating the rest)."""
    try:
        data = json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unreadable manifest"
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, str) else "no status"
