"""``translation``: Darija, Amazigh, French, MSA and English translation and
transliteration, scored with sacrebleu's chrF++ and BLEU.

Sentence statistics add up, so a bootstrap resample of a corpus score is a weighted sum of
them (see :mod:`moroccan_eval.stats.sacrebleu_stats`). Scores are per source variety.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .. import varieties
from ..io import JSONObject
from ..records import PredictionRecord
from ..stats import sacrebleu_stats
from ..stats.sacrebleu_stats import SacrebleuMetric
from ..suites.schema import Item
from .base import AuditView, ImportRequest, MetricDef, TaskType
from .text_pairs import TextPairs, TextParser, check_reference_text, text_pair

if TYPE_CHECKING:  # numpy is imported where scores are computed, not at start-up
    import numpy as np


def corpus_metric(name: str, metric: SacrebleuMetric,
                  texts: TextPairs = text_pair) -> MetricDef:
    """A sacrebleu corpus metric over each record's (answer, reference) texts."""

    def statistics(record: PredictionRecord) -> list[float]:
        return sacrebleu_stats.sentence_statistics(metric, *texts(record))

    def score(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return sacrebleu_stats.corpus_scores(metric, weights @ rows)

    return MetricDef(name, statistics, score, stream=metric,
                     signature=partial(sacrebleu_stats.signature, metric))


class Translation(TaskType):
    name = "translation"
    description = "text into another variety or script: chrF++, BLEU (sacrebleu)"
    baselines = ("copy",)
    importable = True

    def metrics(self) -> dict[str, MetricDef]:
        return {"chrf": corpus_metric("chrf", "chrf"), "bleu": corpus_metric("bleu", "bleu")}

    def parser(self) -> TextParser:
        return TextParser()

    def check_item(self, item: Item, suite_root: Path) -> list[str]:
        return check_reference_text(item, "the non-empty target text")

    def audit_view(self, item: Item) -> AuditView:
        return {**super().audit_view(item), "reference_text": str(item["reference"])}

    @classmethod
    def import_problems(cls, mapping: Mapping[str, str], target_variety: str | None) -> list[str]:
        if "reference" in mapping and target_variety is not None:
            return []
        return ["a translation import needs --map reference=COLUMN (the translation) and "
                "--target-variety CODE (its language)"]

    @classmethod
    def import_task(cls, request: ImportRequest) -> JSONObject:
        language = varieties.get(str(request.target_variety)).name("en")
        return {
            "type": cls.name,
            "description": f"Imported from {request.source.name}: translate into {language}.",
            "input_fields": ["text"],
            "metrics": ["chrf", "bleu"],
            "prompt": {"system": f"Translate the message into {language}. Answer with the "
                                 "translation only.",
                       "user": "Message: {{ text }}\nTranslation:"},
        }
