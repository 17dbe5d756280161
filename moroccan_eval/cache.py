"""The SQLite response cache, keyed by (model cache hash, request hash).

Every response is committed the moment it arrives (WAL journal), so a run killed with
SIGKILL loses at most the requests that were in flight, and a re-run serves everything
else from here: no completed request is ever sent twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from platformdirs import user_cache_dir

from .adapters.base import Response
from .errors import RunError


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
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS responses (model TEXT NOT NULL, request TEXT NOT NULL,"
                " response TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (model, request))"
            )
        except (OSError, sqlite3.Error) as exc:
            raise RunError(
                f"cannot open the response cache at {self.path}: {exc}; pass --cache-dir "
                "to use another folder, or --no-cache"
            ) from None

    def get(self, model: str, request: str) -> Response | None:
        row = self.db.execute(
            "SELECT response FROM responses WHERE model = ? AND request = ?", (model, request)
        ).fetchone()
        return Response.from_dict(json.loads(row[0])) if row else None

    def put(self, model: str, request: str, response: Response) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
            (model, request, json.dumps(response.to_dict(), ensure_ascii=False), time.time()),
        )

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self.db.close()
