"""The board: every valid submission's scores, gathered into typed rows the site renders.

Nothing here renders HTML. Scores are the submissions' own ``scores.json`` values, which
validation has just recomputed from raw outputs (:mod:`.validate`).

- A task's **quality** is its first metric oriented so that larger is better (a rate where
  smaller is better counts as ``1 − value``, its interval flipped), as in the report.
- A suite's **headline** is the mean quality over its tasks; its interval is the mean of
  the task intervals' bounds. That interval is conservative (at least as wide as the
  interval of the mean when tasks are independent), so it errs toward shared bands.
- **Rank bands** (:func:`rank_bands`): rows sorted by value; a band's leader is the best row
  not yet banded, and every following row whose interval reaches the leader's joins it.
  Rows in one band are statistically indistinguishable from the leader: they share a band,
  not a rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import collector, varieties
from ..analysis.summary import ModelSummary, Score, TaskSummary, pareto_front, summarize
from ..records import SuiteRef
from ..runs.rundir import Run
from ..version import __version__
from .submission import CHECKSUMS, RUNS, SubmissionInfo, payload_files
from .validate import SubmissionReport, VerdictCache, submission_dirs, validate_all

Interval = tuple[float, float]


@dataclass(frozen=True)
class Cell:
    """One score as the board shows it: value and interval (oriented or not, as named)."""

    value: float | None
    ci: Interval | None = None

    @property
    def bounds(self) -> Interval | None:
        if self.value is None:
            return None
        return self.ci or (self.value, self.value)


@dataclass(frozen=True)
class VarietyCell:
    """A task's first metric on one variety, and its paired delta to the reference."""

    score: Cell
    delta: Cell
    significant: bool
    n: int


@dataclass
class TaskRow:
    """One submission on one task."""

    task: str
    metric: str
    higher_is_better: bool
    reference: str
    score: Cell  # the metric as reported
    quality: Cell  # oriented: larger is better
    varieties: dict[str, VarietyCell]
    signature: str
    band: int | None = None


@dataclass
class SuiteRow:
    """One submission on one suite: the headline and each task."""

    suite: str
    ident: str
    headline: Cell
    tasks: dict[str, TaskRow]
    cost_per_1k_mad: float | None
    cost_per_1k_usd: float | None
    p95_ms: float | None
    run_id: str
    run_dir: str = ""  # the run's folder under the submission's runs/
    band: int | None = None


@dataclass
class Entry:
    """A submission on the board."""

    ident: str
    info: SubmissionInfo
    suites: dict[str, SuiteRow]
    path: Path  # the submission folder
    files: list[str]  # its files, relative to ``path``
    runs: list[Run] = field(default_factory=list)  # as validated (scores, manifests)

    @property
    def run_dirs(self) -> list[str]:
        """The names of its run folders, in order."""
        return sorted({rel.split("/")[1] for rel in self.files if rel.startswith(f"{RUNS}/")})

    @property
    def size_class(self) -> str:
        """``small`` (< 4B), ``medium`` (< 30B), ``large`` or ``undisclosed``."""
        size = self.info.parameters_b
        if size is None:
            return "undisclosed"
        return "small" if size < 4 else "medium" if size < 30 else "large"

    def verify_command(self) -> str:
        """What re-verifies this row offline, from a clone of the leaderboard repository."""
        return f"moroccan-eval leaderboard validate leaderboard/submissions/{self.ident}"


@dataclass
class SuiteColumn:
    """A suite on the board: what its rows were measured on."""

    name: str
    ident: str
    ref: SuiteRef
    tasks: dict[str, tuple[str, bool, str]]  # task -> (metric, higher is better, reference)
    varieties: list[str]


@dataclass
class Board:
    """Everything the site shows."""

    entries: list[Entry]
    suites: dict[str, SuiteColumn]
    toolkit_version: str = __version__
    excluded: dict[str, str] = field(default_factory=dict)  # submission -> why

    def rows(self, suite: str) -> list[tuple[Entry, SuiteRow]]:
        """The entries that hold ``suite``, best headline first."""
        found = [(e, e.suites[suite]) for e in self.entries if suite in e.suites]
        return sorted(found, key=lambda pair: -(pair[1].headline.value or -1.0))

    def pareto(self, suite: str, axis: str) -> set[str]:
        """Submissions on the quality vs ``axis`` (``cost`` or ``p95``) Pareto front."""
        points, names = [], []
        for entry, row in self.rows(suite):
            x = row.cost_per_1k_mad if axis == "cost" else row.p95_ms
            if x is not None and row.headline.value is not None:
                points.append((x, row.headline.value))
                names.append(entry.ident)
        return {names[i] for i in pareto_front(points)}

    def smallest_above(self, suite: str, variety: str, threshold: float) -> Entry | None:
        """The smallest disclosed-size submission whose every task of ``suite`` reaches
        ``threshold`` quality on ``variety``."""
        return self.smallest_table(suite, [variety], [threshold])[(variety, threshold)]

    def smallest_table(self, suite: str, codes: Sequence[str], thresholds: Sequence[float]
                       ) -> dict[tuple[str, float], Entry | None]:
        """:meth:`smallest_above` for every variety and threshold in one pass: entries are
        taken smallest first, and each (variety, threshold) keeps the first that reaches
        it (a board of a thousand rows, five levels, seven varieties)."""
        found: dict[tuple[str, float], Entry | None] = {
            (code, level): None for code in codes for level in thresholds}
        sized = sorted(((e, row) for e, row in self.rows(suite)
                        if e.info.parameters_b is not None and row.tasks),
                       key=lambda pair: (pair[0].info.parameters_b or 0.0, pair[0].ident))
        for entry, row in sized:
            for code in codes:
                qualities = [_variety_quality(task, code) for task in row.tasks.values()]
                if any(q is None for q in qualities):
                    continue
                worst = min(q for q in qualities if q is not None)
                for level in thresholds:
                    if found[(code, level)] is None and worst >= level:
                        found[(code, level)] = entry
        return found


def _variety_quality(task: TaskRow, variety: str) -> float | None:
    cell = task.varieties.get(variety)
    if cell is None or cell.score.value is None:
        return None
    return cell.score.value if task.higher_is_better else 1.0 - cell.score.value


def rank_bands(cells: Sequence[Cell]) -> list[int | None]:
    """A band per cell (1 = best; ``None`` without a value): see the module docstring.
    Cells are larger-is-better; order of the result follows the input."""
    order = sorted((i for i, c in enumerate(cells) if c.bounds is not None),
                   key=lambda i: -(cells[i].value or 0.0))
    bands: list[int | None] = [None] * len(cells)
    band, leader_low = 0, float("inf")
    for i in order:
        low, high = cells[i].bounds or (0.0, 0.0)
        if band == 0 or high < leader_low:
            band, leader_low = band + 1, low
        bands[i] = band
    return bands


def _oriented(score: Score, higher_is_better: bool) -> Cell:
    if score.value is None or higher_is_better:
        return Cell(score.value, score.ci)
    ci = (1.0 - score.ci[1], 1.0 - score.ci[0]) if score.ci else None
    return Cell(1.0 - score.value, ci)


def _task_row(task: TaskSummary) -> TaskRow:
    return TaskRow(
        task=task.task, metric=task.metric, higher_is_better=task.higher_is_better,
        reference=task.reference, score=Cell(task.overall.value, task.overall.ci),
        quality=_oriented(task.overall, task.higher_is_better),
        varieties={code: VarietyCell(
            score=Cell(s.value, s.ci), delta=Cell(s.delta, s.delta_ci),
            significant=s.significant, n=s.n) for code, s in task.varieties.items()},
        signature=task.signature)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _suite_row(name: str, tasks: list[TaskSummary], model: ModelSummary) -> SuiteRow:
    rows = {t.task: _task_row(t) for t in tasks}
    qualities = [r.quality for r in rows.values()]
    known = [q for q in qualities if q.bounds is not None]
    headline = Cell(None)
    if known and len(known) == len(qualities):
        headline = Cell(round(_mean([q.value or 0.0 for q in known]), 6),
                        (round(_mean([q.bounds[0] for q in known if q.bounds]), 6),
                         round(_mean([q.bounds[1] for q in known if q.bounds]), 6)))
    on_suite = ModelSummary(model.name, model.info, tasks)  # the model on this suite only
    return SuiteRow(
        suite=name, ident=tasks[0].suite, headline=headline, tasks=rows,
        cost_per_1k_mad=on_suite.cost_per_1k("MAD"),
        cost_per_1k_usd=on_suite.cost_per_1k("USD"),
        p95_ms=on_suite.latency("p95_ms"),
        run_id=tasks[0].run.manifest.run_id, run_dir=tasks[0].run.path.name)


def build_board(submissions: Sequence[SubmissionReport],
                excluded: dict[str, str] | None = None) -> Board:
    """The board of valid submissions (validated reports with their info and runs)."""
    entries: list[Entry] = []
    columns: dict[str, SuiteColumn] = {}
    for report in submissions:
        if report.info is None:
            raise ValueError(f"{report.ident}: not a validated submission")
        suites: dict[str, SuiteRow] = {}
        for model in summarize(report.runs):
            by_suite: dict[str, list[TaskSummary]] = {}
            for task in model.tasks:
                by_suite.setdefault(task.run.manifest.suite.name, []).append(task)
            for name, tasks in by_suite.items():
                suites[name] = _suite_row(name, tasks, model)
                ref = tasks[0].run.manifest.suite
                column = columns.setdefault(name, SuiteColumn(name, ref.ident, ref, {}, []))
                for task in tasks:
                    column.tasks.setdefault(task.task, (task.metric, task.higher_is_better,
                                                        task.reference))
                    column.varieties += [v for v in task.varieties if v not in column.varieties]
        files = [CHECKSUMS, *(rel.as_posix() for rel in payload_files(report.path))]
        entries.append(Entry(report.ident, report.info, suites, report.path, files,
                             list(report.runs)))
    order = {code: i for i, code in enumerate(varieties.registry())}
    for column in columns.values():
        column.varieties.sort(key=lambda code: order.get(code, len(order)))
    board = Board(entries, dict(sorted(columns.items())), excluded=excluded or {})
    _assign_bands(board)
    return board


def _assign_bands(board: Board) -> None:
    for name, column in board.suites.items():
        rows = [row for _, row in board.rows(name)]
        for row, band in zip(rows, rank_bands([r.headline for r in rows]), strict=True):
            row.band = band
        for task in column.tasks:
            task_rows = [r.tasks[task] for r in rows if task in r.tasks]
            for task_row, band in zip(task_rows, rank_bands([t.quality for t in task_rows]),
                                      strict=True):
                task_row.band = band


def board_from(paths: Sequence[Path], verdicts: VerdictCache | None = None,
               jobs: int | None = None) -> tuple[Board, list[SubmissionReport]]:
    """Validate every submission under ``paths`` (in ``jobs`` processes) and build the
    board of the valid ones; the others are listed in ``Board.excluded`` with their first
    failed check."""
    # a board of 1,000 submissions holds millions of live objects, which every collection
    # walked again: half of a rebuild's time went to it (17.6 s -> 11.9-13.6 s). Forked
    # workers inherit the setting.
    with collector.rarer(50_000, older=20):
        return _board_from(paths, verdicts, jobs)


def _board_from(paths: Sequence[Path], verdicts: VerdictCache | None,
                jobs: int | None) -> tuple[Board, list[SubmissionReport]]:
    reports = validate_all(submission_dirs(paths), verdicts, jobs)
    valid, excluded = [], {}
    for report in reports:
        if report.ok:
            valid.append(report)
        else:
            failed = next(c for c in report.checks if not c.ok)
            excluded[report.ident] = f"{failed.name}: {failed.detail}"
    return build_board(valid, excluded), reports
