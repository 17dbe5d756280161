"""moroccan-eval: evaluate language models on the languages Morocco uses.

The public API is small::

    import moroccan_eval as me

    suite = me.load_suite("support-intents")
    model = me.load_model("char-ngram")            # or a path to a model YAML
    [result] = me.run(me.RunOptions(suite=suite, out_dir=Path("runs")), [model])
    print(result.scores.tasks["intents"].overall.metrics["accuracy"].value)

Names are imported lazily so that ``moroccan-eval --help`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

_EXPORTS = {
    "Adapter": "moroccan_eval.adapters.base",
    "ModelSpec": "moroccan_eval.adapters.base",
    "Request": "moroccan_eval.adapters.base",
    "Response": "moroccan_eval.adapters.base",
    "TaskContext": "moroccan_eval.adapters.base",
    "load_model": "moroccan_eval.adapters",
    "MoroccanEvalError": "moroccan_eval.errors",
    "load_suite": "moroccan_eval.suites.loader",
    "Suite": "moroccan_eval.suites.loader",
    "RunOptions": "moroccan_eval.runs.runner",
    "RunResult": "moroccan_eval.runs.runner",
    "run": "moroccan_eval.runs.runner",
    "Run": "moroccan_eval.runs.rundir",
    "load_run": "moroccan_eval.runs.rundir",
    "build_report": "moroccan_eval.report.build",
    "Constraints": "moroccan_eval.analysis.recommendation",
    "recommend": "moroccan_eval.analysis.recommendation",
    "summarize": "moroccan_eval.analysis.summary",
    "compare_runs": "moroccan_eval.analysis.compare",
    "verify_run": "moroccan_eval.verify",
    "TaskType": "moroccan_eval.tasks.base",
    "MetricDef": "moroccan_eval.tasks.base",
    "AnswerParser": "moroccan_eval.tasks.base",
    "PredictionRecord": "moroccan_eval.records",
    "Manifest": "moroccan_eval.records",
    "RunScores": "moroccan_eval.records",
    "TaskScores": "moroccan_eval.records",
    "VarietyScore": "moroccan_eval.records",
    "Signature": "moroccan_eval.records",
}

__all__ = [
    "Adapter",
    "AnswerParser",
    "Constraints",
    "Manifest",
    "MetricDef",
    "ModelSpec",
    "MoroccanEvalError",
    "PredictionRecord",
    "Request",
    "Response",
    "Run",
    "RunOptions",
    "RunResult",
    "RunScores",
    "Signature",
    "Suite",
    "TaskContext",
    "TaskScores",
    "TaskType",
    "VarietyScore",
    "__version__",
    "build_report",
    "compare_runs",
    "load_model",
    "load_run",
    "load_suite",
    "recommend",
    "run",
    "summarize",
    "verify_run",
]

if TYPE_CHECKING:
    from .adapters import load_model
    from .adapters.base import Adapter, ModelSpec, Request, Response, TaskContext
    from .analysis.compare import compare_runs
    from .analysis.recommendation import Constraints, recommend
    from .analysis.summary import summarize
    from .errors import MoroccanEvalError
    from .records import (
        Manifest,
        PredictionRecord,
        RunScores,
        Signature,
        TaskScores,
        VarietyScore,
    )
    from .report.build import build_report
    from .runs.rundir import Run, load_run
    from .runs.runner import RunOptions, RunResult, run
    from .suites.loader import Suite, load_suite
    from .tasks.base import AnswerParser, MetricDef, TaskType
    from .verify import verify_run


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'moroccan_eval' has no attribute {name!r}")
