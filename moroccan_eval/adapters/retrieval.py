"""``retrieval``: an offline grounded-QA baseline that answers from the task's sources.

The sources are a Markdown page of ``## sections`` with ``- bullet`` facts. The question is
brought to Latin letters (Arabic script and Tifinagh transliterated), matched to a section
by character n-grams of the section titles, and its intent (price, time, transport) picks
the bullet; without a confident section or a recognised intent it declines, as a grounded
assistant should. It gives QA tasks a floor that a model must beat.
"""

from __future__ import annotations

import re
import time

from ..errors import AdapterError
from ..text import normalize
from ..text.translit import arabic_to_arabizi
from .base import Adapter, NoOptions, Request, Response, TaskContext

_TIFINAGH_TO_LATIN = str.maketrans({
    "ⴰ": "a", "ⴱ": "b", "ⴳ": "g", "ⴷ": "d", "ⴹ": "d", "ⴻ": "e", "ⴼ": "f", "ⴽ": "k",
    "ⵀ": "h", "ⵃ": "h", "ⵄ": "3", "ⵅ": "kh", "ⵇ": "q", "ⵉ": "i", "ⵊ": "j", "ⵍ": "l",
    "ⵎ": "m", "ⵏ": "n", "ⵓ": "u", "ⵔ": "r", "ⵕ": "r", "ⵖ": "gh", "ⵙ": "s", "ⵚ": "s",
    "ⵛ": "ch", "ⵜ": "t", "ⵟ": "t", "ⵡ": "w", "ⵢ": "y", "ⵣ": "z", "ⵥ": "z",
})
#: Words that ask for a price, a time or a way to get there, in the seven varieties
#: (after transliteration to Latin letters and normalisation).
INTENTS = {
    "price": ("ch7al", "chhal", "chal", "thmn", "taman", "tamn", "lthmn", "prix", "tarif",
              "combien", "cout", "coute", "mnchk", "mnshk", "atig", "price", "cost", "ticket",
              "billet", "tdkr", "tadkira", "lkhlas", "khlas", "payant", "gratuit", "fabor",
              "batel", "mad", "dh", "drhm", "flous", "lflous", "km", "s3r", "as3ar", "tklf",
              "rsom", "mjan"),
    "time": ("imta", "mta", "waqt", "lwqt", "wqt", "saa", "heure", "heures", "quand",
             "ouvert", "ouvre", "ferme", "horaires", "mlmi", "open", "close", "hours",
             "kay7lo", "kayhlo", "kaysdo", "ysd", "yft7", "ftah", "ghl9", "lwa9t", "saat",
             "depart", "depar", "kaykhrj", "kaybda", "mwa3id", "tft7", "yft7", "tghl9",
             "ghlq", "tghlq", "ytghl"),
    "duration": ("ch7al mn nhar", "ch7al mn yom", "combien de jours", "combien de temps",
                 "delai", "d3lai", "iyam", "ayam", "jours", "days", "how long", "chhar",
                 "mois", "months", "ussan", "wussan", "mda", "lmouda", "moda", "mdda",
                 "garantie", "garanti", "warranty", "damana"),
    "transport": ("kifach", "kifash", "nwsl", "nwsel", "twsl", "wsl", "comment aller",
                  "aller", "transport", "bus", "taxi", "tram", "kar", "tobis", "ltobis",
                  "mamnk", "ad awḍ", "awd", "get there", "reach", "route", "kyf", "wsol",
                  "mwaslat", "nql"),
}
_BULLET_FOR = {"price": re.compile(r"\bMAD\b|free", re.IGNORECASE),
               "time": re.compile(r"\d{1,2}:\d{2}"),
               "duration": re.compile(r"\b(days?|hours|months)\b", re.IGNORECASE),
               "transport": re.compile(r"^getting there", re.IGNORECASE)}
DECLINE = "I don't have that information in the sources."


def to_latin(text: str) -> str:
    return normalize(arabic_to_arabizi(text).translate(_TIFINAGH_TO_LATIN))


def _cued(cue: str, words: set[str], latin: str) -> bool:
    """A cue matches a whole word, a word it begins (Arabic clitics: "s3rha"), or a phrase."""
    if " " in cue:
        return cue in latin
    return cue in words or (len(cue) >= 4 and any(w.startswith(cue) for w in words))


class RetrievalAdapter(Adapter[NoOptions]):
    """Answers grounded questions with the best-matching bullet of the task's sources."""

    cacheable = False
    answers_inline = True  # computed on the loop's thread, never waits
    min_similarity = 0.12

    async def prepare(self, task: TaskContext) -> None:
        if not task.context:
            raise AdapterError(f"baseline 'retrieval' needs the task's sources (context_file); "
                               f"task '{task.name}' has none")
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.input_fields = task.input_fields
        self.sections: list[tuple[str, list[str]]] = []
        for block in re.split(r"^## ", task.context, flags=re.MULTILINE)[1:]:
            title, *lines = block.strip().splitlines()
            bullets = [line.lstrip("- ").strip() for line in lines if line.startswith("- ")]
            self.sections.append((title.strip(), bullets))
        if not self.sections:
            raise AdapterError(f"task '{task.name}': no '## section' in its sources")
        titles = [to_latin(re.sub(r"^\d+\.\s*", "", t)) for t, _ in self.sections]
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5))
        self.title_vectors = self.vectorizer.fit_transform(titles)

    def answer(self, question: str) -> str:
        latin = to_latin(question)
        similarity = (self.vectorizer.transform([latin]) @ self.title_vectors.T).toarray()[0]
        best = int(similarity.argmax())
        words = set(latin.split())
        intent = next((name for name, cues in INTENTS.items() if any(_cued(c, words, latin)
                                                                     for c in cues)), None)
        if similarity[best] < self.min_similarity or intent is None:
            return DECLINE
        bullets = [b for b in self.sections[best][1] if _BULLET_FOR[intent].search(b)]
        return bullets[0] if bullets else DECLINE

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        question = " ".join(str(request.input.get(f, "")) for f in self.input_fields)
        return Response(text=self.answer(question),
                        latency_ms=(time.perf_counter() - started) * 1000)
