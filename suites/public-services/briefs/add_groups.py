"""Add the groups written from the 1.3.0 briefs (``routing-1.3.0.md``) to public-services:
one JSON line per group with the situation, its department and priority, its split, its
Amazigh variety and its text in six forms (ary_Arab, ary_Latn, arb_Arab, fra_Latn,
ary_fra_mix and the Amazigh draft in IRCAM Latin orthography). The two Amazigh items are
derived by rule, as for the earlier groups:

- ``zgh_Tfng``: the draft letter by letter in IRCAM Tifinagh; a word with a letter IRCAM
  Latin does not have (o, p, v, é ...), an acronym, or a loan the suite already keeps in
  Latin letters inside Tifinagh (CIN, site, internet ...) stays as written;
- ``zgh_Latn``: the draft in chat spelling (ɣ→gh, x→kh, š→ch, ɛ→3, ḥ→7, emphatics
  undotted), then :func:`zgh_latn_chat.render` (everyday loans, a chat closer).

    python suites/public-services/briefs/add_groups.py NEW.jsonl [NEW.jsonl ...]

Rewrites data/routing.jsonl, data/priority.jsonl (clean items; then re-run the noisy
generator) and appends the situations to routing-1.3.0.md.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from zgh_latn_chat import MARK, render

SUITE = Path(__file__).resolve().parent.parent
VARIETIES = ("ary_Arab", "ary_Latn", "arb_Arab", "fra_Latn", "zgh_Tfng", "zgh_Latn",
             "ary_fra_mix")
_TIFINAGH = {"gʷ": "ⴳⵯ", "kʷ": "ⴽⵯ", "a": "ⴰ", "b": "ⴱ", "d": "ⴷ", "ḍ": "ⴹ", "e": "ⴻ",
             "f": "ⴼ", "g": "ⴳ", "h": "ⵀ", "ḥ": "ⵃ", "ɛ": "ⵄ", "i": "ⵉ", "j": "ⵊ", "k": "ⴽ",
             "l": "ⵍ", "m": "ⵎ", "n": "ⵏ", "q": "ⵇ", "ɣ": "ⵖ", "r": "ⵔ", "ṛ": "ⵕ", "s": "ⵙ",
             "ṣ": "ⵚ", "š": "ⵛ", "t": "ⵜ", "ṭ": "ⵟ", "u": "ⵓ", "w": "ⵡ", "x": "ⵅ", "y": "ⵢ",
             "z": "ⵣ", "ẓ": "ⵥ"}
_CHAT = [("gʷ", "gw"), ("kʷ", "kw"), ("ʷ", "w"), ("ɣ", "gh"), ("x", "kh"), ("š", "ch"),
         ("ɛ", "3"), ("ḥ", "7"), ("ḍ", "d"), ("ṭ", "t"), ("ṣ", "s"), ("ẓ", "z"), ("ṛ", "r")]
_LETTERS = re.compile(r"gʷ|kʷ|.", re.DOTALL)
_WORD = re.compile(r"<[A-Z_]+_\d+>|[^\W\d_][\wʷ'’-]*", re.UNICODE)


def latin_loans(rows: list[dict]) -> set[str]:
    """Words the suite keeps in Latin letters inside its Tifinagh items."""
    return {w.lower() for r in rows if r["variety"] == "zgh_Tfng"
            for w in re.findall(r"[A-Za-zÀ-ÿ'’-]+", re.sub(r"<[A-Z_]+_\d+>", "",
                                                         r["fields"]["text"]))}


def to_tifinagh(draft: str, loans: set[str]) -> str:
    def word(match: re.Match[str]) -> str:
        w = match.group(0)
        letters = _LETTERS.findall(w.lower())
        if (w.startswith("<") or w.lower() in loans or (w.isupper() and len(w) > 1)
                or not all(c in _TIFINAGH or c in "-'’" for c in letters)):
            return w
        return "".join(_TIFINAGH.get(c, c) for c in letters)
    return _WORD.sub(word, draft)


def to_chat(draft: str) -> str:
    text = draft
    for old, new in _CHAT:
        text = text.replace(old, new)
    return render(text)


def main(paths: list[str]) -> None:
    files = {task: SUITE / "data" / f"{task}.jsonl" for task in ("routing", "priority")}
    data = {task: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            for task, path in files.items()}
    loans = latin_loans(data["routing"])
    groups = [json.loads(line) for p in paths
              for line in Path(p).read_text(encoding="utf-8").splitlines() if line.strip()]
    existing = {r["group"] for r in data["routing"]}
    numbers = {"test": max(int(g[1:]) for g in existing if re.fullmatch(r"t\d+", g)),
               "train": max(int(g[2:]) for g in existing if re.fullmatch(r"tr\d+", g))}
    briefs = []
    for g in groups:
        split = g["split"]
        numbers[split] += 1
        group = ("t" if split == "test" else "tr") + f"{numbers[split]:03d}"
        texts = {v: g[v] for v in ("ary_Arab", "ary_Latn", "arb_Arab", "fra_Latn",
                                   "ary_fra_mix")}
        texts["zgh_Tfng"] = to_tifinagh(g["ircam_latin_draft"], loans)
        texts["zgh_Latn"] = to_chat(g["ircam_latin_draft"])
        for task, reference in (("routing", g["department"]), ("priority", g["priority"])):
            for variety in VARIETIES:
                meta: dict[str, str] = {}
                if variety.startswith("zgh"):
                    meta = {"amazigh_variety": g["amazigh_variety"],
                            "ircam_latin_draft": g["ircam_latin_draft"]}
                    if variety == "zgh_Latn":
                        meta[MARK] = "chat-1"
                if variety == "ary_fra_mix":
                    meta = {"script": "mixed" if re.search("[\u0600-\u06FF]", texts[variety])
                            else "Latn"}
                data[task].append({"id": f"{group}-{variety}", "group": group, "split": split,
                                   "variety": variety, "fields": {"text": texts[variety]},
                                   "consent_id": "authored", "meta": meta,
                                   "reference": reference})
        briefs.append(f"| {group} | {split} | {g['department']} | {g['priority']} | "
                      f"{g['amazigh_variety']} | {g['brief']} |")
    for task, path in files.items():
        clean = [r for r in data[task] if r["split"] != "test_noisy"]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in clean),
                        encoding="utf-8")
    with (Path(__file__).parent / "routing-1.3.0.md").open("a", encoding="utf-8") as out:
        out.write("\n".join(briefs) + "\n")
    print(f"{len(groups)} groups added")


if __name__ == "__main__":
    main(sys.argv[1:])
