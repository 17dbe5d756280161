"""Report message catalogues."""

from __future__ import annotations

import string

import pytest
from markupsafe import Markup

from moroccan_eval.errors import ConfigError
from moroccan_eval.i18n import LANGUAGES, Translator, catalogue


def _fields(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_has_every_message_with_the_same_placeholders(lang: str) -> None:
    english, other = catalogue("en"), catalogue(lang)
    assert set(other) == set(english)
    for key, message in english.items():
        assert _fields(other[key]) == _fields(message), key


def test_values_are_escaped_but_markup_is_kept() -> None:
    t = Translator("ar")
    assert t.direction == "rtl" and Translator("fr").direction == "ltr"
    out = t("recommended", model="<b>x</b>")
    assert "&lt;b&gt;x&lt;/b&gt;" in out
    assert "<bdi>x</bdi>" in t("recommended", model=Markup("<bdi>x</bdi>"))


def test_unknown_language() -> None:
    with pytest.raises(ConfigError, match="did you mean 'fr'"):
        catalogue("fre")
