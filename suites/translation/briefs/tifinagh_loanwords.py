"""How the French words of the zgh_Tfng texts were written in Tifinagh (translation 1.2.0).

zgh_Tfng text holds only IRCAM letters: French words that the Amazigh messages borrow are
transcribed as they are pronounced (as the suite already did for ⴷⴷⵉⴽⵍⴰⵕⴰⵙⵢⵓⵏ, ⵍⵍⵉⴼⵉⵕⵉⵣⵓⵏ);
acronyms, brand names and codes stay in Latin letters and are declared in suite.yaml
(audit.tifinagh_allow). Run from the repository root: python
suites/translation/briefs/tifinagh_loanwords.py (idempotent), then `moroccan-eval suites
checksum translation --write`. Authored by the moroccan-eval team with an AI assistant;
native review pending.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

LOANWORDS = {
    "copie intégrale": "ⴽⵓⴱⵉ ⴰⵏⵜⵉⴳⵔⴰⵍ",
    "attestation de revenu": "ⴰⵜⵉⵙⵜⴰⵙⵢⵓⵏ ⴷⵓ ⵔⵓⵏⵓ",
    "certificat de conformité": "ⵙⵉⵔⵜⵉⴼⵉⴽⴰ ⴷⵓ ⴽⵓⵏⴼⵓⵔⵎⵉⵜⵉ",
    "agence urbaine": "ⴰⵊⴰⵏⵙ ⵓⵔⴱⵉⵏ",
    "mot de passe": "ⵎⵓⴷⴱⴰⵙ",
    "auto-entrepreneur": "ⵓⵟⵓ-ⴰⵏⵜⵔⵓⴱⵔⵓⵏⵓⵔ",
    "auto-école": "ⵓⵟⵓ-ⵉⴽⵓⵍ",
    "internet": "ⴰⵏⵜⵉⵔⵏⵉⵜ",
    "système": "ⵙⵉⵙⵜⵉⵎ",
    "site": "ⵙⵉⵜ",
    "visa": "ⴼⵉⵣⴰ",
    "lotissement": "ⵍⵓⵜⵉⵙⵎⴰⵏ",
    "convocation": "ⴽⵓⵏⴼⵓⴽⴰⵙⵢⵓⵏ",
    "originaux": "ⵓⵔⵉⵊⵉⵏⵓ",
    "DH": "ⴷⵀ",
    "Tadamon": "ⵜⴰⴹⴰⵎⵓⵏ",
    "Tayssir": "ⵜⴰⵢⵙⵉⵔ",
}
_PATTERN = re.compile(r"(?<![\w-])(" + "|".join(
    re.escape(k) for k in sorted(LOANWORDS, key=len, reverse=True)) + r")(?![\w-])")


def transcribe(text: str) -> str:
    return _PATTERN.sub(lambda m: LOANWORDS[m.group(1)], text)


def main() -> None:
    data = Path(__file__).resolve().parent.parent / "data"
    for path in sorted(data.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        changed = 0
        for row in rows:
            if row["variety"] == "zgh_Tfng":
                new = transcribe(row["fields"]["text"])
                changed += new != row["fields"]["text"]
                row["fields"]["text"] = new
            if path.name == "to_amazigh.jsonl":
                new = transcribe(row["reference"])
                changed += new != row["reference"]
                row["reference"] = new
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                        encoding="utf-8")
        print(f"{path.name}: {changed} texts changed")


if __name__ == "__main__":
    main()
