from __future__ import annotations

from pathlib import Path

import pytest
from conftest import extra_variety_registry

from moroccan_eval import varieties
from moroccan_eval.errors import ConfigError

CORE = ["ary_Arab", "ary_Latn", "arb_Arab", "fra_Latn", "zgh_Tfng", "zgh_Latn", "ary_fra_mix"]


def test_registry_has_the_seven_varieties_and_optional_english() -> None:
    assert varieties.core_codes() == CORE
    assert varieties.registry()["eng_Latn"].optional
    for code in CORE:
        v = varieties.get(code)
        assert v.names.en and v.names.fr and v.names.ar
    assert varieties.get("arb_Arab").direction == "rtl"
    assert varieties.get("zgh_Tfng").script == "Tfng"


def test_unknown_variety_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"\(did you mean 'ary_Latn'\?\)"):
        varieties.get("ary_Latin")


def test_user_can_add_a_variety(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = extra_variety_registry(tmp_path / "extra.yaml")
    monkeypatch.setenv("MOROCCAN_EVAL_VARIETIES", str(extra))
    varieties.registry.cache_clear()
    try:
        assert varieties.get("mey_Arab").name("ar") == "الحسانية"
    finally:
        varieties.registry.cache_clear()


@pytest.mark.parametrize(
    ("text", "script"),
    [("فين وصلات الكوموند", "Arab"), ("fin wslat lcommande 3afak", "Latn"),
     ("ⴰⵣⵓⵍ ⴼⵍⵍⴰⵡⵏ", "Tfng"), ("bonjour, wach الكوموند وصلات", "mixed"), ("123 !", "none")],
)
def test_detect_script(text: str, script: str) -> None:
    assert varieties.detect_script(text) == script
