"""Write the ``test_noisy`` split of a suite's data file: every clean ``test`` item in
Darija (ary_Arab, ary_Latn) and Darija-French code-switching (ary_fra_mix) re-typed the way
people really type chat messages, keeping its group, variety and reference.

    python suites/support-intents/noisy/make_noisy.py suites/support-intents/data/intents.jsonl

The file is rewritten in place: its ``test_noisy`` items are replaced, nothing else changes
(then reseal the suite: ``moroccan-eval suites checksum SUITE --write``). Deterministic: the
same clean text always gives the same noisy text (seeded by item id). Works on any suite's
data file with one text field (``--field``, default ``text``).

Each noisy item is either hand-written (``handwritten.jsonl`` beside this script: one
``{"id": <clean item id>, "text": ..., "noise": [...]}`` a line, written by the authors
for a few items per variety) or made by the rules below; ``meta.noise`` lists what was done
and ``meta.noise_source`` says which (``rules`` or ``handwritten``). Every rule is a habit
of Moroccan chat writing, not random character noise:

- ``spelling``: other common spellings of the same Darija word (dyal/dial, wach/wash,
  bzaf/bzzaf, 9/q, عافاك/عفاك, واش/وش), and the missing hamza of phone keyboards;
- ``elongation``: a stretched letter (bzaaaf, عافاااك, tatweel ـ) for emphasis;
- ``typo``: one slip in a long word (two letters swapped, one dropped or doubled);
- ``punctuation``: commas and full stops dropped, question marks doubled or dropped;
- ``emoji``: one emoji from a pool independent of the label, so none is a cue;
- ``code_switch``: French words in Arabic letters or Latin inside Arabic script
  (ميرسي, سيلفوبلي, "la commande" in an Arabic sentence), Darija words switched to the
  other script in Latin messages (واش, عافاك), French for Darija in Arabizi (svp, merci);
- ``msa``: an MSA word for its Darija one (من فضلك for عافاك, لماذا for علاش, هل for واش),
  as people who learnt to write in MSA mix it into Darija.

Items get two to four rules; a rule that finds nothing to change is skipped, and an item
always ends different from its clean text.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from pathlib import Path

from moroccan_eval.text.translit import outside_placeholders

#: Varieties that get a noisy re-typing, and the split they shadow.
VARIETIES = ("ary_Arab", "ary_Latn", "ary_fra_mix")
NOISY_SPLIT, CLEAN_SPLIT = "test_noisy", "test"
GENERATOR = "make_noisy.py@1"

EMOJI = ["🙏", "😅", "🤔", "😕", "😊", "👍", "🥲", "😩", "🙂", "😬"]
ARABIC = re.compile(r"[\u0600-\u06FF]")

#: Other spellings of the same word, Latin script (Arabizi and code-switched messages).
LATN_SPELLINGS: dict[str, list[str]] = {
    "dyal": ["dial", "dl"], "dyali": ["diali", "dyli"], "dyalha": ["dialha"],
    "dyalkom": ["dialkom", "dyalkoum"], "dyalo": ["dialo"], "dyalna": ["dialna"],
    "wach": ["wash", "wch", "was"], "chno": ["chnou", "achno", "shno"], "bzaf": ["bzzaf", "bezaf"],
    "daba": ["dba", "dabaa"], "kifach": ["kifash", "kifch"], "mzyan": ["mzian", "mezyan"],
    "3afak": ["3fak", "afak", "3afaak"], "3afakom": ["3afakoum", "afakom"],
    "lyoum": ["lyom", "lyouma"], "salam": ["slm", "slt", "salamo 3alikom"],
    "choukran": ["chokran", "shokran", "chkran"], "7ta": ["hta", "7tta"],
    "bghit": ["bghiit", "bgit", "bghet"], "ghadi": ["gha", "ghad", "radi"],
    "mazal": ["mazl", "mazaal"], "ba9i": ["baqi", "ba9y"], "walakin": ["walakine", "wlakin"],
    "walou": ["walo", "walu"], "machi": ["mashi", "mchi"], "3lach": ["3lache", "3lash", "lach"],
    "fin": ["fine", "feen"], "chi": ["shi"], "ch7al": ["ch7l", "sh7al", "chhal"],
    "bach": ["bash", "bch"], "kayn": ["kayen", "kain"], "m3a": ["m3aa", "ma3a"],
    "3ndi": ["3andi", "andi"], "3ndkom": ["3andkom", "3ndkoum"], "khoya": ["khouya", "5oya"],
    "w": ["ou", "o"], "lia": ["lya", "liya"], "9bel": ["qbel", "9bl"],
}
#: Darija words that are also French words: left alone in code-switched messages.
FRENCH_HOMOGRAPHS = frozenset({"fin", "ma", "la", "chi"})
#: Other spellings of the same word, Arabic script.
ARAB_SPELLINGS: dict[str, list[str]] = {
    "واش": ["وش", "واشش"], "عافاك": ["عفاك", "عافاكك"], "عافاكم": ["عفاكم"], "دابا": ["دبا"],
    "كيفاش": ["كيفش", "كفاش"], "شنو": ["شنوا", "آش"], "ماشي": ["مشي"], "بزاف": ["بزااف", "بزّاف"],
    "غادي": ["غا", "غادين"], "ديالي": ["ديالى", "ديالييا"], "ديال": ["دال", "د"], "ليا": ["لي", "ليّا"],
    "مزيان": ["مزيانن", "مزين"], "والو": ["والوو", "ولو"], "واخا": ["وخا"], "باقي": ["باقى", "مازال"],
    "حتى": ["حتا"], "علاش": ["علاشن", "لاش"], "الكوموند": ["الكومند", "الكوماند"],
}
#: Phone keyboards: the hamza forms typed as the bare letter.
HAMZA = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ؤ": "و", "ئ": "ي"})
#: MSA words for Darija ones (the writer switches register mid-message).
MSA: dict[str, dict[str, list[str]]] = {
    "ary_Arab": {"عافاك": ["من فضلك"], "عافاكم": ["من فضلكم"], "علاش": ["لماذا"], "دابا": ["الآن"],
                 "واش": ["هل"], "بغيت": ["أريد"], "فين": ["أين"], "شحال": ["كم"],
                 "ولكن": ["لكن"], "كيفاش": ["كيف"], "شنو": ["ماذا"], "غادي": ["سوف"],
                 "بزاف": ["كثيرا"], "مزيان": ["جيد"], "والو": ["لا شيء"]},
    "ary_Latn": {"3afak": ["min fadlik"], "3afakom": ["min fadlikom"], "3lach": ["limada"],
                 "walakin": ["lakin"], "daba": ["al2an"], "wach": ["hal"], "bzaf": ["katiran"],
                 "choukran": ["chokran jazilan"]},
}
#: Code-switching: word -> what the writer types instead, per variety.
SWITCH: dict[str, dict[str, list[str]]] = {
    "ary_Arab": {"عافاك": ["سيلفوبلي", "svp"], "عافاكم": ["سيلفوبلي", "svp"], "شكرا": ["ميرسي", "merci"],
                 "السلام": ["بونجور", "slt"], "ولكن": ["مي", "mais"], "بزاف": ["تروب", "trop"],
                 "الكوموند": ["la commande", "لاكوموند"], "الكولي": ["le colis", "لوكولي"],
                 "الليفرور": ["le livreur"], "التيليفون": ["le téléphone", "البورطابل"],
                 "اليوم": ["aujourd'hui"], "الكارط": ["la carte"]},
    "ary_Latn": {"3afak": ["svp", "عافاك"], "3afakom": ["svp", "عافاكم"], "choukran": ["merci"],
                 "salam": ["bonjour", "السلام"], "walakin": ["mais"], "bzaf": ["trop"],
                 "lyoum": ["aujourd'hui"], "wach": ["واش"], "daba": ["دابا", "maintenant"],
                 "bghit": ["بغيت", "je veux"], "fin": ["فين", "où"]},
    "ary_fra_mix": {"wach": ["واش"], "3afak": ["عافاك"], "3afakom": ["عافاكم"], "daba": ["دابا"],
                    "bghit": ["بغيت"], "chno": ["شنو"],
                    "bzaf": ["بزاف"], "walakin": ["ولكن"], "3lach": ["علاش"], "kifach": ["كيفاش"],
                    "commande": ["كوموند"], "livreur": ["ليفرور"], "merci": ["ميرسي"],
                    "svp": ["سيلفوبلي"], "واش": ["wach"], "عافاك": ["3afak"], "دابا": ["daba"],
                    "بغيت": ["bghit"], "فين": ["fin"]},
}
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def _swap_words(text: str, table: dict[str, list[str]], rng: random.Random,
                share: float) -> str:
    """Replace words found in ``table`` (matched case-insensitively, whole words), each with
    probability ``share``, at least one when any is found."""
    def run(part: str) -> str:
        spots = [m for m in WORD.finditer(part) if m.group(0).lower() in table]
        if not spots:
            return part
        chosen = {m.start() for m in spots if rng.random() < share} or {rng.choice(spots).start()}
        out, last = [], 0
        for m in spots:
            if m.start() in chosen:
                out += [part[last:m.start()], rng.choice(table[m.group(0).lower()])]
                last = m.end()
        return "".join(out) + part[last:]
    return outside_placeholders(text, run)


def spelling(text: str, variety: str, rng: random.Random) -> str:
    if ARABIC.search(text) and (variety == "ary_Arab" or rng.random() < 0.5):
        text = _swap_words(text, ARAB_SPELLINGS, rng, 0.4)
        return text.translate(HAMZA) if rng.random() < 0.6 else text
    table = LATN_SPELLINGS if variety != "ary_fra_mix" else {
        k: v for k, v in LATN_SPELLINGS.items() if k not in FRENCH_HOMOGRAPHS}
    swapped = _swap_words(text, table, rng, 0.4)
    if rng.random() < 0.3:  # 9 and q, ch and sh are both in use
        swapped = outside_placeholders(swapped, lambda p: p.replace("9", "q").replace("ch", "sh"))
    return swapped


def elongation(text: str, variety: str, rng: random.Random) -> str:
    def run(part: str) -> str:
        words = [m for m in WORD.finditer(part) if len(m.group(0)) >= 3
                 and not any(c.isdigit() or c.isupper() for c in m.group(0))]
        if not words:
            return part
        m = rng.choice(words)
        word = m.group(0)
        if ARABIC.search(word):
            longs = [i for i, c in enumerate(word) if c in "اوي" and i > 0]
            if longs and rng.random() < 0.75:
                i = rng.choice(longs)
                word = word[:i] + word[i] * rng.randint(3, 5) + word[i + 1:]
            else:  # tatweel before the last letter
                word = word[:-1] + "ـ" * rng.randint(2, 4) + word[-1]
        else:
            vowels = [i for i, c in enumerate(word) if c.lower() in "aeiou"]
            i = rng.choice(vowels) if vowels else len(word) - 1
            word = word[:i] + word[i] * rng.randint(3, 5) + word[i + 1:]
        return part[:m.start()] + word + part[m.end():]
    return outside_placeholders(text, run)


def typo(text: str, variety: str, rng: random.Random) -> str:
    def run(part: str) -> str:
        words = [m for m in WORD.finditer(part) if len(m.group(0)) >= 5
                 and m.group(0).isalpha()]
        if not words:
            return part
        m = rng.choice(words)
        w = list(m.group(0))
        i = rng.randrange(1, len(w) - 1)
        kind = rng.choice(["swap", "drop", "double"])
        if kind == "swap":
            w[i], w[i + 1] = w[i + 1], w[i]
        elif kind == "drop":
            del w[i]
        else:
            w.insert(i, w[i])
        return part[:m.start()] + "".join(w) + part[m.end():]
    return outside_placeholders(text, run)


def punctuation(text: str, variety: str, rng: random.Random) -> str:
    def run(part: str) -> str:
        part = re.sub(r"\s*[,،.]\s*(?=\S)", " ", part)
        part = re.sub(r"[.。]\s*$", "", part)
        if rng.random() < 0.5:
            part = re.sub(r"\s*[?؟]", lambda m: rng.choice(["??", "؟؟", "", " ?"])
                          if ARABIC.search(text) else rng.choice(["??", "", " ?", "???"]), part)
        return part
    return outside_placeholders(text, run).strip()


def emoji(text: str, variety: str, rng: random.Random) -> str:
    mark = rng.choice(EMOJI) * rng.choice([1, 1, 2])
    return f"{text} {mark}" if rng.random() < 0.8 else f"{mark} {text}"


def code_switch(text: str, variety: str, rng: random.Random) -> str:
    return _swap_words(text, SWITCH[variety], rng, 0.35)


def msa(text: str, variety: str, rng: random.Random) -> str:
    return _swap_words(text, MSA.get(variety, {}), rng, 0.5)


Rule = Callable[[str, str, random.Random], str]
#: What changes the words, and what changes the surface.
LEXICAL: dict[str, Rule] = {"spelling": spelling, "code_switch": code_switch, "msa": msa}
SURFACE: dict[str, Rule] = {"elongation": elongation, "typo": typo, "punctuation": punctuation,
                            "emoji": emoji}


def noisy_text(text: str, variety: str, item_id: str) -> tuple[str, list[str]]:
    """The noisy re-typing of one clean text and the rules that changed it."""
    rng = random.Random(f"{GENERATOR}|{item_id}")
    lexical = list(LEXICAL)
    if variety == "ary_fra_mix":
        lexical.remove("msa")
    rng.shuffle(lexical)
    surface = rng.sample(list(SURFACE), k=rng.choice([1, 2, 2, 3]))
    applied: list[str] = []
    for name in lexical[: rng.choice([1, 2])] + surface:
        rule = LEXICAL.get(name) or SURFACE[name]
        changed = rule(text, variety, rng)
        if changed != text:
            text, applied = changed, [*applied, name]
    if not applied or applied == ["punctuation"]:  # always some real change
        text, applied = emoji(elongation(text, variety, rng), variety, rng), [
            *applied, "elongation", "emoji"]
    return re.sub(r"\s{2,}", " ", text).strip(), applied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the data file (JSON lines) to add the split to")
    parser.add_argument("--field", default="text", help="the text field to re-type")
    parser.add_argument("--handwritten", type=Path,
                        default=Path(__file__).with_name("handwritten.jsonl"))
    args = parser.parse_args()
    lines = args.data.read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    hand = {}
    if args.handwritten.is_file():
        for line in args.handwritten.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                hand[entry["id"]] = entry
    kept = [i for i in items if i["split"] != NOISY_SPLIT]
    noisy = []
    for item in kept:
        if item["split"] != CLEAN_SPLIT or item["variety"] not in VARIETIES:
            continue
        clean = item["fields"][args.field]
        if item["id"] in hand:
            text, rules, source = hand[item["id"]]["text"], hand[item["id"]]["noise"], "handwritten"
        else:
            text, rules = noisy_text(clean, item["variety"], item["id"])
            source = "rules"
        meta = {"noise": rules, "noise_source": source, "generator": GENERATOR}
        if item["variety"] == "ary_fra_mix":
            meta["script"] = "mixed" if ARABIC.search(text) else "Latn"
        noisy.append({**item, "id": f"{item['group']}-{item['variety']}-noisy",
                      "split": NOISY_SPLIT, "fields": {**item["fields"], args.field: text},
                      "meta": {**{k: v for k, v in item["meta"].items() if k != "script"},
                               **meta}})
    unused = set(hand) - {i["id"] for i in kept}
    if unused:
        raise SystemExit(f"{args.handwritten}: no clean test item with id {sorted(unused)[0]}")
    args.data.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n"
                                 for i in kept + noisy), encoding="utf-8")
    print(f"{args.data}: {len(noisy)} {NOISY_SPLIT} items "
          f"({sum(1 for i in noisy if i['meta']['noise_source'] == 'handwritten')} hand-written)")


if __name__ == "__main__":
    main()
