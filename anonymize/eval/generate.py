"""Builds pii-eval.jsonl: authored sentence templates x fictitious values, with spans.

Templates were written by the project (chat register, per variety); values are generated
here from a fixed seed and belong to nobody (phone numbers, CINs, RIBs, cards, IBANs are
random; names come from the gazetteers of common names). Run from the repository root:

    python anonymize/eval/generate.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).parent
RNG = random.Random(20261125)
EASTERN = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def digits(n: int) -> str:
    return "".join(RNG.choice("0123456789") for _ in range(n))


def phone(variety: str) -> str:
    mobile = RNG.random() < 0.85
    body = RNG.choice("67") + digits(8) if mobile else "5" + RNG.choice("23") + digits(7)
    pairs = " ".join(body[i:i + 2] for i in range(1, 9, 2))
    style = RNG.randrange(6)
    if style == 0:
        out = f"0{body}"
    elif style == 1:
        out = f"0{body[0]} {pairs}"
    elif style == 2:
        out = f"+212 {body[0]} {pairs}"
    elif style == 3:
        out = f"+212{body}"
    elif style == 4:
        out = f"00212-{body[0]}-" + "-".join(body[i:i + 2] for i in range(1, 9, 2))
    else:
        out = f"0{body[0]}." + ".".join(body[i:i + 2] for i in range(1, 9, 2))
    if variety in ("ary_Arab", "arb_Arab") and RNG.random() < 0.4:
        out = out.translate(EASTERN)
    return out


def luhn_complete(prefix: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return prefix + str((10 - total % 10) % 10)


def card() -> str:
    prefix = RNG.choice(["4", "51", "52", "53", "54", "55"])  # Visa, Mastercard
    number = luhn_complete(prefix + digits(15 - len(prefix)))
    return " ".join(number[i:i + 4] for i in range(0, 16, 4)) if RNG.random() < 0.7 else number


def iban() -> str:
    bban = digits(24)
    numeric = int(bban + str(int("M", 36)) + str(int("A", 36)) + "00")
    check = f"{98 - numeric % 97:02d}"
    compact = f"MA{check}{bban}"
    return " ".join(compact[i:i + 4] for i in range(0, 28, 4))


def rib() -> str:
    value = digits(24)
    return f"{value[:3]} {value[3:6]} {value[6:22]} {value[22:]}" if RNG.random() < 0.6 else value


CIN_PREFIX = ["A", "B", "BE", "BK", "BJ", "C", "CD", "D", "EE", "F", "G", "H", "HA", "I", "J",
              "JA", "K", "L", "M", "N", "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z"]


def words(name: str) -> list[str]:
    return [w for w in (HERE.parent / "gazetteers" / name).read_text(encoding="utf-8").splitlines()
            if w and not w.startswith("#")]


def script_of(word: str) -> str:
    if any("\u2d30" <= c <= "\u2d7f" for c in word):
        return "Tfng"
    if any("\u0600" <= c <= "\u06ff" for c in word):
        return "Arab"
    return "Latn"


COMMON = set(words("not_names.txt"))
FIRST = {s: [w for w in words("first_names.txt") if script_of(w) == s and w not in COMMON]
         for s in ("Latn", "Arab", "Tfng")}
FAMILY = {s: [w for w in words("family_names.txt") if script_of(w) == s]
          for s in ("Latn", "Arab", "Tfng")}
UNLISTED = {"Latn": ["Ghita", "Wissal", "Ouiam", "Nizar", "Achraf", "Lamyae"],
            "Arab": ["غيثة", "وصال", "نزار", "أشرف"], "Tfng": ["ⵜⴰⵍⵉⵍⵉⵜ", "ⵎⴰⵙⵉⵍ"]}
SCRIPT = {"ary_Arab": "Arab", "arb_Arab": "Arab", "ary_Latn": "Latn", "fra_Latn": "Latn",
          "zgh_Latn": "Latn", "zgh_Tfng": "Tfng", "ary_fra_mix": "Latn"}


def person(variety: str, full: bool | None = None) -> str:
    script = SCRIPT[variety]
    full = RNG.random() < 0.6 if full is None else full
    first = RNG.choice(FIRST[script])
    if script == "Latn" and variety in ("ary_Latn", "zgh_Latn", "ary_fra_mix") \
            and RNG.random() < 0.3:
        first = first.lower()
    return f"{first} {RNG.choice(FAMILY[script])}" if full else first


VALUES = {
    "PHONE": ("MA_PHONE", phone),
    "EMAIL": ("EMAIL", lambda v: f"{RNG.choice(FIRST['Latn']).lower().replace(' ', '')}."
              f"{RNG.choice(FAMILY['Latn']).lower().replace(' ', '')}{RNG.randrange(99)}@"
              f"{RNG.choice(['gmail.com', 'outlook.fr', 'menara.ma', 'yahoo.fr', 'societe.ma'])}"),
    "CIN": ("MA_CIN", lambda v: RNG.choice(CIN_PREFIX) + digits(RNG.choice([5, 6]))),
    "PASSPORT": ("MA_PASSPORT", lambda v: RNG.choice(["AB", "CD", "GH", "TZ"]) + digits(7)),
    "RIB": ("MA_RIB", lambda v: rib()),
    "IBAN": ("IBAN", lambda v: iban()),
    "ICE": ("MA_ICE", lambda v: "00" + digits(13)),
    "CNSS": ("MA_CNSS", lambda v: digits(9)),
    "CARD": ("CREDIT_CARD", lambda v: card()),
    "PLATE": ("MA_PLATE", lambda v: f"{digits(RNG.choice([4, 5]))}-"
              f"{RNG.choice(['أ', 'ب', 'د', 'A', 'B'])}-{RNG.randrange(1, 90)}"),
    "IP": ("IP_ADDRESS", lambda v: ".".join(str(RNG.randrange(1, 255)) for _ in range(4))),
    "DOB": ("DATE_OF_BIRTH", lambda v: f"{RNG.randrange(1, 29):02d}/{RNG.randrange(1, 13):02d}/"
            f"{RNG.randrange(1960, 2006)}"),
    "PERSON": ("PERSON", person),
    "NAME": ("PERSON", lambda v: person(v, full=True)),
    "UNLISTED": ("PERSON", lambda v: RNG.choice(UNLISTED[SCRIPT[v]])),
}
ADDRESSES = {
    "Latn": ["12 rue Ibn Sina", "derb Sultan n° 14", "hay Salam", "avenue Hassan II n° 220",
             "bd Zerktouni 45", "résidence Al Amal", "lotissement Al Wahda 18"],
    "Arab": ["شارع محمد الخامس رقم 23", "درب السلطان رقم 14", "حي السلام", "زنقة الأطلس رقم 7",
             "إقامة النخيل", "تجزئة الوحدة 18"],
    "Tfng": ["derb Sultan n° 14", "hay Salam"],
}


def fill(template: str, variety: str) -> dict[str, object]:
    text, spans = "", []
    for piece in re.split(r"(\{[A-Z]+\})", template):
        slot = piece[1:-1] if piece.startswith("{") and piece.endswith("}") else None
        if slot == "ADDRESS":
            value = RNG.choice(ADDRESSES[SCRIPT[variety]])
            spans.append({"start": len(text), "end": len(text) + len(value), "entity": "ADDRESS"})
            text += value
        elif slot in VALUES:
            entity, make = VALUES[slot]
            value = make(variety)
            spans.append({"start": len(text), "end": len(text) + len(value), "entity": entity})
            text += value
        else:
            text += piece
    return {"text": text, "spans": spans}


def main() -> None:
    templates = json.loads((HERE / "templates.json").read_text(encoding="utf-8"))
    rows = []
    for variety, groups in templates.items():
        for kind, fills in (("positive", 3), ("hard_negative", 1)):
            for t_index, template in enumerate(groups[kind]):
                for k in range(fills):
                    item = fill(template, variety)
                    rows.append({"id": f"{variety}-{kind[:3]}-{t_index:02d}-{k}",
                                 "variety": variety, **item,
                                 "hard_negative": kind == "hard_negative",
                                 "template": t_index})
    with (HERE / "pii-eval.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(len(rows), "sentences")


if __name__ == "__main__":
    main()
