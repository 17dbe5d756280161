"""Arabic-script Darija ↔ Arabizi (Latin script with 3, 7, 9 for ع ح ق), rule-based.

Used by the ``transliterate`` perturbation and by the retrieval baseline, which matches
questions across scripts. ``<PERSON_1>``-style placeholders of anonymized text are never
changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .normalize import ARABIC_DIACRITICS

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


def outside_placeholders(text: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the text between ``<PERSON_1>``-style placeholders only."""
    return "".join(part if _PLACEHOLDER.fullmatch(part) else change(part)
                   for part in _PLACEHOLDER.split(text))


def arabic_to_arabizi(text: str) -> str:
    """Darija in Arabic script written in Arabizi (ع→3, ح→7, ق→9), rule-based; ``<PERSON_1>``
    placeholders are kept."""
    def convert(part: str) -> str:
        words = []
        for word in part.split(" "):
            out = []
            for i, ch in enumerate(ARABIC_DIACRITICS.sub("", word)):
                if ch == "و":
                    out.append("w" if i == 0 else "o")
                elif ch == "ي":
                    out.append("y" if i == 0 else "i")
                else:
                    out.append(_AR_TO_LATN.get(ch, ch))
            words.append("".join(out))
        return " ".join(words)
    return outside_placeholders(text, convert)


def arabizi_to_arabic(text: str) -> str:
    """Arabizi written in Arabic script, rule-based (the inverse of
    :func:`arabic_to_arabizi`, up to ambiguity); placeholders are kept."""
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
    return outside_placeholders(text, convert)
