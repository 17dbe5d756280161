"""The items most models got wrong, found without holding every item: the report's first
pass over predictions notes each answer (which view, item, run and line, and whether it
was wrong) in a private SQLite database on disk, which counts them and ranks the items
in bounded memory; the chosen items' lines are then read again for what the report
quotes of them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..stats.spill import unwritable_temporary_file

#: Answers noted in memory before they are written to the database.
_BATCH = 4096


@dataclass(frozen=True)
class Chosen:
    """An item chosen among the worst of its view and variety, and how many models
    answered it."""

    view: int
    variety: str
    id: str
    n_models: int


class WrongAnswers:
    """Each model's answer to each item of each view: right or wrong, and where it is
    (run and line). A model's later record of an item replaces its earlier one."""

    def __init__(self) -> None:
        # an empty name: a private database in a temporary file, deleted when closed
        self._db = sqlite3.connect("")
        self._pending: list[tuple[int, str, int, int, str, int]] = []
        self._run("""PRAGMA journal_mode = OFF""")
        self._run("""CREATE TABLE answers (view INTEGER, id TEXT, run INTEGER, line INTEGER,
                     variety TEXT, wrong INTEGER, PRIMARY KEY (view, id, run)) WITHOUT ROWID""")

    def add(self, view: int, item: str, run: int, line: int, variety: str,
            wrong: bool) -> None:
        """Note one answer."""
        self._pending.append((view, item, run, line, variety, int(wrong)))
        if len(self._pending) >= _BATCH:
            self._flush()

    def worst(self, per_variety: int) -> list[Chosen]:
        """Per view and variety, the ``per_variety`` items most models got wrong (ties by
        id), in that order."""
        self._flush()
        rows = self._run("""
            WITH items AS (
                SELECT view, id, MIN(variety) AS variety, SUM(wrong) AS wrong,
                       COUNT(*) AS models
                FROM answers GROUP BY view, id HAVING SUM(wrong) > 0),
            ranked AS (
                SELECT view, variety, id, models, ROW_NUMBER() OVER (
                    PARTITION BY view, variety ORDER BY wrong DESC, id) AS rank
                FROM items)
            SELECT view, variety, id, models FROM ranked WHERE rank <= ?
            ORDER BY view, variety, rank""", (per_variety,))
        return [Chosen(*row) for row in rows]

    def lines(self, chosen: Iterable[Chosen]) -> dict[int, dict[int, int]]:
        """Per run, the lines of the chosen items' answers and the view of each."""
        self._run("CREATE TEMP TABLE chosen (view INTEGER, id TEXT)")
        self._run_many("INSERT INTO chosen VALUES (?, ?)", [(c.view, c.id) for c in chosen])
        found: dict[int, dict[int, int]] = {}
        for run, line, view in self._run("""SELECT a.run, a.line, a.view FROM chosen c
                                            JOIN answers a ON a.view = c.view AND a.id = c.id"""):
            found.setdefault(run, {})[line] = view
        return found

    def close(self) -> None:
        self._db.close()

    def _flush(self) -> None:
        if self._pending:
            self._run_many("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                           self._pending)
            self._pending = []

    def _run(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.OperationalError as error:  # a full disk, no temporary folder
            raise unwritable_temporary_file("the report ranks items", str(error)) from error

    def _run_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            self._db.executemany(sql, rows)
        except sqlite3.OperationalError as error:
            raise unwritable_temporary_file("the report ranks items", str(error)) from error
