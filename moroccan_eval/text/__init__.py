"""Text handling shared by parsers, metrics, baselines and the privacy scanner:
normalisation for comparison (:mod:`.normalize`), comparable values, dates and times
(:mod:`.values`) and Arabic ↔ Arabizi transliteration (:mod:`.translit`)."""

from __future__ import annotations

from .normalize import normalize, strip_latin_accents, tokenize

__all__ = ["normalize", "strip_latin_accents", "tokenize"]
