"""The demo: every task type's offline baselines on the shipped suites, and one report.

What ``moroccan-eval demo`` runs; each task type names its own baselines
(``TaskType.baselines``), so a new type joins the demo by declaring them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .adapters import load_model
from .report.build import build_report, write_report
from .runs.rundir import Run, load_run
from .runs.runner import RunOptions, RunResult
from .runs.runner import run as run_models
from .suites.loader import load_suite, suite_dirs

TITLE = "moroccan-eval demo: offline baselines"


def run_demo(out_dir: Path, suite_names: Sequence[str] = (), *, limit: int | None = None,
             on_result: Callable[[RunResult], None] | None = None) -> Path:
    """Run the baselines of every task of the suites (default: all shipped suites) into
    ``out_dir/runs`` and write ``out_dir/report.html``; returns the report's path."""
    runs: list[Run] = []
    for name in suite_names or list(suite_dirs()):
        suite = load_suite(name)
        by_type: dict[str, list[str]] = {}
        for task_name, task in suite.tasks.items():
            by_type.setdefault(task.spec.type, []).append(task_name)
        for task_names in by_type.values():
            baselines = suite.tasks[task_names[0]].task_type.baselines
            if not baselines:
                continue
            options = RunOptions(suite=suite, out_dir=out_dir / "runs", tasks=task_names,
                                 limit=limit, progress=False)
            for result in run_models(options, [load_model(m) for m in baselines]):
                if on_result is not None:
                    on_result(result)
                runs.append(load_run(result.path))
    report = out_dir / "report.html"
    write_report(report, build_report(runs, title=TITLE))
    return report
