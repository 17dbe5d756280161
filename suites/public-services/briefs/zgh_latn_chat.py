"""The chat rendering of the Amazigh Latin items (zgh_Latn) of public-services, tourism
and the public-services part of variety-id (suite versions 1.2.0 / 1.1.0 / 1.2.0).

Before it, each zgh_Latn text was its zgh_Tfng sibling letter by letter (the audit's
parallel_identity: 96-100%). This renders the same draft the way Latin-script chat
writers type it, as support-intents 1.1.0 did: everyday Darija/French loans for the
words that have one in chat (azul -> salam, lkart -> la carte, ddusi -> dossier ...),
and a chat closer (svp, 3afak, merci, choukran) on a message with none of them.
It is a rule-based rendering of one draft, not an independent writing: the cards say so,
and a native writer's own Latin-script version remains to be collected.

Run from the repository root: ``python suites/public-services/briefs/zgh_latn_chat.py``.
A rendered item carries ``meta.zgh_latn_rendering: chat-1`` and is not rendered again.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

#: draft word (chat spelling, lower case) -> the everyday chat form
SWAPS = {
    "azul": "salam", "nkki": "ana", "nkkni": "7na", "tanmmirt": "merci",
    "3afakum": "svp", "3afak": "svp", "walakin": "mais",
    "lkart": "la carte", "rnumiru": "numéro", "ddusi": "dossier", "lmu3id": "rdv",
    "ssimana": "la semaine", "lmdrasa": "l'école", "lmuqata3a": "la moqataa",
    "l3unwan": "l'adresse", "lmuwaddaf": "le fonctionnaire", "site": "le site",
    "mch7al": "ch7al", "lwraq": "les papiers", "rewraq": "les papiers",
    "atig": "ttaman", "lwrqa": "le ticket", "lmat7af": "le musée", "ttaksi": "taxi",
    "ttubis": "le bus",
}
MARK = "zgh_latn_rendering"
CLOSERS = ("svp", "3afak", "merci", "choukran")
_WORD = re.compile(r"[\w'-]+", re.UNICODE)


def render(text: str) -> str:
    """The chat form of one zgh_Latn text (deterministic: the same text, the same form)."""
    swapped = [False]

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        new = SWAPS.get(word.lower())
        if new is None:
            return word
        swapped[0] = True
        return new.capitalize() if word[0].isupper() else new

    out = _WORD.sub(swap, text)
    if swapped[0]:
        return out
    closer = CLOSERS[int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(CLOSERS)]
    return f"{out.rstrip()} {closer}"


def rewrite(path: Path, variety_field: str = "variety") -> int:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    changed = 0
    for row in rows:
        if row[variety_field] == "zgh_Latn" and MARK not in row.setdefault("meta", {}):
            row["fields"]["text"] = render(row["fields"]["text"])
            row["meta"][MARK] = "chat-1"
            changed += 1
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return changed


if __name__ == "__main__":
    for name in ("public-services/data/routing.jsonl", "public-services/data/priority.jsonl",
                 "tourism/data/questions.jsonl"):
        print(name, rewrite(Path("suites") / name), "zgh_Latn texts rendered")
