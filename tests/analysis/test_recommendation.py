"""The recommendation over real runs of toy oracles."""

from __future__ import annotations

import pytest
from toy_models import oracle_runs

from moroccan_eval.analysis.recommendation import Constraints, recommend
from moroccan_eval.analysis.summary import summarize
from moroccan_eval.errors import ConfigError
from moroccan_eval.runs.rundir import Run, load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    return [load_run(p) for p in oracle_runs(tmp_path_factory.mktemp("oracles"), 3)]


def test_recommend_takes_the_cheapest_model_meeting_every_constraint(runs: list[Run]) -> None:
    models = summarize(runs)
    loose = recommend(models, Constraints(min_score=0.3))
    assert loose.chosen is not None and loose.chosen.model.name == "oracle-2"  # cheapest

    quality = {m.name: m.quality() for m in models}
    between = (quality["oracle-0"] + max(quality["oracle-1"], quality["oracle-2"])) / 2
    tight = recommend(models, Constraints(min_score=between))
    assert tight.chosen is not None and tight.chosen.model.name == "oracle-0"
    failures = {v.model.name: v.failure for v in tight.verdicts}
    assert failures["oracle-0"] is None
    assert failures["oracle-2"] is not None and failures["oracle-2"].startswith("intents: ")

    none = recommend(models, Constraints(min_score=0.3, max_cost_per_1k=0.001))
    assert none.chosen is None
    assert all("cost per 1k" in (v.failure or "") for v in none.verdicts)
    as_dict = none.to_dict()
    assert as_dict["recommended"] is None and len(as_dict["models"]) == 3


def test_variety_constraint_names_the_first_failing_variety(runs: list[Run]) -> None:
    models = summarize(runs)
    zgh = min(m.tasks[0].varieties["zgh_Tfng"].value for m in models)
    result = recommend(models, Constraints(min_variety={"zgh_Tfng": zgh + 0.01}))
    worst = next(v for v in result.verdicts
                 if v.model.tasks[0].varieties["zgh_Tfng"].value == zgh)
    assert worst.failure is not None and worst.failure.startswith("intents · zgh_Tfng: ")
    missing = recommend(models, Constraints(min_variety={"eng_Latn": 0.1}))
    assert all(v.failure == "eng_Latn: not evaluated" for v in missing.verdicts)
    with pytest.raises(ConfigError, match="did you mean 'ary_Arab'"):
        recommend(models, Constraints(min_variety={"ary_arab": 0.5}))


def test_strict_judges_by_the_ci_lower_bound(runs: list[Run]) -> None:
    models = summarize(runs)
    best = next(m for m in models if m.name == "oracle-0")
    threshold = (best.quality() + best.quality(strict=True)) / 2
    assert recommend([best], Constraints(min_score=threshold)).chosen is not None
    strict = recommend([best], Constraints(min_score=threshold, strict=True))
    assert strict.chosen is None
    assert "CI lower bound" in (strict.verdicts[0].failure or "")
