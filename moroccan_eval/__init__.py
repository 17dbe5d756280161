"""moroccan-eval: evaluate language models on the languages Morocco uses.

The public API is small::

    import moroccan_eval as me

    suite = me.load_suite("support-intents")
    model = me.load_model("char-ngram")            # or a path to a model YAML
    [result] = me.run(me.RunOptions(suite=suite, out_dir=Path("runs")), [model])
    print(result.scores["tasks"]["intents"]["overall"]["accuracy"])

Names are imported lazily so that ``moroccan-eval --help`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Adapter": "moroccan_eval.adapters.base",
    "ModelSpec": "moroccan_eval.adapters.base",
    "Request": "moroccan_eval.adapters.base",
    "Response": "moroccan_eval.adapters.base",
    "TaskContext": "moroccan_eval.adapters.base",
    "load_model": "moroccan_eval.adapters",
    "MoroccanEvalError": "moroccan_eval.errors",
    "load_suite": "moroccan_eval.suites",
    "Suite": "moroccan_eval.suites",
    "RunOptions": "moroccan_eval.runner",
    "RunResult": "moroccan_eval.runner",
    "run": "moroccan_eval.runner",
    "load_run": "moroccan_eval.results",
    "build_report": "moroccan_eval.report",
    "Constraints": "moroccan_eval.recommendation",
    "recommend": "moroccan_eval.recommendation",
    "summarize": "moroccan_eval.analysis",
    "verify_run": "moroccan_eval.verify",
}

__all__ = [
    "Adapter",
    "Constraints",
    "ModelSpec",
    "MoroccanEvalError",
    "Request",
    "Response",
    "RunOptions",
    "RunResult",
    "Suite",
    "TaskContext",
    "__version__",
    "build_report",
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
    from .analysis import summarize
    from .errors import MoroccanEvalError
    from .recommendation import Constraints, recommend
    from .report import build_report
    from .results import load_run
    from .runner import RunOptions, RunResult, run
    from .suites import Suite, load_suite
    from .verify import verify_run


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'moroccan_eval' has no attribute {name!r}")
