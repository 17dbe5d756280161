"""Builds the self-contained, decision-grade HTML report from run directories.

Templates live in ``reports/templates`` (Jinja2, autoescaped); one partial per section
(``_summary.html.j2``, ``_heatmap.html.j2`` ...). A user can override any of them by
passing ``template_dir``: files there take precedence over the shipped ones. Messages come
from ``reports/i18n/<lang>.yaml``. The page makes no network request (a Content Security
Policy forbids it), charts are inline SVG, and the small inline script only adds sorting and
filtering: everything reads the same with JavaScript off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from . import __version__, varieties
from .analysis import ModelSummary, Score, TaskSummary, pareto_front, summarize
from .charts import Point, scatter
from .costing import Currency
from .errors import MoroccanEvalError
from .i18n import Translator
from .io import write_atomic
from .recommendation import Constraints, Recommendation
from .recommendation import recommend as recommend_model
from .resources import shipped
from .results import Run, utc_now
from .scoring import HIGHER_IS_BETTER
from .toolcalls import expected_arguments

#: Items listed per variety in the error analysis, and examples per failure kind.
WORST_ITEMS = 5
EXAMPLES = 3
#: Longest model output or input quoted in the report; the rest is cut with an ellipsis.
QUOTE_CHARS = 240
UNPARSED = "∅"  # confusion-matrix column of answers that name no label (or failed)


@dataclass
class TaskView:
    """One task of one suite across models: what the task sections show."""

    key: tuple[str, str]
    type: str
    metric: str
    metrics: list[str]
    higher_is_better: bool
    reference: str
    labels: list[str]
    varieties: list[str]
    rows: list[tuple[ModelSummary, TaskSummary]] = field(default_factory=list)
    confusion: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)
    worst: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    hidden_inputs: bool = False

    def best_per_variety(self) -> dict[str, tuple[str, float, float | None]]:
        """Per variety: the best model, its quality (larger is better) and its metric value
        as reported (an attack or error rate stays a rate)."""
        best: dict[str, tuple[str, float, float | None]] = {}
        for model, task in self.rows:
            for code, score in task.varieties.items():
                quality = task.quality(score)
                if quality is not None and (code not in best or quality > best[code][1]):
                    best[code] = (model.name, quality, score.value)
        return best


def _task_views(models: Sequence[ModelSummary]) -> list[TaskView]:
    views: dict[tuple[str, str], TaskView] = {}
    order = list(varieties.registry())
    for model in models:
        for task in model.tasks:
            spec = task.run.manifest["tasks"][task.task]["spec"]
            view = views.setdefault(task.key, TaskView(
                key=task.key, type=task.type, metric=task.metric, metrics=task.metrics,
                higher_is_better=task.higher_is_better, reference=task.reference,
                labels=list(spec["labels"]), varieties=[],
            ))
            view.rows.append((model, task))
            view.varieties += [c for c in task.varieties if c not in view.varieties]
    for view in views.values():
        view.varieties.sort(key=lambda c: order.index(c) if c in order else len(order))
        view.rows.sort(key=lambda row: -(row[1].quality(row[1].overall) or 0.0))
    return list(views.values())


def _quote(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def _show_calls(calls: Sequence[dict[str, Any]]) -> str:
    """Tool calls as ``name(arg=value, ...)``."""
    shown = [f"{c.get('name')}(" + ", ".join(
        f"{k}={v}" for k, v in expected_arguments(c).items()) + ")" for c in calls]
    return _quote("; ".join(shown) or "(no tool call)")


def _show_reference(reference: Any) -> str:
    """A reference as the report shows it (QA answer keys as their facts, expected tool
    calls as calls)."""
    if isinstance(reference, dict) and "calls" in reference:
        return _show_calls(reference["calls"])
    if isinstance(reference, dict):
        facts = reference.get("facts") or []
        return ", ".join(map(str, facts)) if facts else "(should decline)"
    return _quote(reference)


@dataclass
class _Tally:
    """What the report collects about one model on one task while reading predictions."""

    view: TaskView
    model: str
    hidden: bool
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: dict[str, Any] = field(default_factory=lambda: {
        "unparsed": 0, "errors": 0, "unparsed_examples": [], "error_kinds": Counter()})


def _read_predictions(views: list[TaskView]) -> None:
    """One pass over each run's predictions file: confusion matrices, the items most models
    got wrong per variety, and examples of parse failures and API errors."""
    by_run: dict[Path, tuple[Run, dict[str, _Tally]]] = {}
    items: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)  # per view
    for view in views:
        for model, task in view.rows:
            hidden = bool(task.run.manifest.get("allow_unanonymized"))
            view.hidden_inputs |= hidden
            tallies = by_run.setdefault(task.run.path, (task.run, {}))[1]
            tallies[task.task] = _Tally(view, model.name, hidden)
    for run, tallies in by_run.values():
        for rec in run.predictions():
            tally = tallies.get(rec["task"])
            if tally is None or rec.get("skipped"):
                continue
            error, parsed = rec.get("error"), rec.get("parsed")
            if tally.view.type == "classification":
                tally.confusion[(rec["reference"], parsed or UNPARSED)] += 1
            failures = tally.failures
            if error:
                failures["errors"] += 1
                failures["error_kinds"][str(error).split(":")[0][:80]] += 1
            elif parsed is None:
                failures["unparsed"] += 1
                if len(failures["unparsed_examples"]) < EXAMPLES:
                    failures["unparsed_examples"].append(_quote(rec.get("output")))
            item = items[tally.view.key].setdefault(rec["id"], {
                "id": rec["id"], "variety": rec["variety"],
                "reference": _show_reference(rec["reference"]),
                "input": None if tally.hidden else _quote(" · ".join(
                    v for v in (rec.get("fields") or {}).values() if isinstance(v, str) and v)),
                "wrong": [], "n_models": 0,
            })
            item["n_models"] += 1
            if not rec.get("correct"):
                calls = parsed.get("calls") if isinstance(parsed, dict) and tally.view.type in (
                    "tool_call", "injection") else None
                answer = error or (_show_calls(calls) if calls is not None else None) \
                    or rec.get("output") or ""
                item["wrong"].append({"model": tally.model, "answer": _quote(answer),
                                      "parsed": None if calls is not None else parsed,
                                      "error": bool(error)})
    for _, tallies in by_run.values():
        for tally in tallies.values():
            tally.failures["error_kinds"] = tally.failures["error_kinds"].most_common(EXAMPLES)
            tally.view.confusion[tally.model] = dict(tally.confusion)
            tally.view.failures[tally.model] = tally.failures
    for view in views:
        by_variety: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in items[view.key].values():
            if item["wrong"]:
                by_variety[item["variety"]].append(item)
        view.worst = {
            code: sorted(by_variety[code], key=lambda i: (-len(i["wrong"]), i["id"]))[:WORST_ITEMS]
            for code in view.varieties if by_variety.get(code)
        }


def _charts(models: Sequence[ModelSummary], t: Translator, currency: Currency) -> list[Any]:
    charts = []
    for key, axis in (("cost", "chart_x_cost"), ("p95", "chart_x_p95")):
        rows = []
        for model in models:
            quality = model.quality()
            x = model.cost_per_1k(currency) if key == "cost" else model.latency("p95_ms")
            if quality is not None and x is not None:
                rows.append((model, x, quality))
        front = pareto_front([(x, q) for _, x, q in rows])
        points = [Point(m.name, x, q, i in front,
                        "" if m.parameters_b is None else f" ({m.parameters_b:g} B)")
                  for i, (m, x, q) in enumerate(rows)]
        charts.append({
            "title": t(f"chart_title_{key}"),
            "svg": scatter(points, x_label=t(axis, currency=currency), y_label=t("chart_y"),
                           title=t(f"chart_title_{key}")),
            "front": [p.label for p in points if p.on_front],
            "missing": [m.name for m in models if m.name not in {p.label for p in points}],
        })
    return charts


@dataclass(frozen=True)
class Degradation:
    model: str
    task: str
    variety: str
    reference: str
    score: Score
    drop: float  # the delta oriented so that negative is worse


def _degradations(views: Sequence[TaskView], limit: int = 8) -> list[Degradation]:
    """The largest drops against the reference variety, significant ones first."""
    found = []
    for view in views:
        for model, task in view.rows:
            for code, score in task.varieties.items():
                if score.delta is None:
                    continue
                drop = score.delta if task.higher_is_better else -score.delta
                if drop < 0:
                    found.append(Degradation(model.name, view.key[1], code, view.reference,
                                             score, drop))
    found.sort(key=lambda d: (not d.score.significant, d.drop))
    return found[:limit]


def _robustness(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """For every perturbed run, the paired change of each task's first metric against the
    clean run of the same model, suite and split."""
    from .analysis import compare_runs

    def key(run: Run) -> tuple[str, str, str]:
        m = run.manifest
        return (m["model"]["spec"]["name"], m["suite"]["ident"], m["selection"]["split"])

    clean = {key(r): r for r in runs if not r.manifest["selection"].get("perturb")}
    rows = []
    for run in runs:
        perturbation = run.manifest["selection"].get("perturb")
        base = clean.get(key(run))
        if not perturbation or base is None:
            continue
        try:
            diffs = compare_runs(base, run)
        except MoroccanEvalError:
            continue  # no shared item to pair
        for task in sorted({d.task for d in diffs}):
            metric = base.manifest["tasks"][task]["spec"]["metrics"][0]
            cells = {d.variety: d for d in diffs if d.task == task and d.metric == metric}
            rows.append({"model": key(run)[0], "perturbation": perturbation, "task": task,
                         "metric": metric, "cells": cells})
    return rows


def heat(value: float | None) -> str:
    """Background colour for a quality in [0, 1]: red (0) through amber to green (1)."""
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
    # sort keys: a metric value turned into a quality (larger is better), '' when unknown
    env.filters["oriented"] = lambda v, higher=True: "" if v is None else (v if higher else 1 - v)
    env.globals["higher_is_better"] = lambda metric: HIGHER_IS_BETTER.get(metric, True)
    return env


def build_report(
    runs: Sequence[Run],
    *,
    title: str | None = None,
    lang: str = "en",
    reference: str | None = None,
    constraints: Constraints | None = None,
    template_dir: Path | None = None,
) -> str:
    """Render the report of ``runs`` to an HTML string.

    ``reference`` recomputes every paired delta against that variety; ``constraints``
    drive the recommendation block (the same logic as ``moroccan-eval recommend``).
    """
    t = Translator(lang)
    constraints = constraints or Constraints()
    models = summarize(runs, reference)
    views = _task_views(models)
    _read_predictions(views)
    recommendation: Recommendation = recommend_model(models, constraints)
    suites: dict[str, dict[str, Any]] = {}
    for run in runs:
        suites.setdefault(run.manifest["suite"]["ident"], run.manifest["suite"])
    registry = varieties.registry()
    return _environment(template_dir).get_template("report.html.j2").render(
        t=t,
        lang=lang,
        direction=t.direction,
        title=title or t("default_title"),
        generated=utc_now(),
        version=__version__,
        models=models,
        views=views,
        recommendation=recommendation,
        degradations=_degradations(views),
        charts=_charts(models, t, constraints.currency),
        currency=constraints.currency,
        runs=runs,
        suites=suites,
        unanonymized=[r for r in runs if r.manifest.get("allow_unanonymized")],
        tasks_differ=len({frozenset(t.key for t in m.tasks) for m in models}) > 1,
        robustness=_robustness(runs),
        variety_name=lambda code: registry[code].name(lang) if code in registry else code,
        unparsed=UNPARSED,
    )


def write_report(path: Path, html: str) -> None:
    """Atomically write the report file."""
    write_atomic(path, html)


# --------------------------------------------------------------------------- PDF


def find_chromium() -> str | None:
    """The Chromium binary: ``$MOROCCAN_EVAL_CHROMIUM`` or the first one on ``PATH``."""
    configured = os.environ.get("MOROCCAN_EVAL_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render_pdf(html_path: Path, pdf_path: Path, *, timeout_s: float = 120) -> None:
    """Print the HTML report to an A4 PDF with headless Chromium."""
    binary = find_chromium()
    if binary is None:
        raise MoroccanEvalError(
            "--pdf needs Chromium: install it (Debian: apt-get install chromium) or set "
            f"MOROCCAN_EVAL_CHROMIUM to its path; the HTML report {html_path} was written")
    tmp = pdf_path.with_name(f".{pdf_path.name}.tmp")
    with tempfile.TemporaryDirectory(prefix="moroccan-eval-chromium-") as profile:
        command = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--no-pdf-header-footer",
            f"--print-to-pdf={tmp}", html_path.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise MoroccanEvalError(f"Chromium did not print {html_path} within "
                                    f"{timeout_s:g} s; the HTML report was written") from None
    if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise MoroccanEvalError(f"Chromium could not print the PDF (exit {done.returncode}) "
                                f"{detail[0]}; the HTML report {html_path} was written")
    tmp.replace(pdf_path)
