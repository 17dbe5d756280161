"""chrF++ and BLEU through sacrebleu, as per-sentence statistics that add up.

Both are corpus metrics whose sentence statistics are sums, so a bootstrap resample is a
weight vector over sentences: the weighted sum of their statistics gives the resampled
corpus score without re-tokenising anything. sacrebleu exposes this only through private
methods (``_extract_corpus_statistics``, ``_compute_score_from_stats``); they are used here
and nowhere else, so a sacrebleu upgrade that renames them breaks one module.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # numpy is imported where scores are computed, not at start-up
    import numpy as np


SacrebleuMetric = Literal["chrf", "bleu"]


def _new_scorer(metric: SacrebleuMetric) -> Any:
    if metric == "chrf":
        from sacrebleu.metrics.chrf import CHRF

        return CHRF(word_order=2)  # chrF++
    from sacrebleu.metrics.bleu import BLEU

    return BLEU(tokenize="intl")


_scorer = cache(_new_scorer)  # statistics only: signing evaluates a corpus, on a fresh one


def sentence_statistics(metric: SacrebleuMetric, hypothesis: str, reference: str) -> list[float]:
    """The additive statistics of one sentence against its one reference."""
    [stats] = _scorer(metric)._extract_corpus_statistics([hypothesis], [[reference]])
    return [float(value) for value in stats]


def corpus_scores(metric: SacrebleuMetric, totals: np.ndarray) -> np.ndarray:
    """The corpus score (0-1) of each row of summed statistics."""
    import numpy as np
    scorer = _scorer(metric)
    return np.array([scorer._compute_score_from_stats(list(row)).score / 100 for row in totals])


@cache
def signature(metric: SacrebleuMetric) -> str:
    """sacrebleu's reproducibility signature of the metric (one reference)."""
    scorer = _new_scorer(metric)
    scorer.corpus_score(["x"], [["x"]])  # sacrebleu signs only an evaluated metric
    name = "chrF++" if metric == "chrf" else "BLEU"
    return f"{name}|{scorer.get_signature()}"
