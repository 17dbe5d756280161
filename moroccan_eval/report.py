"""Builds the self-contained HTML report from run directories.

Templates live in ``reports/templates`` (Jinja2, autoescaped). A user can override any
of them by passing ``template_dir``: files there take precedence over the shipped ones.
The page makes no network request: styles are inline and there is no script.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from . import __version__, varieties
from .io import write_atomic
from .resources import shipped
from .results import Run, utc_now


@dataclass
class Cell:
    """One model × variety entry of a task table."""

    value: float | None
    ci: list[float] | None
    n: int
    delta: float | None = None
    delta_ci: list[float] | None = None
    significant: bool = False


@dataclass
class TaskTable:
    """Scores of several models on one task of one suite."""

    suite: str
    task: str
    metric: str
    reference: str
    varieties: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)


def _task_tables(runs: Sequence[Run]) -> list[TaskTable]:
    tables: dict[tuple[str, str], TaskTable] = {}
    order = list(varieties.registry())
    for run in runs:
        for task, entry in run.scores["tasks"].items():
            key = (run.manifest["suite"]["ident"], task)
            table = tables.setdefault(key, TaskTable(
                suite=key[0], task=task, metric=entry["metrics"][0],
                reference=entry["reference_variety"], varieties=[],
            ))
            cells: dict[str, Cell] = {}
            for code, values in entry["varieties"].items():
                score = values.get(table.metric) or {}
                delta = (values.get("delta_vs_reference") or {}).get(table.metric) or {}
                cells[code] = Cell(
                    value=score.get("value"), ci=score.get("ci"), n=values["n"],
                    delta=delta.get("value"), delta_ci=delta.get("ci"),
                    significant=bool(delta.get("significant")),
                )
                if code not in table.varieties:
                    table.varieties.append(code)
            overall = entry["overall"].get(table.metric) or {}
            table.rows.append({
                "model": run.manifest["model"]["spec"]["name"],
                "info": run.manifest["model"]["spec"]["info"],
                "cells": cells,
                "overall": Cell(value=overall.get("value"), ci=overall.get("ci"),
                                n=entry["overall"].get("n", 0)),
                "usage": entry["usage"],
                "signature": entry["signature"],
            })
    for table in tables.values():
        table.varieties.sort(key=lambda c: order.index(c) if c in order else len(order))
        table.rows.sort(key=lambda r: -(r["overall"].value or 0))
    return list(tables.values())


def heat(value: float | None) -> str:
    """Background colour for a score in [0, 1]: red (0) through amber to green (1)."""
    if value is None:
        return "#eeeeee"
    hue = round(max(0.0, min(1.0, value)) * 120)
    return f"hsl({hue}, 70%, 85%)"


def _environment(template_dir: Path | None) -> Environment:
    loaders = [FileSystemLoader(str(shipped("reports", "templates")))]
    if template_dir is not None:
        loaders.insert(0, FileSystemLoader(str(template_dir)))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["heat"] = heat
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.1f}"
    env.filters["signed"] = lambda v: "–" if v is None else f"{100 * v:+.1f}"
    env.filters["num"] = lambda v, d=0: "–" if v is None else f"{v:,.{d}f}"
    return env


def build_report(
    runs: Sequence[Run], *, title: str = "moroccan-eval report", template_dir: Path | None = None
) -> str:
    """Render the report of ``runs`` to an HTML string."""
    registry = varieties.registry()
    suites: dict[str, dict[str, Any]] = {}
    for run in runs:
        suite = run.manifest["suite"]
        suites.setdefault(suite["ident"], suite)
    by_model: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_model[run.manifest["model"]["spec"]["name"]].append(run)
    return _environment(template_dir).get_template("report.html.j2").render(
        title=title,
        generated=utc_now(),
        version=__version__,
        tables=_task_tables(runs),
        runs=runs,
        suites=suites,
        varieties=registry,
    )


def write_report(path: Path, html: str) -> None:
    """Atomically write the report file."""
    write_atomic(path, html)
