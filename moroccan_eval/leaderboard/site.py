"""The static leaderboard site: HTML pages in English, French and Arabic, the results as
CSV, JSON and Parquet, and a copy of every submission's files, written from a
:class:`~.board.Board`.

Layout of the site (``out``); every page holds the three languages (below)::

    index.html                    overview: a row per submission, headline per suite
    varieties.html                per task, degradation by variety (heatmap tables)
    tradeoffs.html                quality vs cost and p95 latency, smallest model per level
    downloads.html                what the data files hold
    suites/<suite>.html           a suite's card, tasks and best rows
    submissions/<id>.html         a submission's card, scores, files, verify command
    assets/                       style.css, site.js, favicon.svg
    charts/<suite>-<axis>.svg     the trade-off charts (numbers only: shared by languages)
    data/                         results.parquet, results.csv.gz, results.json.gz,
                                  board.json.gz
    files/<id>/                   the submission's files, as submitted

A page holds each message in each language (``<span lang=fr>``), and each link to another
page once per language; the address picks the language (``#fr``, ``#ar``, or an anchor of
theirs: ``fr-…``, ``ar-…``; English otherwise) and the stylesheet shows only its elements,
Arabic right to left, with no script (``:target`` and ``:has``). A page's numbers are
written once, not once per language: a thousand submissions make about 19 MB of site
instead of the 37 MB of a folder per language.

A board of a thousand submissions stays small and quick to build:

- pages are rendered with placeholders where a message goes, filled in the three
  languages at once (:class:`TrilingualFiller`: a message is formatted once per build,
  not once per use);
- a submission's page shows a row per task and links to the submission's rows of the
  heatmaps (ids from :func:`heat_anchor`) rather than repeating every variety's cells;
- text files that only tools read are gzip-compressed (every CSV/JSON reader opens
  ``.gz``).

Pages are Jinja2 templates under ``leaderboard/templates`` (autoescaped) with messages in
``leaderboard/templates/i18n/<lang>.yaml``; a ``template_dir`` overrides any of them
(templates, assets, or individual messages). Pages make no request but to the site's own
files (a Content-Security-Policy says so), read completely with JavaScript off, and the
small script only adds sorting and filtering. Free text of submissions is escaped (and
validation has refused markup already); the model link is only ever an http(s) href.

The site is written into a temporary folder beside ``out`` and renamed into place, so a
failed build leaves the previous site untouched. An existing ``out`` is replaced only
when it is a site built here (it holds :data:`MARKER`) or an empty folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache, partial
from hashlib import sha256
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    select_autoescape,
)
from markupsafe import Markup, escape

from .. import collector, varieties
from ..errors import OutputError
from ..export import ScoreRow, score_rows, write_csv, write_parquet
from ..i18n import LANGUAGES, Translator
from ..io import load_yaml, utc_now
from ..report.charts import Point, scatter
from ..resources import shipped
from ..runs.rundir import load_run
from ..templating import template_errors
from ..version import __version__
from .board import Board, Cell, Entry, TaskRow, VarietyCell
from .submission import RUN_FILES, RUNS

#: A file naming a folder as a site built here: only such a folder is ever replaced.
MARKER = ".moroccan-eval-site"
#: Files copied as they are (after template overrides) into ``assets/``.
ASSETS = ("style.css", "site.js", "favicon.svg")
#: Quality levels of the "smallest model reaching X on variety V" table.
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
#: Only the site's own files: no CDN, no inline script, no request elsewhere.
CSP = Markup("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
             "base-uri 'none'; form-action 'none'")  # markup: no quote escaped
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "ar": "العربية"}
#: Drop classes of the heatmap, by worsening in percentage points (upper bounds).
DROP_STEPS = (0.0, 2.0, 5.0, 10.0, 20.0)

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def safe_name(name: str) -> str:
    """A file name for a submission id or a suite name: itself when it is a plain slug,
    otherwise a slug of it with a short hash (never ``..``, a slash or a space)."""
    if _SAFE.fullmatch(name) and ".." not in name:
        return name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "x"
    return f"{slug}-{sha256(name.encode()).hexdigest()[:8]}"


def href(path: str) -> str:
    """A relative URL of a site path (each segment percent-encoded)."""
    return "/".join(quote(part, safe="") for part in path.split("/"))


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def signed(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f}"


def quality_class(value: float | None) -> str:
    """``q0`` (0 %) … ``q10`` (100 %): the colour class of a quality."""
    if value is None:
        return "qna"
    return f"q{round(max(0.0, min(1.0, value)) * 10)}"


def worsening(cell: VarietyCell, higher_is_better: bool) -> float | None:
    """How many percentage points worse than the reference (negative: better)."""
    if cell.delta.value is None:
        return None
    return -100 * (cell.delta.value if higher_is_better else -cell.delta.value)


def drop_class(cell: VarietyCell, higher_is_better: bool) -> str:
    """``d0`` (no drop) … ``d5`` (more than 20 points worse) when the delta is
    significant, ``n0`` … ``n5`` (the same colours, faded) when it is not."""
    points = worsening(cell, higher_is_better)
    if points is None:
        return "dna"
    level = sum(points > step for step in DROP_STEPS)
    return f"{'d' if cell.significant else 'n'}{level}"


def worst_variety(task: TaskRow) -> tuple[str, VarietyCell] | None:
    """The variety (not the reference) that loses most against the reference, if any."""
    found = [(points, code, cell) for code, cell in task.varieties.items()
             if code != task.reference
             and (points := worsening(cell, task.higher_is_better)) is not None]
    if not found:
        return None
    _, code, cell = max(found, key=lambda item: item[0])
    return code, cell


def is_web_link(value: str | None) -> bool:
    return bool(value) and re.fullmatch(r"https?://[^\s\"'<>]+", value or "") is not None


# --------------------------------------------------------------------------- messages


def _load_messages(folder: Path, lang: str) -> dict[str, str]:
    path = folder / "i18n" / f"{lang}.yaml"
    if not path.is_file():
        return {}
    stat = path.stat()
    return dict(_parse_messages(path, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=64)
def _parse_messages(path: Path, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    """A message file parsed once per version of it (a build reads each several times)."""
    data = load_yaml(path, "leaderboard messages") or {}
    return tuple((str(k), str(v)) for k, v in data.items())


def messages(lang: str, template_dir: Path | None = None) -> dict[str, str]:
    """The site's messages in ``lang``: ``template_dir/i18n/<lang>.yaml`` over the shipped
    ``<lang>.yaml``, over English (the override's, then the shipped) for missing keys."""
    shipped_dir = shipped("leaderboard", "templates")
    layers = [(shipped_dir, "en")]
    if template_dir is not None:
        layers.append((template_dir, "en"))
    layers.append((shipped_dir, lang))
    if template_dir is not None:
        layers.append((template_dir, lang))
    found: dict[str, str] = {}
    for folder, code in layers:  # later layers win: a translation beats an English override
        found |= _load_messages(folder, code)
    return found


# --------------------------------------------------------------------------- data


#: The columns of the flat results, in order (an empty board still has its header).
RESULT_COLUMNS = (
    "submission", "submitted_model", "organisation", "parameters_b", "size_class", "weights",
    "hosting", "licence", "adapter", "quantisation", "date", "suite_name",
    *ScoreRow.__annotations__, "headline_metric", "task_band", "suite_band")


def result_rows(board: Board) -> list[dict[str, Any]]:
    """One flat row per submission × suite × task × variety × metric: the submission's
    columns, then :func:`moroccan_eval.export.score_rows` of its runs, then the bands."""
    rows: list[dict[str, Any]] = []
    for entry in board.entries:
        info = entry.info
        runs = entry.runs or [load_run(p) for p in sorted((entry.path / RUNS).iterdir())
                              if p.is_dir()]
        for run in sorted(runs, key=lambda r: r.path.name):
            suite = run.manifest.suite.name
            suite_row = entry.suites.get(suite)
            for score in score_rows([run]):
                task = suite_row.tasks.get(score["task"]) if suite_row else None
                rows.append({
                    "submission": entry.ident, "submitted_model": info.model,
                    "organisation": info.organisation, "parameters_b": info.parameters_b,
                    "size_class": entry.size_class, "weights": info.weights,
                    "hosting": info.hosting, "licence": info.licence,
                    "adapter": info.adapter, "quantisation": info.quantisation,
                    "date": info.date.isoformat(), "suite_name": suite,
                    **score,
                    "headline_metric": bool(task and task.metric == score["metric"]),
                    "task_band": task.band if task else None,
                    "suite_band": suite_row.band if suite_row else None,
                })
    return rows


def _cell(cell: Cell) -> dict[str, Any]:
    return {"value": cell.value, "ci": list(cell.ci) if cell.ci else None}


def _task_json(task: TaskRow) -> dict[str, Any]:
    return {
        "metric": task.metric, "higher_is_better": task.higher_is_better,
        "reference": task.reference, "score": _cell(task.score),
        "quality": _cell(task.quality), "band": task.band, "signature": task.signature,
        "varieties": {code: {"score": _cell(v.score), "delta": _cell(v.delta),
                             "significant": v.significant, "n": v.n}
                      for code, v in task.varieties.items()},
    }


def board_json(board: Board, generated: str) -> dict[str, Any]:
    """The whole board as JSON: suites, entries with every task and variety, excluded."""
    return {
        "toolkit_version": board.toolkit_version,
        "generated": generated,
        "suites": {name: {
            "ident": col.ident, "version": col.ref.version, "sha256": col.ref.sha256,
            "license": col.ref.license, "reference_variety": col.ref.reference_variety,
            "validation_status": col.ref.card.validation_status,
            "validation_by_variety": col.ref.card.validation_by_variety,
            "tasks": {task: {"metric": m, "higher_is_better": h, "reference": r}
                      for task, (m, h, r) in col.tasks.items()},
            "varieties": col.varieties,
        } for name, col in board.suites.items()},
        "entries": [{
            "id": entry.ident, "info": entry.info.model_dump(mode="json"),
            "size_class": entry.size_class, "verify_command": entry.verify_command(),
            "files": entry.files,
            "suites": {name: {
                "headline": _cell(row.headline), "band": row.band,
                "cost_per_1k_mad": row.cost_per_1k_mad, "cost_per_1k_usd": row.cost_per_1k_usd,
                "p95_ms": row.p95_ms, "run_id": row.run_id,
                "tasks": {task: _task_json(t) for task, t in row.tasks.items()},
            } for name, row in entry.suites.items()},
        } for entry in board.entries],
        "excluded": board.excluded,
    }


#: The downloads, in the order the downloads page lists them, with their message keys.
DOWNLOADS = (("results.csv.gz", "dl_csv"), ("results.parquet", "dl_parquet"),
             ("results.json.gz", "dl_json"), ("board.json.gz", "dl_board"))


@contextmanager
def _gzipped(path: Path) -> Iterator[TextIO]:
    """A text file gzip-compressed at ``path``; no name or time in the header, so the same
    board gives the same bytes."""
    import gzip
    import io

    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                               compresslevel=6) as binary, \
            io.TextIOWrapper(io.BufferedWriter(binary, 1 << 20), encoding="utf-8",
                             newline="") as text:  # compressed a MB at a time, not a row
        yield text


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with _gzipped(path) as fh:
        write_csv(partial(iter, rows), RESULT_COLUMNS, fh)


def _write_columns_json(rows: list[dict[str, Any]], path: Path) -> None:
    """The rows as JSON by column, not by row: a column's repeated values sit side by
    side, and compress to a quarter of the row layout's size (0.3 MB instead of 1.2 for a
    thousand submissions)."""
    with _gzipped(path) as fh:  # dumps, not dump: dump encodes in Python, a piece at a time
        fh.write(json.dumps({"columns": list(RESULT_COLUMNS),
                             "data": {c: [row[c] for row in rows] for c in RESULT_COLUMNS}},
                            ensure_ascii=False, separators=(",", ":")) + "\n")


def _write_board(board: Board, generated: str, path: Path) -> None:
    with _gzipped(path) as fh:
        fh.write(json.dumps(board_json(board, generated), ensure_ascii=False,
                            separators=(",", ":")) + "\n")


def _data_writers(board: Board, data: Path, generated: str
                  ) -> tuple[list[Callable[[], None]], Callable[[], object]]:
    """What writes the results (a board of a thousand submissions holds ~100,000 rows) as
    gzip-compressed CSV and JSON and the whole board as JSON, independent tasks; and what
    writes them as Parquet, apart: pyarrow starts threads, so it runs in the process that
    forks no worker after it."""
    data.mkdir()
    rows = result_rows(board)
    return [partial(_write_csv, rows, data / "results.csv.gz"),
            partial(_write_columns_json, rows, data / "results.json.gz"),
            partial(_write_board, board, generated, data / "board.json.gz"),
            ], partial(write_parquet, partial(iter, rows), RESULT_COLUMNS,
                       data / "results.parquet")


# --------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class Chart:
    suite: str
    axis: str  # "cost" or "p95"
    file: str  # under charts/
    width: int
    height: int
    front: list[list[Entry]]  # per point of the front, the submissions at it
    missing: list[Entry]


#: Past this many points a chart's legend names only the Pareto front.
LEGEND_MAX = 40


def _chart_note(group: list[Entry]) -> str:
    """What a chart's legend adds to the name at a point: the size, and how many other
    submissions share the point."""
    size = group[0].info.parameters_b
    note = "" if size is None else f" ({size:g} B)"
    return note + (f" +{len(group) - 1}" if len(group) > 1 else "")


def _write_charts(board: Board, folder: Path, names: dict[str, str]) -> dict[str, list[Chart]]:
    """Quality vs cost and vs p95 latency per suite, as SVG files with numbers only (their
    titles and axes are written by each language's page), shared by the three languages."""
    charts: dict[str, list[Chart]] = {}
    for suite in board.suites:
        for axis in ("cost", "p95"):
            front = board.pareto(suite, axis)
            missing = []
            # Submissions at the same point are drawn once (the chart is an image: copies
            # under one dot add only bytes), the legend giving how many share it.
            at: dict[tuple[float, float], list[Entry]] = {}
            for entry, row in board.rows(suite):
                x = row.cost_per_1k_mad if axis == "cost" else row.p95_ms
                if x is None or row.headline.value is None:
                    missing.append(entry)
                    continue
                at.setdefault((x, row.headline.value), []).append(entry)
            points = [Point(names[group[0].ident], x, y,
                            any(e.ident in front for e in group), _chart_note(group))
                      for (x, y), group in at.items()]
            listed = len(points) if len(points) <= LEGEND_MAX else sum(p.on_front
                                                                        for p in points)
            height = max(340, 40 + 15 * listed)  # room for the legend
            svg = scatter(points, x_label="MAD / 1k" if axis == "cost" else "p95 ms",
                          y_label="%", title=suite, x_format="{:,.4g}", height=height,
                          legend_max=LEGEND_MAX, point_titles=False)
            file = f"{safe_name(suite)}-{axis}.svg"
            if svg:
                _write(folder / file, str(svg).replace("<svg ", '<svg font-family='
                                                       '"Noto Sans, sans-serif" ', 1) + "\n")
            charts.setdefault(suite, []).append(Chart(
                suite, axis, file if svg else "", 560, height,
                [group for group in at.values() if any(e.ident in front for e in group)],
                missing))
    return charts


# --------------------------------------------------------------------------- fragments

# NUL-delimited: validation refuses control characters in every free-text field and run
# model name (submission.inert_problem), so submitted text can never forge a placeholder.
_PLACEHOLDER = re.compile("\x00([^\x00\x01]+)(?:\x01([^\x00]*))?\x00")


def _placeholder(key: str, **values: Any) -> Markup:
    """What ``t(key, ...)`` leaves in a page: :class:`TrilingualFiller` fills it in every
    language."""
    encoded = "\x01" + json.dumps(values) if values else ""
    return Markup(f"\x00{key}{encoded}\x00")


#: The placeholder key of a variety's name (not a message: the registry names it).
VARIETY_NAME = "@variety"


class Filler:
    """Fills placeholders in one language; a message is formatted once per distinct
    placeholder (a thousand pages repeat the same few dozen)."""

    def __init__(self, t: Translator, variety_name: Callable[[str], str]):
        self.t, self.variety_name = t, variety_name
        self._done: dict[str, str] = {}

    def message(self, match: re.Match[str]) -> str:
        """The text of one placeholder in this language."""
        found = self._done.get(match[0])
        if found is None:
            values = {k: self(v) if isinstance(v, str) and "\x00" in v else v
                      for k, v in (json.loads(match[2]) if match[2] else {}).items()}
            if match[1] == VARIETY_NAME:
                found = str(escape(self.variety_name(str(values["code"]))))
            else:
                found = str(self.t(match[1], **values))
            self._done[match[0]] = found
        return found

    def __call__(self, fragment: str) -> Markup:
        """``fragment`` with each placeholder replaced by its text in this language."""
        return Markup(_PLACEHOLDER.sub(self.message, fragment))


class TrilingualFiller:
    """Fills placeholders in every language at once, for a page that holds them all: a
    message becomes a ``<span lang=..>`` per language (the stylesheet shows the one the
    address picks), or its text alone when it reads the same in all of them."""

    def __init__(self, fillers: Mapping[str, Filler]):
        self.fillers = fillers
        self._done: dict[str, str] = {}

    def message(self, match: re.Match[str]) -> str:
        found = self._done.get(match[0])
        if found is None:
            texts = {lang: filler.message(match) for lang, filler in self.fillers.items()}
            found = (next(iter(texts.values())) if len(set(texts.values())) == 1 else
                     "".join(f"<span lang={lang}>{text}</span>" for lang, text in texts.items()))
            self._done[match[0]] = found
        return found

    def __call__(self, fragment: str) -> Markup:
        return Markup(_PLACEHOLDER.sub(self.message, fragment))


def heat_ids(board: Board) -> dict[tuple[str, str], str]:
    """``<suite number>-<task number>`` per (suite, task), in the board's order: the ids of
    the per-variety view's tables and, with a submission, of their rows."""
    return {(name, task): f"{i}-{j}" for i, (name, column) in enumerate(board.suites.items(), 1)
            for j, task in enumerate(column.tasks, 1)}


def heat_anchor(key: str, ident: str) -> str:
    """The id of a submission's row in a heatmap (``key`` from :func:`heat_ids`)."""
    return f"r{key}-{safe_name(ident)}"


def _variety_sizes(board: Board) -> dict[tuple[str, str], dict[str, int]]:
    """Items per variety of each (suite, task), as the heatmaps' heads give them."""
    sizes: dict[tuple[str, str], dict[str, int]] = {}
    for name in board.suites:
        for _, row in board.rows(name):
            for task, task_row in row.tasks.items():
                for code, cell in task_row.varieties.items():
                    sizes.setdefault((name, task), {}).setdefault(code, cell.n)
    return sizes


def _environment(template_dir: Path | None) -> Environment:
    loaders = [FileSystemLoader(str(shipped("leaderboard", "templates")))]
    if template_dir is not None:
        loaders.insert(0, FileSystemLoader(str(template_dir)))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters |= {"pct": pct, "signed": signed, "quality_class": quality_class,
                    "drop_class": drop_class, "href": href,
                    "num": lambda v, d=0: "–" if v is None else f"{v:,.{d}f}",
                    "size": lambda v: "" if v is None else f"{v:g}"}
    env.tests["web_link"] = is_web_link
    return env


def _asset(env: Environment, name: str) -> str:
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, f"assets/{name}")
    return source


def _copy_files(board: Board, files: Path) -> None:
    for entry in board.entries:
        target = files / safe_name(entry.ident)
        for rel in entry.files:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(entry.path / rel, target / rel)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def display_names(board: Board) -> dict[str, str]:
    """A name per entry that tells it apart: the model, with its organisation when two
    entries share the model name, with the submission id when that is not enough."""
    def count(names: list[str]) -> dict[str, int]:
        return {n: names.count(n) for n in names}

    models = count([e.info.model for e in board.entries])
    names = {e.ident: e.info.model if models[e.info.model] == 1
             else f"{e.info.model} · {e.info.organisation}" for e in board.entries}
    again = count(list(names.values()))
    return {ident: name if again[name] == 1 else f"{name} · {ident}"
            for ident, name in names.items()}


def _ordered(board: Board) -> list[Entry]:
    """Entries best first: by band then headline of each suite in turn, missing last."""
    def key(entry: Entry) -> tuple[float, ...]:
        parts: list[float] = []
        for name in board.suites:
            row = entry.suites.get(name)
            parts += [row.band if row and row.band is not None else float("inf"),
                      -(row.headline.value if row and row.headline.value is not None else -1)]
        return tuple(parts)
    return sorted(board.entries, key=key)


#: Rows a suite's page lists (the best ones); the overview and heatmaps hold them all.
SUITE_ROWS = 50


#: One page to write: its template, its file, the site's context, the page's path in the
#: site, the page's own context.
PageJob = tuple[Template, Path, dict[str, Any], str, dict[str, Any]]


def _render_job(job: PageJob) -> None:
    template, path, common, page, extra = job
    with template_errors():  # here too: in a worker, the traceback does not come back
        html = template.render(**common, **extra, page=page, root="../" * page.count("/"))
    _write(path, compact(common["fill"](html)))


_INDENT = re.compile(r"\n[ \t]+(?=<)")


def compact(html: str) -> str:
    """``html`` without the templates' indentation before tags (escaped text never holds
    a ``<``, and no ``<pre>`` starts a line with one)."""
    return _INDENT.sub("\n", html)


def _render_share(jobs: list[PageJob], start: int, step: int) -> None:
    for job in jobs[start::step]:
        _render_job(job)


_TASKS: list[Callable[[], None]] = []  # what forked workers run (inherited, never pickled)


def _run_task(index: int) -> None:
    _TASKS[index]()


def _in_parallel(tasks: list[Callable[[], None]], workers: int,
                 meanwhile: Callable[[], object]) -> None:
    """Run ``tasks`` (independent: each writes its own files) in ``workers`` forked
    processes when there are several, and ``meanwhile`` in this one once they are forked:
    a thousand submissions make a thousand pages and 100 MB of data files."""
    global _TASKS
    if workers <= 1:
        for task in tasks:
            task()
        meanwhile()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _TASKS = tasks
    try:  # fork: the workers inherit the board, the templates and the fragments
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            done = [pool.submit(_run_task, k) for k in range(len(tasks))]  # forks them all
            meanwhile()
            for future in done:
                future.result()
    finally:
        _TASKS = []


def _page_jobs(board: Board, out: Path, env: Environment, template_dir: Path | None,
               generated: str, downloads: dict[str, int], files_url: str | None
               ) -> tuple[list[PageJob], list[PageJob]]:
    """The pages to render: every page but the downloads page, then the downloads page, to
    be rendered once the data files (whose sizes they show) exist. Writes the charts."""
    registry = varieties.registry()
    entry_page = {e.ident: f"submissions/{safe_name(e.ident)}.html" for e in board.entries}
    suite_page = {name: f"suites/{safe_name(name)}.html" for name in board.suites}
    files_dir = {e.ident: f"files/{safe_name(e.ident)}" for e in board.entries}
    size_classes = ["small", "medium", "large", "undisclosed"]
    names = display_names(board)
    ordered = _ordered(board)
    charts = _write_charts(board, out / "charts", names)
    ids = heat_ids(board)
    templates = {name: env.get_template(f"{name}.html.j2") for name in (
        "overview", "varieties", "tradeoffs", "downloads", "suite", "submission")}
    translators: dict[str, Translator] = {}
    fillers: dict[str, Filler] = {}
    for lang in LANGUAGES:
        t = translators[lang] = Translator(lang, extra=[{"en": messages("en", template_dir),
                                                         lang: messages(lang, template_dir)}])

        def variety_name(code: str, lang: str = lang) -> str:
            return registry[code].name(lang) if code in registry else code

        fillers[lang] = Filler(t, variety_name)
    common: dict[str, Any] = {
        "t": _placeholder, "variety_name": lambda code: _placeholder(VARIETY_NAME, code=code),
        "translators": translators, "fill": TrilingualFiller(fillers),
        "board": board, "languages": LANGUAGE_NAMES, "csp": CSP, "version": __version__,
        "generated": generated, "entry_page": entry_page, "suite_page": suite_page,
        "files_dir": files_dir, "size_classes": size_classes, "thresholds": THRESHOLDS,
        "drop_steps": DROP_STEPS, "ordered": ordered, "downloads": downloads,
        "download_files": DOWNLOADS, "names": names,
        "files_url": files_url.rstrip("/") if files_url else None,
        "heat_n": _variety_sizes(board), "heat_ids": ids, "heat_anchor": heat_anchor,
        "run_files": RUN_FILES, "suite_rows": SUITE_ROWS, "worst_variety": worst_variety,
    }
    pages: list[tuple[str, str, dict[str, Any]]] = [
        ("index.html", "overview", {}),
        ("varieties.html", "varieties", {}),
        ("tradeoffs.html", "tradeoffs", {"charts": charts}),
    ]
    pages += [(suite_page[name], "suite", {"suite": column})
              for name, column in board.suites.items()]
    pages += [(entry_page[e.ident], "submission", {"entry": e}) for e in board.entries]
    jobs: list[PageJob] = [(templates[template], out / page, common, page, extra)
                           for page, template, extra in pages]
    later: list[PageJob] = [(templates["downloads"], out / "downloads.html", common,
                             "downloads.html", {})]
    return jobs, later


def _write_site(board: Board, out: Path, template_dir: Path | None,
                files_url: str | None, workers: int) -> None:
    env = _environment(template_dir)
    generated = utc_now()
    for name in ASSETS:
        _write(out / "assets" / name, _asset(env, name))
    downloads: dict[str, int] = {}  # filled once the data files exist
    pages, later = _page_jobs(board, out, env, template_dir, generated, downloads, files_url)
    data, parquet = _data_writers(board, out / "data", generated)
    shares = 4 * workers if workers > 1 else 1  # pages in shorter tasks than the data's
    _in_parallel([*data, *(partial(_render_share, pages, k, shares) for k in range(shares))],
                 workers, meanwhile=parquet)
    downloads |= {p.name: p.stat().st_size for p in (out / "data").iterdir()}
    _render_share(later, 0, 1)
    if files_url is None:
        _copy_files(board, out / "files")
    (out / MARKER).write_text(f"moroccan-eval {__version__} leaderboard site\n",
                              encoding="utf-8")


def check_target(out: Path) -> None:
    """Refuse an ``out`` that is not a folder, or a folder holding something else than a
    site built here (it would be replaced)."""
    if out.is_symlink():
        raise OutputError(f"{out}: a symbolic link; give the folder it points to "
                          f"({out.resolve()}) or a new folder")
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; -o names the folder that "
                          "receives the site")
    if (out / MARKER).is_file() or not any(out.iterdir()):
        return
    raise OutputError(f"{out}: a folder that holds something other than a site built by "
                      f"`leaderboard build` (no {MARKER}); it is never replaced: choose a new "
                      "or empty folder")


#: Pages per rendering process below which forking costs more than it saves.
PAGES_PER_WORKER = 300


def build_site(board: Board, out: Path, *, template_dir: Path | None = None,
               files_url: str | None = None, jobs: int | None = None) -> Path:
    """Write the site of ``board`` into ``out`` (see the module docstring); returns the
    path of its ``index.html``. With ``files_url`` (e.g. the leaderboard repository's
    tree), submission pages link to ``<files_url>/<id>/`` instead of copies in the site.
    ``jobs``: processes rendering pages (default: one per CPU, for big boards only)."""
    if files_url is not None and not re.fullmatch(r"https?://[^\s\"'<>]+", files_url):
        raise OutputError(f"--files-url {files_url!r}: not an http(s):// URL")
    out = Path(out)
    check_target(out)
    if template_dir is not None and not template_dir.is_dir():
        raise OutputError(f"--template-dir {template_dir}: not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        pages = len(board.entries) + len(board.suites) + 4
        workers = jobs if jobs is not None else min(os.cpu_count() or 1,
                                                     pages // PAGES_PER_WORKER)
        with collector.rarer(50_000, older=20), template_errors():
            _write_site(board, staging, template_dir, files_url, max(1, workers))
        staging.chmod(0o755)  # mkdtemp makes it private; a site is published
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / "index.html"


def _replace(staging: Path, out: Path) -> None:
    """Put ``staging`` where ``out`` is; the old site goes only once the new one is there."""
    if not out.exists():
        staging.rename(out)
        return
    old = out.parent / f".{out.name}.{os.getpid()}.old"
    out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- preview


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def preview_server(directory: Path, port: int = 8000, *,
                   quiet: bool = False) -> ThreadingHTTPServer:
    """An HTTP server of ``directory`` bound to 127.0.0.1 only (``port`` 0: any free
    port); the caller runs ``serve_forever`` and ``server_close``. ``quiet``: no request
    log on stderr."""
    handler = _QuietHandler if quiet else SimpleHTTPRequestHandler
    server = ThreadingHTTPServer(("127.0.0.1", port),
                                 partial(handler, directory=str(directory)))
    server.daemon_threads = True
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/"

