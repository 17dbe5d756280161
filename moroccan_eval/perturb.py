"""Perturbations of item text, for robustness: the same items, written the way real users
also write them. A run with ``--perturb NAME`` keeps item ids, so ``moroccan-eval compare``
against the clean run gives the paired score change per variety, and the report shows it.

Every perturbation is deterministic for a given seed and item, so reruns hit the cache.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from .errors import ConfigError, did_you_mean

_AR_TO_LATN = {
    "ا": "a", "أ": "a", "إ": "i", "آ": "a", "ب": "b", "ت": "t", "ث": "t", "ج": "j", "ح": "7",
    "خ": "kh", "د": "d", "ذ": "d", "ر": "r", "ز": "z", "س": "s", "ش": "ch", "ص": "s", "ض": "d",
    "ط": "t", "ظ": "d", "ع": "3", "غ": "gh", "ف": "f", "ق": "9", "ك": "k", "گ": "g", "ڭ": "g",
    "ل": "l", "م": "m", "ن": "n", "ه": "h", "ة": "a", "ى": "a", "ء": "2", "ؤ": "2", "ئ": "2",
    "؟": "?", "،": ",", "؛": ";",
}
_LATN_TO_AR = [
    ("kh", "خ"), ("gh", "غ"), ("ch", "ش"), ("sh", "ش"), ("ou", "و"), ("3", "ع"), ("7", "ح"),
    ("9", "ق"), ("2", "ء"), ("5", "خ"), ("a", "ا"), ("b", "ب"), ("t", "ت"), ("j", "ج"),
    ("d", "د"), ("r", "ر"), ("z", "ز"), ("s", "س"), ("f", "ف"), ("k", "ك"), ("g", "گ"),
    ("l", "ل"), ("m", "م"), ("n", "ن"), ("h", "ه"), ("w", "و"), ("o", "و"), ("u", "و"),
    ("y", "ي"), ("i", "ي"), ("e", ""), ("q", "ق"), ("x", "كس"), ("p", "ب"), ("v", "ف"),
    ("c", "ك"), ("?", "؟"), (",", "،"),
]
_PLACEHOLDER = re.compile(r"(<[A-Z_]+_\d+>)")
_ARABIZI_VARIANTS = {"3": "a", "7": "h", "9": "q", "2": "a", "5": "kh"}
_DIACRITICS = re.compile("[\u064b-\u0652\u0670\u0640]")


def _outside_placeholders(text: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the text between ``<PERSON_1>``-style placeholders only."""
    return "".join(part if _PLACEHOLDER.fullmatch(part) else change(part)
                   for part in _PLACEHOLDER.split(text))


def arabic_to_arabizi(text: str) -> str:
    def convert(part: str) -> str:
        words = []
        for word in part.split(" "):
            out = []
            for i, ch in enumerate(_DIACRITICS.sub("", word)):
                if ch == "و":
                    out.append("w" if i == 0 else "o")
                elif ch == "ي":
                    out.append("y" if i == 0 else "i")
                else:
                    out.append(_AR_TO_LATN.get(ch, ch))
            words.append("".join(out))
        return " ".join(words)
    return _outside_placeholders(text, convert)


def arabizi_to_arabic(text: str) -> str:
    def convert(part: str) -> str:
        lowered, out, i = part.lower(), [], 0
        while i < len(lowered):
            for latin, arabic in _LATN_TO_AR:
                if lowered.startswith(latin, i):
                    out.append(arabic)
                    i += len(latin)
                    break
            else:
                out.append(lowered[i])
                i += 1
        return "".join(out)
    return _outside_placeholders(text, convert)


def _transliterate(text: str, variety: str, rng: random.Random) -> str:
    if variety == "ary_Arab":
        return arabic_to_arabizi(text)
    if variety == "ary_Latn":
        return arabizi_to_arabic(text)
    return text


def _arabizi_variants(text: str, variety: str, rng: random.Random) -> str:
    if not variety.endswith("_Latn") and variety != "ary_fra_mix":
        return text
    return _outside_placeholders(
        text, lambda part: "".join(_ARABIZI_VARIANTS.get(ch, ch) for ch in part))


def _elongation(text: str, variety: str, rng: random.Random) -> str:
    def stretch(part: str) -> str:
        letters = [i for i, ch in enumerate(part) if ch.isalpha()]
        chosen = set(rng.sample(letters, max(1, len(letters) // 15))) if letters else set()
        return "".join(ch * 3 if i in chosen else ch for i, ch in enumerate(part))
    return _outside_placeholders(text, stretch)


def _no_diacritics(text: str, variety: str, rng: random.Random) -> str:
    def strip(part: str) -> str:
        part = _DIACRITICS.sub("", part)
        decomposed = unicodedata.normalize("NFD", part)
        return unicodedata.normalize(
            "NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))
    return _outside_placeholders(text, strip)


def _typos(text: str, variety: str, rng: random.Random) -> str:
    def noisy(part: str) -> str:
        chars = list(part)
        i = 0
        while i < len(chars) - 1:
            if chars[i].isalpha() and chars[i + 1].isalpha() and rng.random() < 0.05:
                if rng.random() < 0.5:
                    chars[i], chars[i + 1] = chars[i + 1], chars[i]  # swapped letters
                else:
                    del chars[i]  # dropped letter
            i += 1
        return "".join(chars)
    return _outside_placeholders(text, noisy)


PERTURBATIONS: dict[str, Callable[[str, str, random.Random], str]] = {
    "transliterate": _transliterate,
    "arabizi-variants": _arabizi_variants,
    "elongation": _elongation,
    "no-diacritics": _no_diacritics,
    "typos": _typos,
}
DESCRIPTIONS = {
    "transliterate": "Darija rewritten in the other script (ary_Arab ↔ ary_Latn, rule-based)",
    "arabizi-variants": "Arabizi digits spelled as letters (3→a, 7→h, 9→q, 2→a, 5→kh)",
    "elongation": "a few letters stretched (bzzzaf), as in emphatic chat",
    "no-diacritics": "Arabic diacritics and Latin accents removed",
    "typos": "about 5% of letters swapped with the next one or dropped",
}


def check(name: str) -> str:
    if name not in PERTURBATIONS:
        raise ConfigError(f"--perturb: unknown perturbation '{name}'"
                          + did_you_mean(name, PERTURBATIONS)
                          + f"; choose one of {', '.join(PERTURBATIONS)}")
    return name


def perturb_item(item: Any, name: str | None, seed: int) -> Any:
    """The item with its text fields under perturbation ``name`` (a new dict; ``None``
    returns the item unchanged)."""
    if name is None:
        return item
    function = PERTURBATIONS[check(name)]
    rng = random.Random(f"{seed}/{name}/{item['id']}")
    fields = {key: function(value, item["variety"], rng) if isinstance(value, str) else value
              for key, value in item["fields"].items()}
    return {**item, "fields": fields}
