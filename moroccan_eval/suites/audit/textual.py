"""What the audit reads in a text: scripts of its words, a script-neutral skeleton for
comparing a text with its transliteration, the surface cues a shortcut can use, and the
features of chat-style writing (reported as figures)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from itertools import pairwise

from ...text.normalize import normalize
from ...text.translit import arabic_to_arabizi

#: The letters of IRCAM's Tifinagh (33 with ⴳⵯ and ⴽⵯ, written with the labialisation
#: mark ⵯ U+2D6F). Neo-Tifinagh letters of other traditions (ⵞ, ⴶ, ⵠ ...) are not in it.
IRCAM_LETTERS = frozenset("ⴰⴱⴳⴷⴹⴻⴼⴽⵀⵃⵄⵅⵇⵉⵊⵍⵎⵏⵓⵔⵕⵖⵙⵚⵛⵜⵟⵡⵢⵣⵥⵯ")

#: Tifinagh to a Latin chat spelling (ⵖ→gh, ⵛ→ch, ⵅ→kh, ⵄ→3): what a writer does when
#: transliterating letter by letter; emphatics lose their dot, as they do in chat.
_TFNG_TO_LATN = str.maketrans({
    "ⴰ": "a", "ⴱ": "b", "ⴳ": "g", "ⴷ": "d", "ⴹ": "d", "ⴻ": "e", "ⴼ": "f", "ⴽ": "k",
    "ⵀ": "h", "ⵃ": "h", "ⵄ": "3", "ⵅ": "kh", "ⵇ": "q", "ⵉ": "i", "ⵊ": "j", "ⵍ": "l",
    "ⵎ": "m", "ⵏ": "n", "ⵓ": "u", "ⵔ": "r", "ⵕ": "r", "ⵖ": "gh", "ⵙ": "s", "ⵚ": "s",
    "ⵛ": "ch", "ⵜ": "t", "ⵟ": "t", "ⵡ": "w", "ⵢ": "y", "ⵣ": "z", "ⵥ": "z", "ⵯ": "w",
})
#: Latin spellings that differ only by convention, to one form each (IRCAM Latin, chat
#: digraphs, Arabizi digits; French c/v/p as Arabic script writes them: ك ف ب), applied
#: after :func:`normalize` (which drops accents).
_LATN_CANON = [("ɣ", "gh"), ("ɛ", "3"), ("7", "h"), ("9", "q"), ("2", ""), ("3", ""),
               ("sh", "$"), ("ch", "$"), ("ou", "u"), ("kh", "x"), ("gh", "G"), ("c", "k"),
               ("v", "f"), ("p", "b"), ("'", "")]
_VOWELS = re.compile(r"[aeiouy]")
_REPEATS = re.compile(r"(.)\1+")
_PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")
_WORD = re.compile(r"[^\W_]+")


def script_of(char: str) -> str | None:
    """The script of a letter (Latn, Arab, Tfng or Other); ``None`` for digits and others."""
    if not char.isalpha():
        return None
    code = ord(char)
    if 0x2D30 <= code <= 0x2D7F:
        return "Tfng"
    if 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0xFB50 <= code <= 0xFEFF:
        return "Arab"
    name = unicodedata.name(char, "")
    if name.startswith("LATIN") or name.startswith("MODIFIER LETTER"):
        return "Latn"
    return "Other"


def words(text: str) -> list[str]:
    """Runs of letters and digits, anonymisation placeholders (``<PERSON_1>``) removed."""
    return _WORD.findall(_PLACEHOLDER.sub(" ", text))


def mixed_script_words(text: str) -> list[str]:
    """Words whose letters come from more than one script (e.g. Latin inside an Arabic
    word): an editing slip, since no writer switches script mid-word."""
    return [word for word in words(text)
            if len({s for c in word if (s := script_of(c))}) > 1]


def non_ircam(text: str, allow: frozenset[str]) -> list[str]:
    """Tifinagh words (words with a Tifinagh letter) holding a letter outside IRCAM's
    alphabet: a Latin or IPA letter (ḷ, ʷ) or a letter of another Tifinagh tradition (ⵞ),
    unless the word or the letter is allowed."""
    found = []
    for word in words(text):
        if word in allow or not any(script_of(c) == "Tfng" for c in word):
            continue
        if any(c.isalpha() and c not in IRCAM_LETTERS and c not in allow for c in word):
            found.append(word)
    return found


def latin_words(text: str, allow: frozenset[str]) -> list[str]:
    """Whole words in Latin letters (French words, names, codes), unless allowed: in a
    Tifinagh text they are code-switching or an unconverted draft, for a reader to judge."""
    return [word for word in words(text) if word not in allow
            and any(script_of(c) == "Latn" for c in word)
            and all(script_of(c) in ("Latn", None) for c in word)]


def unmatched_words(source: str, target: str) -> list[str]:
    """Words of ``source`` (skeletons of 3+ letters) with no counterpart in ``target``
    (a word or two adjacent words of similar skeleton): in a transliteration, the words
    the reference rewrote ("lmixeur" for الخلاط) instead of transliterating."""
    from difflib import SequenceMatcher

    mine = [w for w in skeleton(source).split() if len(w) >= 3]
    theirs = skeleton(target).split()
    candidates = theirs + [a + b for a, b in pairwise(theirs)]
    return [w for w in mine if not any(w in c or SequenceMatcher(None, w, c).ratio() >= 0.5
                                       for c in candidates)]


def tifinagh_vocabulary(texts: Iterable[str]) -> frozenset[str]:
    """The words of ``texts`` written in Tifinagh, as a letter-by-letter chat spelling
    (ⵜⵉⵍⵉⴼⵓⵏ → tilifun), four letters or longer."""
    return frozenset(
        latin for text in texts for word in words(text)
        if all(script_of(c) in ("Tfng", None) for c in word)
        and len(latin := normalize(word.translate(_TFNG_TO_LATN))) >= 4)


def unconverted(text: str, vocabulary: frozenset[str], allow: frozenset[str]) -> list[str]:
    """Latin words of a Tifinagh text that the suite writes in Tifinagh elsewhere
    ("tilifun" beside ⵜⵉⵍⵉⴼⵓⵏ): a draft left unconverted, not code-switching."""
    return [word for word in latin_words(text, allow) if normalize(word) in vocabulary]


def skeleton(text: str) -> str:
    """A script-neutral consonant skeleton: Tifinagh and Arabic letters to Latin, spelling
    conventions to one form, vowels, doubled letters and a leading article l- dropped. A
    text and its letter-by-letter transliteration have the same skeleton; a rewrite does
    not."""
    text = _PLACEHOLDER.sub(" ", text).translate(_TFNG_TO_LATN)
    text = arabic_to_arabizi(normalize(text))
    text = normalize(text)
    for old, new in _LATN_CANON:
        text = text.replace(old, new)
    text = _VOWELS.sub("", text.replace("w", ""))
    # the article: ال is written l-, el- or assimilated (ttaman for الثمن)
    return " ".join(_REPEATS.sub(r"\1", word[1:] if len(word) > 1 and word[0] == "l" else word)
                    for word in text.split())


# ------------------------------------------------------------------ shortcut cues

#: Contrast words ("but") in the suites' languages: a label that always comes with one is
#: learnt from the word, not from the meaning.
CONTRAST_WORDS = frozenset({
    "mais", "but", "however", "walakin", "walakine", "walaken", "walakn", "lakin", "lakine",
    "lakn", "ولكن", "لكن", "ولاكن", "لاكن", "بصح", "maca", "macc", "mac", "ⵎⴰⵛⴰ", "ⵎⴰⵛ",
    "ⵡⴰⵍⴰⴽⵉⵏ", "ⵍⴰⴽⵉⵏ", "pourtant", "cependant", "sauf"})
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")
_ELONGATION = re.compile(r"([^\W\d_])\1\1")
_ARABIZI_DIGIT = re.compile(r"(?<=[a-z])[2379]|[2379](?=[a-z])", re.IGNORECASE)

#: Names of the cue features, in the order :func:`cues` returns them.
CUE_NAMES = ("'!!'", "'!'", "'?'", "emoji", "contrast word", "'...'", "digits", "length",
             "words")


def cues(text: str, contrast: frozenset[str] = CONTRAST_WORDS) -> list[float]:
    """Surface features a model could learn a label from without reading the meaning:
    repeated exclamation marks, questions, emoji, contrast words (``contrast``, normalised
    or as written), ellipses, digits and length (log characters, log words)."""
    tokens = set(normalize(text).split()) | set(text.split())
    return [float("!!" in text or "！！" in text), float("!" in text),
            float("?" in text or "؟" in text), float(bool(_EMOJI.search(text))),
            float(bool(tokens & contrast)), float("..." in text or "…" in text),
            float(any(c.isdigit() for c in text)), math.log1p(len(text)),
            math.log1p(len(text.split()))]


#: How many of :data:`CUE_NAMES` are yes/no cues (a one-cue rule can be made of them).
BINARY_CUES = 7


_SCHWA = re.compile(r"(?<=[^\W\d_])e|e(?=[^\W\d_])")


def spelling_key(word: str) -> str:
    """What stays of a word across the usual ways of spelling it in chat: case, accents,
    schwa (bezzaf/bzzaf), doubled letters (bzzaf/bzaf), y/i (dyal/dial), ou/u, elongation
    (bzaaaf). Words with one key and several surface forms are spelling variants."""
    key = normalize(word).replace("ou", "u").replace("y", "i")
    key = _REPEATS.sub(r"\1", key)
    return _SCHWA.sub("", key) if len(key) > 2 else key


def minority_spellings(texts: Iterable[str], min_count: int = 5) -> tuple[int, int]:
    """(tokens in a less frequent spelling of their word, tokens of words seen at least
    ``min_count`` times): one spelling per word (0) is edited text; typed chat varies."""
    forms: dict[str, dict[str, int]] = {}
    for text in texts:
        for word in words(text):
            if len(word) < 2 or not any(c.isalpha() for c in word):
                continue
            surface = normalize(word)
            by_form = forms.setdefault(spelling_key(word), {})
            by_form[surface] = by_form.get(surface, 0) + 1
    minority = total = 0
    for by_form in forms.values():
        count = sum(by_form.values())
        if count >= min_count:
            total += count
            minority += count - max(by_form.values())
    return minority, total


def chat_features(text: str) -> dict[str, bool]:
    """Features of typed chat, as yes/no per text: reported as figures (shares of items)
    so a reader can compare a suite with real user text."""
    lowered = text.lower()
    return {"comma": "," in text or "،" in text,
            "elongation": bool(_ELONGATION.search(_PLACEHOLDER.sub(" ", text))),
            "emoji": bool(_EMOJI.search(text)),
            "hashtag_or_mention": bool(re.search(r"(?<!\w)[#@]\w", text)),
            "arabizi_digits": bool(_ARABIZI_DIGIT.search(lowered)),
            "no_final_punctuation": not text.rstrip().endswith((".", "?", "!", "؟", "…")),
            "arabic_and_latin_words": {"Arab", "Latn"} <= {
                script for word in words(text) for c in word[:1] if (script := script_of(c))}}
