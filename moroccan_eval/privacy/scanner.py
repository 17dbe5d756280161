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
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..text import normalize
from .policy import EntitySpec, Policy, load_policy

# Presidio's e-mail recognizer pulls tldextract, which fetches a suffix list on first use;
# we use our own e-mail pattern, and nothing may reach the network.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

LANGUAGE = "xx"  # spaCy's multilingual blank pipeline
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


def _build_engine(policy: Policy) -> Any:
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

    class BlankEngine(SpacyNlpEngine):
        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": LANGUAGE, "model_name": "blank"}])

        def load(self) -> None:
            self.nlp = {LANGUAGE: spacy.blank(LANGUAGE)}  # type: ignore[assignment]

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
    return AnalyzerEngine(nlp_engine=engine, registry=registry,
                          supported_languages=[LANGUAGE], context_aware_enhancer=enhancer)


class _PersonNames:
    """Names from gazetteers (any script), strengthened by a family name or a cue word."""

    def __init__(self, policy: Policy):
        spec = policy.person
        self.spec = spec
        self.first = {normalize(n) for n in policy.words(spec.first_names)}
        self.family = {normalize(n) for n in policy.words(spec.family_names)}
        self.common = {normalize(n) for n in policy.words(spec.not_names)}
        self.cue = _cue_pattern(spec.cues)
        self.weak_cue = _cue_pattern(spec.weak_cues)
        self.never = {normalize(w) for w in spec.never_names}

    def _match(self, words: list[str], i: int, table: set[str]) -> int:
        """How many tokens from ``i`` form a name of ``table`` (0 if none)."""
        for size in (3, 2, 1):
            if i + size <= len(words) and " ".join(words[i:i + size]) in table:
                return size
        return 0

    def find(self, text: str, doc: Any) -> Iterator[tuple[int, int, float]]:
        tokens = [t for t in doc if not t.is_space]
        words = [normalize(t.text) for t in tokens]
        i = 0
        while i < len(tokens):
            size = self._match(words, i, self.first)
            before = normalize(text[:tokens[i].idx], punctuation=True) if i else ""
            strong = bool(before and self.cue.search(before))
            after_cue = strong or bool(before and self.weak_cue.search(before))
            if not size and strong and words[i] not in self.never \
                    and _looks_like_name(tokens[i].text):
                size = 1
            if not size:
                i += 1
                continue
            end = i + size
            family = 0
            while end < len(tokens) and (extra := self._match(words, end, self.family)):
                end += extra
                family += extra
            if family:
                score = self.spec.score_full_name
            elif " ".join(words[i:i + size]) in self.common:
                score = self.spec.score_common_word
            else:
                score = self.spec.score_first_name
            if after_cue:
                score = max(score, self.spec.score_after_cue)
            last = tokens[end - 1]
            yield tokens[i].idx, last.idx + len(last.text), score
            i = end


def _cue_pattern(cues: list[str]) -> re.Pattern[str]:
    """Matches text that ends with one of ``cues`` (and maybe a colon or comma)."""
    if not cues:
        return re.compile(r"(?!)")
    alternatives = sorted((normalize(c, punctuation=True) for c in cues), key=len, reverse=True)
    return re.compile(r"(?:^|[\s,.:;!?(«\"'])(?:" + "|".join(map(re.escape, alternatives))
                      + r")\s*[:,]?\s*$")


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
        self._analyzer = _build_engine(self.policy)

    def scan(self, text: str) -> list[Finding]:
        """Findings at or above the policy's ``min_score``, in reading order."""
        if not text or not text.strip():
            return []
        results = self._analyzer.analyze(text=text.translate(_DIGITS), language=LANGUAGE,
                                         score_threshold=self.policy.min_score)
        return _resolve(results)

    def high_confidence(self, findings: Iterable[Finding]) -> list[Finding]:
        return [f for f in findings if f.score >= self.policy.high_confidence]
