"""The SQLite response cache, keyed by (model cache hash, request hash).

Every response is committed as soon as it arrives (WAL journal), and the worker that got
it waits for that commit before taking its next item. So a run killed with SIGKILL loses
at most the requests that were in flight, and a re-run serves everything else from here:
no completed request is ever sent twice.

It also remembers, per model, what served its answers (the adapter's ``identity``), so a
re-run can say when the server changed behind the same model YAML.

And it remembers, per *prompt key*, the hash of the request that key renders to (table
``prompts``): a prompt key (:class:`~moroccan_eval.runs.requests.PromptKeys`) hashes
everything rendering reads, so a re-run looks its items' answers up by key, a few hundred
per query, and renders only the prompts it must send. A key is written with the answer
of its request, in the same transaction.

Commits are grouped: rows stored during one turn of the event loop (all the responses
that arrived together) are committed in one transaction at the end of that turn. A
writer thread was tried and measured slower: it waits for the GIL while the loop handles
responses.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from platformdirs import user_cache_dir

from .adapters.base import Response
from .errors import RunError
from .io import JSONObject, canonical_json, json_line, sha256_json

_Row = tuple[str, str, str, float]
#: Keys per ``IN (...)`` query (SQLite before 3.32 allows 999 parameters a statement).
_LOOKUP_BATCH = 500


def default_cache_dir() -> Path:
    """``$MOROCCAN_EVAL_CACHE_DIR``, else the user cache directory (honours
    ``XDG_CACHE_HOME`` on Linux): ``~/.cache/moroccan-eval``."""
    override = os.environ.get("MOROCCAN_EVAL_CACHE_DIR")
    return Path(override) if override else Path(user_cache_dir("moroccan-eval"))


class ResponseCache:
    """A persistent map from (model, request) to :class:`Response`."""

    def __init__(self, directory: Path):
        self.path = directory / "responses.sqlite"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # survives process kills
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS responses (model TEXT NOT NULL, request TEXT NOT "
                "NULL, response TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (model, request))"
            )
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS identities (model TEXT PRIMARY KEY, "
                "fingerprint TEXT NOT NULL, identity TEXT NOT NULL, seen REAL NOT NULL)"
            )
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS prompts (prompt TEXT PRIMARY KEY, "
                "request TEXT NOT NULL) WITHOUT ROWID"
            )
        except (OSError, sqlite3.Error) as exc:
            raise RunError(
                f"cannot open the response cache at {self.path}: {exc}; pass --cache-dir "
                "to use another folder, or --no-cache"
            ) from None
        self._pending: list[tuple[_Row, asyncio.Future[None]]] = []
        self._prompts: list[tuple[str, str]] = []  # (prompt key, request hash) to write

    def get(self, model: str, request: str) -> Response | None:
        row = self.db.execute(
            "SELECT response FROM responses WHERE model = ? AND request = ?", (model, request)
        ).fetchone()
        return Response.from_dict(json.loads(row[0])) if row else None

    def lookup(self, model: str, prompts: Sequence[str]) -> dict[str, tuple[str, Response]]:
        """``{prompt key: (request hash, response)}`` for the keys whose request ``model``
        has answered, in one query per :data:`_LOOKUP_BATCH` keys."""
        found: dict[str, tuple[str, Response]] = {}
        for start in range(0, len(prompts), _LOOKUP_BATCH):
            batch = prompts[start:start + _LOOKUP_BATCH]
            rows = self.db.execute(
                "SELECT p.prompt, p.request, r.response FROM prompts AS p JOIN responses AS r "
                "ON r.model = ? AND r.request = p.request "
                f"WHERE p.prompt IN ({','.join('?' * len(batch))})", (model, *batch))
            for prompt, request, response in rows:
                found[prompt] = request, Response.from_dict(json.loads(response))
        return found

    def remember(self, prompt: str, request: str) -> None:
        """Note that prompt key ``prompt`` renders to request hash ``request`` (written with
        the next committed responses, or every few thousand keys, or on :meth:`close`)."""
        self._prompts.append((prompt, request))
        if len(self._prompts) >= 4096 and not self._pending:
            self._write_prompts()

    def _write_prompts(self) -> None:
        """Write the remembered keys on their own (a key only saves rendering: one that
        cannot be written is dropped, never an error)."""
        prompts, self._prompts = self._prompts, []
        try:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO prompts VALUES (?, ?)", prompts)
            self.db.execute("COMMIT")
        except (sqlite3.Error, ValueError):
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")

    def _commit(self, rows: list[_Row]) -> None:
        prompts, self._prompts = self._prompts, []
        try:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", rows)
            self.db.executemany("INSERT OR REPLACE INTO prompts VALUES (?, ?)", prompts)
            self.db.execute("COMMIT")
        except (sqlite3.Error, ValueError) as exc:  # ValueError: text SQLite cannot encode
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise RunError(f"cannot write the response cache {self.path}: {exc}") from None

    @staticmethod
    def _row(model: str, request: str, response: Response) -> _Row:
        return model, request, json_line(response.to_dict()), time.time()

    def put(self, model: str, request: str, response: Response,
            prompt: str | None = None) -> None:
        """Store and commit one response (and the prompt key its request renders from)."""
        if prompt is not None:
            self._prompts.append((prompt, request))
        self._commit([self._row(model, request, response)])

    async def aput(self, model: str, request: str, response: Response,
                   prompt: str | None = None) -> None:
        """Store one response (and the prompt key its request renders from); returns once
        its row is committed with the others of this event-loop turn."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append((self._row(model, request, response), future))
        if prompt is not None:
            self._prompts.append((prompt, request))
        await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            self._commit([row for row, _ in batch])
        except Exception as exc:  # whatever it is, every waiting worker must hear of it
            for _, future in batch:
                future.set_exception(exc)
            return
        for _, future in batch:
            future.set_result(None)

    def swap_identity(self, model: str, identity: JSONObject) -> JSONObject | None:
        """Record what served ``model``'s answers now; return what served them before if
        it was something else (its cached answers may then be stale)."""
        fingerprint = sha256_json(identity)
        row = self.db.execute("SELECT fingerprint, identity FROM identities WHERE model = ?",
                              (model,)).fetchone()
        try:
            self.db.execute("INSERT OR REPLACE INTO identities VALUES (?, ?, ?, ?)",
                            (model, fingerprint, canonical_json(identity), time.time()))
        except (sqlite3.Error, ValueError) as exc:
            raise RunError(f"cannot write the response cache {self.path}: {exc}") from None
        if row is None or row[0] == fingerprint:
            return None
        previous = json.loads(row[1])
        return previous if isinstance(previous, dict) else {}

    def rows_of(self, model: str) -> Iterator[tuple[str, str, str, float]]:
        """Every stored row of one model key (to hand a Ray worker its cached answers),
        streamed (read as they are iterated)."""
        return iter(self.db.execute(
            "SELECT model, request, response, created FROM responses WHERE model = ?", (model,)))

    def rows_since(self, created: float) -> Iterator[tuple[str, str, str, float]]:
        """Rows stored at or after ``created`` (time.time()): a worker's new answers,
        streamed (read as they are iterated)."""
        return iter(self.db.execute(
            "SELECT model, request, response, created FROM responses WHERE created >= ?",
            (created,)))

    def put_rows(self, rows: list[tuple[str, str, str, float]]) -> None:
        """Store rows as :meth:`rows_of` returns them, in one transaction."""
        if rows:
            self._commit(rows)

    def count(self) -> int:
        """Responses stored (a query: not ``__len__``, which would make every truth test
        of a cache one ``COUNT(*)`` over the table)."""
        return int(self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        if self._prompts:
            self._write_prompts()
        self.db.close()
