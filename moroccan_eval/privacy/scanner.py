"""Finding personal data in Moroccan text with Presidio, offline.

Presidio normally loads a downloaded spaCy model; here it runs on spaCy's *blank*
multilingual tokenizer (nothing to download) with recognizers built from the policy:
one pattern recognizer per entity (with Luhn and IBAN validators where the policy asks)
and a gazetteer-and-cue recognizer for person names in Latin, Arabic and Tifinagh script.
Context words raise scores through Presidio's context enhancer; blank pipelines have no
lemmas, so the lower-cased tokens stand in for them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..text import normalize
from .policy import EntitySpec, Policy, load_policy
from .presidio import importing_presidio

LANGUAGE = "xx"  # spaCy's multilingual blank pipeline
_CLITICS = "لبفو"  # Darija prepositions and "and", written glued to the next word
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: entity type, character span and confidence."""

    entity: str
    start: int
    end: int
    score: float

    def masked(self) -> str:
        """How reports show the finding: its type and length, never its value."""
        return f"<{self.entity}:{self.end - self.start} chars>"


def luhn_valid(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    compact = re.sub(r"\s", "", text).upper()
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return numeric.isdigit() and int(numeric) % 97 == 1


_VALIDATORS = {"luhn": luhn_valid, "iban": iban_valid}


def _build_engine(policy: Policy) -> tuple[Any, _PersonNames, Any]:
    """Presidio's analyzer, the person recognizer and the spaCy pipeline it runs on."""
    with importing_presidio():
        import spacy
        from presidio_analyzer import (
            AnalyzerEngine,
            EntityRecognizer,
            Pattern,
            PatternRecognizer,
            RecognizerRegistry,
            RecognizerResult,
        )
        from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
        from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

    for name in ("presidio-analyzer", "presidio-anonymizer"):
        logging.getLogger(name).setLevel(logging.ERROR)  # its debug lines quote the text

    spacy_nlp = spacy.blank(LANGUAGE)

    class BlankEngine(SpacyNlpEngine):
        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": LANGUAGE, "model_name": "blank"}])

        def load(self) -> None:
            self.nlp = {LANGUAGE: spacy_nlp}  # type: ignore[assignment]

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> Any:
            return NlpArtifacts(
                entities=[], tokens=doc, tokens_indices=[t.idx for t in doc],
                lemmas=[t.text.lower() for t in doc], nlp_engine=self, language=language,
                scores=[])

    def pattern_recognizer(entity: str, spec: EntitySpec) -> Any:
        validate = _VALIDATORS.get(spec.validator) if spec.validator else None

        class Recognizer(PatternRecognizer):
            def validate_result(self, pattern_text: str) -> bool | None:
                return validate(pattern_text) if validate else None

        # Presidio matches case-insensitively by default; the policy's patterns say where
        # case does not matter with (?i:...), because "rue Ibn Sina" is an address and
        # "la rue est inondée" is not.
        return Recognizer(
            supported_entity=entity, supported_language=LANGUAGE, name=f"{entity}_recognizer",
            patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns],
            context=spec.context, global_regex_flags=re.DOTALL | re.MULTILINE)

    names = _PersonNames(policy)

    class PersonRecognizer(EntityRecognizer):
        def load(self) -> None:
            pass

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any) -> list[Any]:
            return [RecognizerResult("PERSON", start, end, score)
                    for start, end, score in names.find(text, nlp_artifacts.tokens)]

    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    for entity, spec in policy.entities.items():
        registry.add_recognizer(pattern_recognizer(entity, spec))
    registry.add_recognizer(PersonRecognizer(supported_entities=["PERSON"],
                                             supported_language=LANGUAGE, name="person"))
    engine = BlankEngine()
    engine.load()
    enhancer = LemmaContextAwareEnhancer(
        context_similarity_factor=policy.context_boost,
        min_score_with_context_similarity=policy.min_score,
        context_prefix_count=policy.context_window, context_suffix_count=2)
    analyzer = AnalyzerEngine(nlp_engine=engine, registry=registry,
                              supported_languages=[LANGUAGE], context_aware_enhancer=enhancer)
    return analyzer, names, spacy_nlp


class _PersonNames:
    """Names from gazetteers (any script), strengthened by a family name or a cue word.

    A found name covers its whole span, so the anonymizer leaves no part of it behind:
    honorifics before it (Lalla, Sidi, Moulay, Si, Mme, السيد), compound given names
    (Mohamed Amine, Fatima-Zahra), a regnal number (Mohammed VI, محمد السادس) and family
    names, known or shaped like one (El Ouazzani, Ait Taleb, بن موسى, a capitalised word).
    Place names built on a person's name (Sidi Maarouf, Moulay Idriss Zerhoun, l'aéroport
    Mohammed V) are not people.
    """

    def __init__(self, policy: Policy):
        spec = self.spec = policy.person
        self.first = {normalize(n) for n in policy.words(spec.first_names)}
        if spec.first_name_variants:
            self.first |= _variants(policy.words(spec.first_name_variants))
        self.family = {normalize(n) for n in policy.words(spec.family_names)}
        self.common = {normalize(n) for n in policy.words(spec.not_names)}
        self.places = {normalize(n) for n in policy.words(spec.places)} if spec.places \
            else set()
        self.place_heads = {p.split()[0] for p in self.places}
        self.cue = _cue_pattern(spec.cues)
        self.weak_cue = _cue_pattern(spec.weak_cues)
        self.place_word = _cue_pattern(spec.place_words, clitic=True)
        self.never = {normalize(w) for w in spec.never_names}
        self.honorifics = {normalize(w) for w in spec.honorifics}
        self.regnal = {normalize(w) for w in spec.regnal}
        self.particles = {normalize(w) for w in spec.particles}
        self.not_surnames = {normalize(w) for w in spec.not_surnames} | self.common \
            | self.honorifics | {p for p in self.places if " " not in p} \
            | {normalize(w) for w in spec.place_words}  # "Hassan II Mosque"

    def _match(self, words: list[str], i: int, table: set[str]) -> int:
        """How many tokens from ``i`` form a name of ``table`` (0 if none)."""
        for size in (4, 3, 2, 1):
            if i + size <= len(words) and " ".join(words[i:i + size]) in table:
                return size
        return 0

    def _place(self, words: list[str], i: int) -> int:
        """How many tokens from ``i`` name a place of the gazetteer, also behind a Darija
        clitic glued to it ("لمولاي إدريس", "فسيدي معروف")."""
        head = words[i]
        if head not in self.place_heads:
            if len(head) > 3 and head[0] in _CLITICS and head[1:] in self.place_heads:
                return self._match([head[1:], *words[i + 1:i + 4]], 0, self.places)
            return 0
        return self._match(words, i, self.places)

    def _surname_shape(self, token: Any, word: str) -> bool:
        """A word shaped like a family name the gazetteer does not know: capitalised
        Latin letters ("Bouzidi"), or an Arabic nisba with the article ("الزموري")."""
        text = token.text
        if word in self.not_surnames or word in self.first or not text.isalpha() \
                or len(text) < 3:
            return False
        if "\u0600" <= text[0] <= "\u06ff":
            return word.startswith("ال") and word.endswith("ي") and len(word) >= 5
        return text[0].isupper() and not text.isupper()

    def _family(self, tokens: list[Any], words: list[str], j: int) -> tuple[int, bool]:
        """Tokens from ``j`` that form a family name, and whether a gazetteer knows it."""
        if size := self._match(words, j, self.family):
            return size, True
        if j + 1 < len(tokens) and words[j] in self.particles:  # El Ouazzani, بن موسى
            if size := self._match(words, j + 1, self.family):
                return size + 1, True
            follower = tokens[j + 1].text
            if follower.isalpha() and (words[j + 1] not in self.not_surnames
                                       or words[j + 1] in self.honorifics) and (
                    follower[0].isupper() or "\u0600" <= follower[0] <= "\u06ff"):
                return 2, False
        if j < len(tokens) and self._surname_shape(tokens[j], words[j]):
            return 1, False
        return 0, False

    def _joined(self, tokens: list[Any], j: int) -> int:
        """The index after a hyphen glued to both neighbours ("Fatima-Zahra"), else ``j``."""
        if 0 < j < len(tokens) - 1 and tokens[j].text == "-" \
                and tokens[j].idx == tokens[j - 1].idx + len(tokens[j - 1].text) \
                and tokens[j + 1].idx == tokens[j].idx + 1:
            return j + 1
        return j

    def find(self, text: str, doc: Any) -> Iterator[tuple[int, int, float]]:
        tokens = [t for t in doc if not t.is_space]
        words = [_normalized(t.text) for t in tokens]
        i = 0
        while i < len(tokens):
            if (place := self._place(words, i)) and not self._family(tokens, words, i + place)[1]:
                # "Sidi Kacem", "Moulay Idriss Zerhoun" are places; "Moulay Idriss
                # Alaoui", with a known family name after it, is a man
                i += place
                continue
            size = self._match(words, i, self.first)
            if not size and (words[i] in self.never or not _looks_like_name(tokens[i].text)):
                i += 1  # neither a known name nor a word a cue could announce
                continue
            before = _tail(text, tokens[i].idx)
            strong = bool(before and self.cue.search(before))
            after_cue = strong or bool(before and self.weak_cue.search(before))
            if not size and strong:
                size = 1
            if not size:
                i += 1
                continue
            start = i
            while start and words[start - 1] in self.honorifics:
                start -= 1
            ahead = _tail(text, tokens[start].idx)
            if ahead and self.place_word.search(ahead):
                i += size  # "l'aéroport Mohammed V", "مسجد الحسن الثاني"
                continue
            end = i + size
            while (k := self._joined(tokens, end)) < len(tokens) \
                    and words[k] not in self.family \
                    and (more := self._match(words, k, self.first)):
                end = k + more  # Mohamed Amine, Fatima-Zahra
            if end < len(tokens) and words[end] in self.regnal and (
                    tokens[end].text.isupper() or not tokens[end].text.isascii()):
                end += 1  # Mohammed VI, الحسن الثاني
            known = unknown = 0
            while end < len(tokens):
                extra, listed = self._family(tokens, words, self._joined(tokens, end))
                if not extra:
                    break
                end = self._joined(tokens, end) + extra
                known += listed
                unknown += not listed
            if known:
                score = self.spec.score_full_name
            elif unknown:
                score = self.spec.score_first_and_surname
            elif " ".join(words[i:i + size]) in self.common:
                score = self.spec.score_common_word
            else:
                score = self.spec.score_first_name
            if after_cue or start < i:  # "Si Hamid", "Lalla Amal": the title says person
                score = max(score, self.spec.score_after_cue)
            last = tokens[end - 1]
            yield tokens[start].idx, last.idx + len(last.text), score
            i = end


@lru_cache(maxsize=1 << 16)
def _normalized(word: str) -> str:
    """A token in comparable form; suites repeat the same words thousands of times."""
    return normalize(word)


def _tail(text: str, end: int, width: int = 48) -> str:
    """The normalised text just before ``end``, whole words only: enough for any cue or
    place word (the longest is a few words), without normalising the whole prefix at
    every token."""
    start = max(0, end - width)
    window = text[start:end]
    if start and not text[start - 1].isspace():
        window = window.partition(" ")[2]  # drop the cut word
    return normalize(window, punctuation=True)


def _variants(lines: list[str]) -> set[str]:
    """Every name of a ``Canonical: variant, variant`` gazetteer, normalised."""
    names = set()
    for line in lines:
        canonical, _, rest = line.partition(":")
        names |= {normalize(n) for n in [canonical, *rest.split(",")] if n.strip()}
    return names


def _cue_pattern(cues: list[str], clitic: bool = False) -> re.Pattern[str]:
    """Matches text that ends with one of ``cues`` (and maybe a colon or comma); with
    ``clitic``, also glued to a Darija preposition ("فجامع", "لمطار")."""
    if not cues:
        return re.compile(r"(?!)")
    alternatives = sorted((normalize(c, punctuation=True) for c in cues), key=len, reverse=True)
    prefix = f"[{_CLITICS}]?" if clitic else ""
    return re.compile(r"(?:^|[\s,.:;!?(«\"'])" + prefix + "(?:"
                      + "|".join(map(re.escape, alternatives)) + r")\s*[:,]?\s*$")


def _looks_like_name(word: str) -> bool:
    """A word that can follow a cue as an unknown name: capitalised Latin, or Arabic or
    Tifinagh letters (those scripts have no case) except Arabic words with the article
    ("باسم الشركة" is "in the company's name", not a person)."""
    if not word.isalpha() or len(word) < 2 or (word.isupper() and len(word) <= 4):
        return False  # too short, or an acronym (CIN, CNSS, RIB)
    first = word[0]
    if "\u0600" <= first <= "\u06ff":
        return not word.startswith("ال")
    return first.isupper() or "\u2d30" <= first <= "\u2d7f"


def _resolve(results: Iterable[Any]) -> list[Finding]:
    """One finding per stretch of text: a span inside another goes; of two partly
    overlapping spans, the more confident stays."""
    ordered = sorted(results, key=lambda r: (r.start, -(r.end - r.start), -r.score))
    kept: list[Finding] = []
    for r in ordered:
        current = Finding(r.entity_type, r.start, r.end, round(float(r.score), 4))
        if kept and current.start < kept[-1].end:
            previous = kept[-1]
            if current.end <= previous.end or previous.score >= current.score:
                continue
            kept[-1] = current
        else:
            kept.append(current)
    return kept


class Scanner:
    """Finds personal data in text. Build once (about 0.1 s) and reuse."""

    def __init__(self, policy: Policy | None = None):
        self.policy = policy or load_policy()
        self._analyzer, self._names, self._nlp = _build_engine(self.policy)
        # Every pattern, compiled as Presidio compiles it, to tell cheaply whether a text
        # can hold a structured identifier at all.
        self._patterns = [re.compile(p.regex, re.DOTALL | re.MULTILINE)
                          for spec in self.policy.entities.values() for p in spec.patterns]

    def scan(self, text: str) -> list[Finding]:
        """Findings at or above the policy's ``min_score``, in reading order."""
        if not text or not text.strip():
            return []
        text = text.translate(_DIGITS)
        if not any(p.search(text) for p in self._patterns):
            # No pattern matches, so only the person recognizer can find anything, and
            # its scores do not depend on Presidio's context enhancer (it has no context
            # words): running it on the bare tokens gives Presidio's answer in a fraction
            # of the time (most strings a suite ships hold no digits, no @).
            return _resolve(_Result("PERSON", start, end, score)
                            for start, end, score in self._names.find(text, self._nlp(text))
                            if score >= self.policy.min_score)
        results = self._analyzer.analyze(text=text, language=LANGUAGE,
                                         score_threshold=self.policy.min_score)
        return _resolve(results)

    def scan_with_presidio(self, text: str) -> list[Finding]:
        """:meth:`scan` without the shortcut (the tests check both agree)."""
        if not text or not text.strip():
            return []
        return _resolve(self._analyzer.analyze(text=text.translate(_DIGITS), language=LANGUAGE,
                                               score_threshold=self.policy.min_score))

    def high_confidence(self, findings: Iterable[Finding]) -> list[Finding]:
        """The findings the suite loader's privacy gate refuses."""
        return [f for f in findings if f.score >= self.policy.high_confidence]


@dataclass(frozen=True)
class _Result:
    """The fields of Presidio's RecognizerResult that :func:`_resolve` reads."""

    entity_type: str
    start: int
    end: int
    score: float
