"""Values compared across scripts and formats: amounts, dates and clock times written the
way Moroccan documents and chats write them ("1 250,00 DH", "14 mars 2026", "10h30",
"١٠:٣٠"), and the facts (numbers, times) an answer states."""

from __future__ import annotations

import re
from typing import Any

from .normalize import normalize

_AMOUNT = re.compile(r"(\d{1,3}(?:[ .,\u202f]\d{3})*|\d+)(?:[.,](\d{1,2}))?\s*(?:mad|dh|dhs|درهم)?")
#: Month names (French, English, Moroccan Arabic), normalised, to their number.
MONTHS = {name: i for i, names in enumerate([
    ("janvier", "january", "يناير", "janvier"), ("fevrier", "february", "فبراير"),
    ("mars", "march", "مارس"), ("avril", "april", "ابريل", "أبريل"), ("mai", "may", "ماي"),
    ("juin", "june", "يونيو"), ("juillet", "july", "يوليوز", "يوليو"),
    ("aout", "august", "غشت"), ("septembre", "september", "شتنبر"),
    ("octobre", "october", "اكتوبر", "أكتوبر"), ("novembre", "november", "نونبر"),
    ("decembre", "december", "دجنبر")], start=1) for name in names}
#: A clock time (10:30, 10h30, 10h, ١٠:٣٠ after normalisation) in answers and arguments.
TIME_FACT = re.compile(r"(?<!\d)(\d{1,2})\s*(?::|h|H)\s*(\d{2})?(?!\d)")
_NUMBER_FACT = re.compile(r"(?<![\d:])\d+(?:[.,]\d+)?(?![\d:])")


def normalize_value(value: Any) -> str:
    """A field value in comparable form: amounts as plain decimals, dates as YYYY-MM-DD,
    other text normalised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        try:
            return f"{float(value):.2f}"
        except OverflowError:  # an int beyond floats: compared exactly, in hex, which
            return hex(int(value))  # (unlike decimal) has no 4,300-digit cap
    text = normalize(str(value), punctuation=True)
    date = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
    if date:
        return f"{int(date[3]):04d}-{int(date[2]):02d}-{int(date[1]):02d}"
    iso = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if iso:
        return f"{int(iso[1]):04d}-{int(iso[2]):02d}-{int(iso[3]):02d}"
    written = re.fullmatch(r"(\d{1,2})\s+(\S+)\s+(\d{4})", text)
    if written and normalize(written[2]) in MONTHS:
        return f"{int(written[3]):04d}-{MONTHS[normalize(written[2])]:02d}-{int(written[1]):02d}"
    amount = _AMOUNT.fullmatch(text)
    if amount:
        whole = re.sub(r"[ .,\u202f]", "", amount[1])
        return f"{_plain_digits(whole)}.{(amount[2] or '0').ljust(2, '0')}"
    return " ".join(text.split())


def _plain_digits(digits: str) -> str:
    """Digits (of any script) as ASCII without leading zeros, like ``str(int(digits))``
    but for any length (Python refuses int/str conversions over 4,300 digits)."""
    if len(digits) < 4000:
        return str(int(digits))
    return "".join(str(int(d)) for d in digits).lstrip("0") or "0"


def comparable(value: Any) -> str:
    """:func:`normalize_value`, with a clock time as H:MM (``10h`` = ``10:00``)."""
    if isinstance(value, str) and (time := TIME_FACT.fullmatch(value.strip())):
        return f"{int(time[1])}:{time[2] or '00'}"
    return normalize_value(value)


def stated_facts(text: str) -> set[str]:
    """The times (as H:MM) and numbers (without leading zeros) a text states, in any
    script's digits."""
    text = normalize(text, punctuation=True)
    found = {f"{int(h)}:{m or '00'}" for h, m in TIME_FACT.findall(text)}
    without_times = TIME_FACT.sub(" ", text)
    found |= {n.replace(",", ".").lstrip("0") or "0" for n in _NUMBER_FACT.findall(without_times)}
    return found
