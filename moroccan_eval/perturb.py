"""Perturbations of item text, for robustness: the same items, written the way real users
also write them. A run with ``--perturb NAME`` keeps item ids, so ``moroccan-eval compare``
against the clean run gives the paired score change per variety, and the report shows it.

Every perturbation is deterministic for a given seed and item, so reruns hit the cache.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from typing import Any

from .errors import ConfigError, did_you_mean
from .text.normalize import ARABIC_DIACRITICS
from .text.translit import arabic_to_arabizi, arabizi_to_arabic, outside_placeholders

_ARABIZI_VARIANTS = {"3": "a", "7": "h", "9": "q", "2": "a", "5": "kh"}


def _transliterate(text: str, variety: str, rng: random.Random) -> str:
    if variety == "ary_Arab":
        return arabic_to_arabizi(text)
    if variety == "ary_Latn":
        return arabizi_to_arabic(text)
    return text


def _arabizi_variants(text: str, variety: str, rng: random.Random) -> str:
    if not variety.endswith("_Latn") and variety != "ary_fra_mix":
        return text
    return outside_placeholders(
        text, lambda part: "".join(_ARABIZI_VARIANTS.get(ch, ch) for ch in part))


def _elongation(text: str, variety: str, rng: random.Random) -> str:
    def stretch(part: str) -> str:
        letters = [i for i, ch in enumerate(part) if ch.isalpha()]
        chosen = set(rng.sample(letters, max(1, len(letters) // 15))) if letters else set()
        return "".join(ch * 3 if i in chosen else ch for i, ch in enumerate(part))
    return outside_placeholders(text, stretch)


def _no_diacritics(text: str, variety: str, rng: random.Random) -> str:
    def strip(part: str) -> str:
        part = ARABIC_DIACRITICS.sub("", part)
        decomposed = unicodedata.normalize("NFD", part)
        return unicodedata.normalize(
            "NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))
    return outside_placeholders(text, strip)


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
    return outside_placeholders(text, noisy)


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
