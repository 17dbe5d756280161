"""The bootstrap engine's memory bound: resamples drawn in chunks are the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from moroccan_eval.stats import bootstrap
from moroccan_eval.stats.bootstrap import MetricDef, ratio


@pytest.mark.parametrize("resample", ["items", "cells"])
def test_chunked_draws_give_the_same_intervals(monkeypatch: pytest.MonkeyPatch,
                                               resample: str) -> None:
    rows = np.random.default_rng(1).integers(0, 3, size=(500, 2)).astype(float)
    reference = np.random.default_rng(2).integers(0, 3, size=(500, 2)).astype(float)
    metric = MetricDef("rate", lambda record: (0.0, 0.0), ratio,
                       resample=resample)  # type: ignore[arg-type]

    def both() -> tuple[object, object]:
        return (bootstrap._estimate(metric, rows, 1000, np.random.default_rng(7)),
                bootstrap._paired_delta(metric, rows, reference, 1000,
                                        np.random.default_rng(7)))

    whole = both()
    monkeypatch.setattr(bootstrap, "_DRAW_CELLS", 3)  # one resample row at a time
    assert both() == whole
    estimate, delta = whole
    assert estimate.ci is not None and delta is not None and delta.ci is not None  # type: ignore[attr-defined]
