"""Builds the self-contained, decision-grade HTML report from run directories.

Templates live in ``reports/templates`` (Jinja2, autoescaped); one partial per section
(``_summary.html.j2``, ``_heatmap.html.j2`` ...) and one fragment per task type (declared
by the type, served as ``task_types/<type>.html.j2``). A user can override any of them by
passing ``template_dir``: files there take precedence over the shipped ones. Messages come
from ``reports/i18n/<lang>.yaml`` and from the task types. The page makes no network
request (a Content Security Policy forbids it), charts are inline SVG, and the small inline
script only adds sorting and filtering: everything reads the same with JavaScript off.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    DictLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)

from .. import varieties
from ..analysis.compare import noisy_rows, pair_noisy_runs
from ..analysis.recommendation import Constraints, recommend
from ..analysis.summary import summarize, tasks_differ
from ..i18n import Translator
from ..io import utc_now, write_atomic
from ..records import SuiteRef
from ..resources import shipped
from ..runs.rundir import Run
from ..suites.audit import MESSAGES as AUDIT_MESSAGES
from ..suites.audit import report_summaries
from ..tasks.base import TaskType
from ..templating import template_errors
from ..version import __version__
from .charts import tradeoff_charts
from .views import degradations, fragment_name, read_predictions, robustness, task_views


def heat(value: float | None) -> str:
    """Background colour for a quality in [0, 1]: red (0) through amber to green (1)."""
    if value is None:
        return "#eeeeee"
    hue = round(max(0.0, min(1.0, value)) * 120)
    return f"hsl({hue}, 70%, 85%)"


def _environment(template_dir: Path | None, task_types: Sequence[TaskType]) -> Environment:
    fragments = {fragment_name(tt): tt.report_fragment for tt in task_types if tt.report_fragment}
    loaders = [FileSystemLoader(str(shipped("reports", "templates"))), DictLoader(fragments)]
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
    A ``test_noisy`` run given with the clean ``test`` run of the same model and suite is
    no model of its own: it is the clean row's noisy row (score and paired change).
    """
    constraints = constraints or Constraints()
    summarized, noisy_pairs = pair_noisy_runs(runs)
    noisy = {(row.suite, row.task, row.model): row for row in noisy_rows(noisy_pairs)}
    models = summarize(summarized, reference)
    views = task_views(models)
    read_predictions(views)
    task_types = list({view.type: view.task_type for view in views}.values())
    t = Translator(lang, extra=[tt.messages for tt in task_types] + [AUDIT_MESSAGES])
    suites: dict[str, SuiteRef] = {}
    for run in runs:
        suites.setdefault(run.manifest.suite.ident, run.manifest.suite)
    audits = report_summaries({ident: (ref.name, ref.sha256) for ident, ref in suites.items()})
    registry = varieties.registry()
    context = dict(
        t=t,
        lang=lang,
        direction=t.direction,
        title=title or t("default_title"),
        generated=utc_now(),
        version=__version__,
        models=models,
        views=views,
        recommendation=recommend(models, constraints),
        degradations=degradations(views),
        charts=tradeoff_charts(models, t, constraints.currency),
        currency=constraints.currency,
        runs=runs,
        suites=suites,
        audits=audits,
        unanonymized=[r for r in runs if r.manifest.allow_unanonymized],
        tasks_differ=tasks_differ(models),
        robustness=robustness(runs),
        noisy=noisy,
        noisy_splits=sorted({row.split for row in noisy.values()}),
        variety_name=lambda code: registry[code].name(lang) if code in registry else code,
    )
    with template_errors():
        template = _environment(template_dir, task_types).get_template("report.html.j2")
        return template.render(**context)


def write_report(path: Path, html: str) -> None:
    """Atomically write the report file."""
    write_atomic(path, html)
