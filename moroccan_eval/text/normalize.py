"""Text normalisation for scoring and answer parsing.

Arabic: NFKC, no diacritics (tashkeel U+064B–U+0652, dagger alef U+0670), no tatweel,
alef variants إأآٱ→ا, ى→ي, ة→ه, Eastern Arabic digits → ASCII. Latin: case-folded, accents
dropped. Direction marks and odd spaces are removed. Arabizi digits (3, 7, 9) are kept:
in Arabizi they are letters, so ``normalize`` must not treat them as noise.
"""

from __future__ import annotations

import re
import unicodedata

#: Tashkeel (U+064B–U+0652), dagger alef (U+0670) and tatweel (U+0640).
ARABIC_DIACRITICS = re.compile("[\u064b-\u0652\u0670\u0640]")
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_ARABIC_MAP = str.maketrans(
    {
        "إ": "ا",
        "أ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ة": "ه",
        "ؤ": "و",
        "ئ": "ي",
        "گ": "ك",
        "ڭ": "ك",
        "ڤ": "ف",
        "٠": "0",
        "١": "1",
        "٢": "2",
        "٣": "3",
        "٤": "4",
        "٥": "5",
        "٦": "6",
        "٧": "7",
        "٨": "8",
        "٩": "9",
        "،": ",",
        "؟": "?",
        "؛": ";",
    }
)
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def strip_latin_accents(text: str) -> str:
    """Drop combining accents from Latin letters (é→e) without touching other scripts."""
    decomposed = unicodedata.normalize("NFD", text)
    kept = [
        c
        for c in decomposed
        if not (unicodedata.combining(c) and not ("\u064b" <= c <= "\u065f" or c == "\u0670"))
    ]
    return unicodedata.normalize("NFC", "".join(kept))


def normalize(text: str, *, punctuation: bool = False) -> str:
    """Normalise text for comparison across case, accents, Arabic orthographic variants.

    With ``punctuation=False`` (default) punctuation becomes a space; underscores and
    hyphens too, so ``payment_problem`` and ``payment-problem`` both read ``payment problem``.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = ARABIC_DIACRITICS.sub("", text)
    text = text.translate(_ARABIC_MAP)
    text = strip_latin_accents(text).casefold()
    if not punctuation:
        text = _PUNCT.sub(" ", text).replace("_", " ")
    return _SPACES.sub(" ", text).strip()


def tokenize(text: str) -> list[str]:
    """Whitespace tokens of the normalised text (used for WER and word matching)."""
    return normalize(text).split()
