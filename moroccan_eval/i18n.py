"""Message catalogues of the report (``reports/i18n/<lang>.yaml``): English, French, Arabic.

A key missing from a language falls back to English, so a partial translation still
renders; the tests check that every shipped catalogue has every English key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from markupsafe import Markup, escape

from .errors import ConfigError, did_you_mean
from .io import load_yaml
from .resources import shipped

LANGUAGES = ("en", "fr", "ar")
RTL = frozenset({"ar"})


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The messages of ``lang``; an unknown language is a user error."""
    if lang not in LANGUAGES:
        raise ConfigError(f"--lang: unknown language '{lang}'" + did_you_mean(lang, LANGUAGES)
                          + f"; choose one of {', '.join(LANGUAGES)}")
    data = load_yaml(shipped("reports", "i18n", f"{lang}.yaml"), "report messages") or {}
    return {str(k): str(v) for k, v in data.items()}


class Translator:
    """``t("key", name=...)``: the message of ``key`` in the report language, formatted.

    The result is ``Markup``: values are HTML-escaped unless they are ``Markup`` themselves
    (a template's rendered model name), so run data can never inject markup."""

    def __init__(self, lang: str, extra: Iterable[Mapping[str, Mapping[str, str]]] = ()):
        """``extra``: more catalogues by language (task types' report messages)."""
        self.lang = lang
        self.messages = {**catalogue("en"), **catalogue(lang)}
        for messages in extra:
            self.messages |= {**messages.get("en", {}), **messages.get(lang, {})}
        self.direction = "rtl" if lang in RTL else "ltr"

    def __call__(self, key: str, **values: Any) -> Markup:
        return escape(self.messages.get(key, key)).format(**values)
