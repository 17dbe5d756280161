"""Statistics: the one bootstrap engine every metric goes through
(:mod:`.bootstrap`) and sacrebleu's sentence statistics (:mod:`.sacrebleu_stats`)."""

from __future__ import annotations

from .bootstrap import DEFAULT_BOOTSTRAP, MetricDef, stable_id

__all__ = ["DEFAULT_BOOTSTRAP", "MetricDef", "stable_id"]
