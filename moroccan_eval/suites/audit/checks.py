"""The audit's checks. Each takes the rows of one task (what its task type shows of every
item, see :meth:`moroccan_eval.tasks.base.TaskType.audit_view`) and returns results with a
figure, the thresholds it is held to and a status. Nothing here branches on a task's or a
task type's name: what differs between types comes from their audit view."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Literal, TypedDict

import numpy as np

from ... import varieties
from ...text.normalize import normalize
from .textual import (
    BINARY_CUES,
    CONTRAST_WORDS,
    CUE_NAMES,
    chat_features,
    cues,
    latin_words,
    minority_spellings,
    mixed_script_words,
    non_ircam,
    skeleton,
    unconverted,
    unmatched_words,
)

Status = Literal["PASS", "WARN", "FAIL", "INFO"]

#: Splits a model may learn from (few-shot examples, baseline training); every other
#: split (test, test_noisy ...) is evaluated and must not leak from these.
TRAINING_SPLITS = frozenset({"train", "dev"})
#: z of a two-sided 95% interval (normal approximation).
Z95 = 1.959964


class CheckResult(TypedDict):
    """One figure of the audit with its thresholds and status."""

    check: str
    task: str
    scope: str  # a variety, a pair of varieties, a split, or "all"
    figure: float | None
    unit: str  # "%", "points", "items"
    warn: float | None  # the figure warns above this
    fail: float | None  # ... and fails above this
    also_fails: str  # another condition that fails the check, in words ("" if none)
    status: Status
    detail: str
    examples: list[str]


@dataclass
class Row:
    """One item as the audit sees it."""

    id: str
    group: str
    split: str
    variety: str
    text: str
    norm: str
    label: str | None
    reference_text: str | None
    answer_keys: list[str]
    loose_keys: list[str]


def judged(check: str, task: str, scope: str, figure: float, unit: str, warn: float,
           fail: float, detail: str, examples: Sequence[str] = ()) -> CheckResult:
    """A result whose status follows from the figure: above ``fail`` fails, above
    ``warn`` warns."""
    status: Status = "FAIL" if figure > fail else "WARN" if figure > warn else "PASS"
    return {"check": check, "task": task, "scope": scope, "figure": round(figure, 1),
            "unit": unit, "warn": warn, "fail": fail, "also_fails": "", "status": status,
            "detail": detail, "examples": list(examples)[:5]}


def info(check: str, task: str, scope: str, figure: float | None, unit: str,
         detail: str) -> CheckResult:
    """A figure reported for the reader, held to no threshold."""
    return {"check": check, "task": task, "scope": scope,
            "figure": None if figure is None else round(figure, 1), "unit": unit,
            "warn": None, "fail": None, "also_fails": "", "status": "INFO", "detail": detail,
            "examples": []}


def pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def by_variety(rows: Iterable[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        out[row.variety].append(row)
    order = {code: i for i, code in enumerate(varieties.registry())}
    return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def evaluated(rows: Iterable[Row]) -> list[Row]:
    return [row for row in rows if row.split not in TRAINING_SPLITS]


def training(rows: Iterable[Row]) -> list[Row]:
    return [row for row in rows if row.split in TRAINING_SPLITS]


# ------------------------------------------------------------------ similarity


def _ngram_sets(texts: Sequence[str]) -> Any:
    """Binary character 3-gram vectors of texts (scikit-learn sparse matrix)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(analyzer="char", ngram_range=(3, 3), binary=True,
                           lowercase=False, dtype=np.int32).fit(texts)


def jaccard_rows(left: Sequence[str], right: Sequence[str],
                 block: int = 512) -> Iterator[tuple[int, np.ndarray]]:
    """(index of a left text, its character 3-gram Jaccard similarity with every right
    text), computed a block of left texts at a time so memory stays flat on big suites."""
    if not left or not right:
        return
    padded_l = [f" {t} " for t in left]
    padded_r = [f" {t} " for t in right]
    vectorizer = _ngram_sets(padded_l + padded_r)
    a, b = vectorizer.transform(padded_l), vectorizer.transform(padded_r)
    sizes_a = np.asarray(a.sum(axis=1)).ravel()
    sizes_b = np.asarray(b.sum(axis=1)).ravel()[None, :]
    b_t = b.T.tocsc()
    for start in range(0, len(left), block):
        inter = (a[start:start + block] @ b_t).toarray().astype(float)
        union = sizes_a[start:start + block, None] + sizes_b - inter
        sim = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        for offset, row in enumerate(sim):
            i = start + offset
            if len(left[i]) < 2:  # too short for a 3-gram: equal texts are still twins
                row = np.array([1.0 if left[i] == r else 0.0 for r in right])
            yield i, row


def pair_jaccard(left: str, right: str) -> float:
    """Character 3-gram Jaccard similarity of two texts."""
    a = {left[i:i + 3] for i in range(len(left) - 2)} or {left}
    b = {right[i:i + 3] for i in range(len(right) - 2)} or {right}
    return len(a & b) / len(a | b)


# ------------------------------------------------------------------ duplicates


def duplicates(task: str, rows: list[Row], t: Mapping[str, float]) -> list[CheckResult]:
    """Exact and near-duplicate texts (normalised; character 3-gram Jaccard at least
    ``near_duplicate_similarity``) of the same variety: evaluated items with a twin in a
    training split, and evaluated items with a twin in another group of their split."""
    threshold = t["near_duplicate_similarity"]
    leaks: list[str] = []
    within: list[str] = []
    n_eval = 0
    for _, rows_v in by_variety(rows).items():
        ev, tr = evaluated(rows_v), training(rows_v)
        n_eval += len(ev)
        ev = [r for r in ev if r.norm]
        for i, sim in jaccard_rows([r.norm for r in ev], [r.norm for r in tr]):
            j = int(sim.argmax())
            if sim[j] >= threshold:
                leaks.append(f"{ev[i].id} ≈ {tr[j].id} ({sim[j]:.2f})")
        texts = [r.norm for r in ev]
        for i, sim in jaccard_rows(texts, texts) if len(ev) > 1 else iter(()):
            row = ev[i]
            twins = [int(j) for j in np.flatnonzero(sim >= threshold)
                     if ev[j].group != row.group and ev[j].split == row.split]
            if twins:
                twin = max(twins, key=lambda k: sim[k])
                within.append(f"{row.id} ≈ {ev[twin].id} ({sim[twin]:.2f})")
    if not n_eval:
        return []
    return [
        judged("leak_across_splits", task, "all", pct(len(leaks), n_eval), "%",
               t["leak_across_splits_warn"], t["leak_across_splits_fail"],
               f"{len(leaks)} of {n_eval} evaluated items have a (near-)duplicate in a "
               f"training split (same variety, similarity ≥ {threshold:g})", leaks),
        judged("duplicates_within_split", task, "all", pct(len(within), n_eval), "%",
               t["duplicates_within_split_warn"], t["duplicates_within_split_fail"],
               f"{len(within)} of {n_eval} evaluated items have a (near-)duplicate in another "
               f"group of their split (similarity ≥ {threshold:g})", within),
    ]


def shared_groups(task: str, rows: list[Row], t: Mapping[str, float]) -> list[CheckResult]:
    """Groups (one meaning) present both in an evaluated and in a training split."""
    ev = {r.group for r in evaluated(rows)}
    tr = {r.group for r in training(rows)}
    if not ev or not tr:
        return []
    both = sorted(ev & tr)
    return [judged("shared_groups", task, "all", float(len(both)), "groups",
                   t["shared_groups_warn"], t["shared_groups_fail"],
                   f"{len(both)} of {len(ev)} evaluated groups also appear in a training split",
                   both)]


def _key_set(row: Row) -> frozenset[str]:
    return frozenset(normalize(k) for k in row.answer_keys if normalize(k))


def shared_answer_keys(task: str, rows: list[Row], t: Mapping[str, float]) -> list[CheckResult]:
    """Evaluated groups whose answer key is exactly that of a training group: a few-shot
    example or a trained baseline then gives the answer away (leakage by meaning)."""
    ev: dict[str, frozenset[str]] = {}
    tr: dict[frozenset[str], str] = {}
    for row in rows:
        keys = _key_set(row)
        if not keys:
            continue
        if row.split in TRAINING_SPLITS:
            tr.setdefault(keys, row.group)
        else:
            ev.setdefault(row.group, keys)
    if not ev or not tr:
        return []
    shared = [f"{group} ~ {tr[keys]} ({', '.join(sorted(keys))})"
              for group, keys in sorted(ev.items()) if keys in tr]
    return [judged("shared_answer_keys", task, "all", pct(len(shared), len(ev)), "%",
                   t["shared_answer_keys_warn"], t["shared_answer_keys_fail"],
                   f"{len(shared)} of {len(ev)} evaluated groups with an answer key share it "
                   "with a training group", shared)]


# ------------------------------------------------------------------ labels


def label_surfaces(labels: Mapping[str, Sequence[str]]) -> dict[str, list[re.Pattern[str]]]:
    """Per label, word-bounded patterns of its name and aliases (normalised)."""
    out: dict[str, list[re.Pattern[str]]] = {}
    for label, aliases in labels.items():
        forms = {normalize(s) for s in [label, *aliases]} - {""}
        out[label] = [re.compile(rf"(?<!\w){re.escape(f)}(?!\w)") for f in sorted(forms)]
    return out


def label_leakage(task: str, rows: list[Row], labels: Mapping[str, Sequence[str]],
                  t: Mapping[str, float]) -> list[CheckResult]:
    """Per variety: evaluated items whose text names their own label (its name or an
    alias, in any language): the answer is in the question."""
    surfaces = label_surfaces(labels)
    out = []
    for variety, rows_v in by_variety(evaluated(rows)).items():
        rows_v = [r for r in rows_v if r.label is not None]
        if not rows_v:
            continue
        hits = [f"{r.id}: {r.label}" for r in rows_v
                if any(p.search(r.norm) for p in surfaces.get(str(r.label), []))]
        out.append(judged("label_leakage", task, variety, pct(len(hits), len(rows_v)), "%",
                          t["label_leakage_warn"], t["label_leakage_fail"],
                          f"{len(hits)} of {len(rows_v)} items name their own label", hits))
    return out


def _accuracy(predicted: Sequence[str], gold: Sequence[str]) -> float:
    return pct(sum(p == g for p, g in zip(predicted, gold, strict=True)), len(gold))


def _best_rule(features: np.ndarray, labels: list[str]) -> tuple[int, str, str]:
    """The one-cue rule (cue present → label A, absent → label B) that fits the training
    items best: (cue index, label if present, label if absent)."""
    best: tuple[float, int, str, str] = (-1.0, 0, labels[0], labels[0])
    for cue in range(BINARY_CUES):
        has = features[:, cue] > 0
        if has.all() or not has.any():
            continue
        yes = Counter(lab for lab, h in zip(labels, has, strict=True) if h).most_common(1)[0]
        no = Counter(lab for lab, h in zip(labels, has, strict=True) if not h).most_common(1)[0]
        right = (yes[1] + no[1]) / len(labels)
        if right > best[0]:
            best = (right, cue, yes[0], no[0])
    return best[1], best[2], best[3]


def shortcut(task: str, rows: list[Row], t: Mapping[str, float],
             contrast: frozenset[str] = CONTRAST_WORDS) -> list[CheckResult]:
    """A cue-only baseline (punctuation, emoji, contrast words, length: no words of
    meaning) and the best one-cue rule, trained on the training split, scored per variety
    on the test items, beside the char n-gram baseline and the majority baseline. A cue
    score far above the majority baseline, or near char n-grams, means the labels can be
    guessed without reading the text; so does a cue score within ``shortcut_margin``
    points of char n-grams (and more than ``shortcut_min_gain`` above the majority)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ...adapters.baselines import _char_ngram_classifier

    train = [r for r in training(rows) if r.label is not None and r.text]
    labels = [str(r.label) for r in train]
    if len(set(labels)) < 2:
        return []
    if _labels_follow_variety(rows):
        return [info("shortcut", task, "all", None, "", "not applicable: each variety's items "
                     "carry one label, so surface cues (script, digits) are the signal")]
    x_train = np.array([cues(r.text, contrast) for r in train])
    cue_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
        x_train, labels)
    rule_cue, rule_yes, rule_no = _best_rule(x_train, labels)
    ngram = _char_ngram_classifier([r.text for r in train], labels)
    majority = Counter(labels).most_common(1)[0][0]
    out = []
    for variety, rows_v in by_variety(evaluated(rows)).items():
        rows_v = [r for r in rows_v if r.label is not None and r.text]
        if len(rows_v) < 5:
            continue
        gold = [str(r.label) for r in rows_v]
        x = np.array([cues(r.text, contrast) for r in rows_v])
        cue_acc = _accuracy(list(cue_model.predict(x)), gold)
        rule_acc = _accuracy([rule_yes if f[rule_cue] > 0 else rule_no for f in x], gold)
        ngram_acc = _accuracy(list(ngram.predict([r.text for r in rows_v])), gold)
        chance = _accuracy([majority] * len(gold), gold)
        best = max(cue_acc, rule_acc)
        above = best - chance
        result = judged("shortcut", task, variety, above, "points", t["shortcut_warn"],
                        t["shortcut_fail"],
                        f"cue-only {cue_acc:.0f}%, rule {CUE_NAMES[rule_cue]}→{rule_yes} "
                        f"{rule_acc:.0f}%, char n-gram {ngram_acc:.0f}%, majority "
                        f"{chance:.0f}% (n={len(gold)}); figure: best cue score minus majority")
        result["also_fails"] = (f"within {t['shortcut_margin']:g} of char n-gram and > "
                                f"{t['shortcut_min_gain']:g} above majority")
        if ngram_acc - best <= t["shortcut_margin"] and above > t["shortcut_min_gain"]:
            # the surface cues explain about all the n-gram model learns
            result["status"] = "FAIL"
            result["detail"] += f"; within {t['shortcut_margin']:g} points of char n-gram"
        out.append(result)
    return out


def _labels_follow_variety(rows: list[Row]) -> bool:
    """Whether each variety's evaluated items carry (nearly) one label: the variety is
    then what the label says (variety identification), and surface cues such as digits
    or script are its signal, not a shortcut."""
    per_variety = by_variety(r for r in evaluated(rows) if r.label is not None)
    return bool(per_variety) and all(
        Counter(r.label for r in rows_v).most_common(1)[0][1] >= 0.9 * len(rows_v)
        for rows_v in per_variety.values())


# ------------------------------------------------------------------ scripts


def script_purity(task: str, rows: list[Row], allow: frozenset[str],
                  t: Mapping[str, float],
                  vocabulary: frozenset[str] = frozenset()) -> list[CheckResult]:
    """Per variety: items with a word mixing scripts (a Latin letter inside an Arabic
    word, ḷ or ʷ inside a Tifinagh word) or, in Tifinagh, a letter outside IRCAM's
    alphabet, in the text or its reference text; and, in Tifinagh varieties, the share
    of items holding whole Latin words (code-switching: declare the expected ones in
    ``audit.tifinagh_allow``). A Latin word in Tifinagh text that the suite writes in
    Tifinagh elsewhere (``vocabulary``: "tilifun" beside ⵜⵉⵍⵉⴼⵓⵏ) is an unconverted
    draft and counts as mixing."""
    registry = varieties.registry()
    out = []
    for variety, rows_v in by_variety(rows).items():
        tifinagh = variety in registry and registry[variety].script == "Tfng"
        bad: list[str] = []
        latin: list[str] = []
        for r in rows_v:
            found = mixed_script_words(r.text)
            found += [w for w in non_ircam(r.text, allow) if w not in found]
            if tifinagh:
                found += unconverted(r.text, vocabulary, allow)
            if r.reference_text:
                found += mixed_script_words(r.reference_text)
            if found:
                bad.append(f"{r.id}: {', '.join(found[:4])}")
            if tifinagh and (words := [w for w in latin_words(r.text, allow)
                                       if w not in found]):
                latin.append(f"{r.id}: {', '.join(words[:4])}")
        out.append(judged("script_mixing", task, variety, float(len(bad)), "items",
                          t["script_mixing_warn"], t["script_mixing_fail"],
                          f"{len(bad)} of {len(rows_v)} items hold words mixing scripts or "
                          "letters outside IRCAM Tifinagh", bad))
        if tifinagh:
            out.append(judged("tifinagh_latin_words", task, variety,
                              pct(len(latin), len(rows_v)), "%",
                              t["tifinagh_latin_words_warn"], t["tifinagh_latin_words_fail"],
                              f"{len(latin)} of {len(rows_v)} Tifinagh items hold whole Latin "
                              "words not in audit.tifinagh_allow", latin))
    return out


def reference_purity(task: str, rows: list[Row], allow: frozenset[str],
                     t: Mapping[str, float],
                     vocabulary: frozenset[str] = frozenset()) -> list[CheckResult]:
    """Reference texts written in Tifinagh (translation into Amazigh): IRCAM letters
    only inside Tifinagh words, as for items in a Tifinagh variety."""
    refs = [r for r in rows if r.reference_text and sum(
        0x2D30 <= ord(c) <= 0x2D7F for c in r.reference_text) > len(r.reference_text) / 3]
    if not refs:
        return []
    bad = [f"{r.id}: {', '.join(found[:4])}" for r in refs
           if (found := non_ircam(str(r.reference_text), allow)
               + unconverted(str(r.reference_text), vocabulary, allow))]
    return [judged("script_mixing", task, "references (Tifinagh)", float(len(bad)), "items",
                   t["script_mixing_warn"], t["script_mixing_fail"],
                   f"{len(bad)} of {len(refs)} Tifinagh references hold letters outside IRCAM "
                   "Tifinagh inside Tifinagh words, or unconverted Latin words", bad)]


def chat_style(task: str, rows: list[Row]) -> list[CheckResult]:
    """Per variety, shares of evaluated items with features of typed chat (commas,
    letter elongation, emoji, hashtags/mentions, Arabizi digits 2/3/7/9 as letters, no
    final punctuation, words of both Arabic and Latin script) and the share of word
    tokens in a minority spelling of their word (dial beside dyal): figures for the
    reader to compare with real user text."""
    out = []
    for variety, rows_v in by_variety(evaluated(rows)).items():
        rows_v = [r for r in rows_v if r.text]
        if not rows_v:
            continue
        counts: Counter[str] = Counter()
        for r in rows_v:
            counts.update(k for k, v in chat_features(r.text).items() if v)
        shares = {k: pct(counts[k], len(rows_v)) for k in chat_features("")}
        text = ", ".join(f"{k.replace('_', ' ')} {v:.0f}%" for k, v in shares.items())
        minority, tokens = minority_spellings(r.text for r in rows_v)
        out.append(info("chat_features", task, variety, shares["elongation"], "%",
                        f"of {len(rows_v)} items: {text}; words in a minority spelling "
                        f"{pct(minority, tokens):.1f}% of {tokens} tokens of frequent words "
                        "(figure: elongation)"))
    return out


# ------------------------------------------------------------------ parallel items


def parallel_identity(task: str, rows: list[Row], t: Mapping[str, float]) -> list[CheckResult]:
    """Pairs of varieties of one language in two scripts (zgh_Tfng/zgh_Latn,
    ary_Arab/ary_Latn): the share of groups whose two texts have the same consonant
    skeleton, i.e. one is a letter-by-letter transliteration of the other. Such a pair
    counts one text twice and measures no spelling variation."""
    registry = varieties.registry()
    texts: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for r in rows:
        texts[(r.split, r.group)][r.variety] = r.text
    codes = [c for c in by_variety(rows) if c in registry]
    out = []
    for i, a in enumerate(codes):
        for b in codes[i + 1:]:
            va, vb = registry[a], registry[b]
            if va.language != vb.language or va.script == vb.script:
                continue
            pairs = [(key, d[a], d[b]) for key, d in texts.items() if a in d and b in d]
            if not pairs:
                continue
            same = [f"{split}/{group}" for (split, group), x, y in pairs
                    if skeleton(x) == skeleton(y)]
            out.append(judged("parallel_identity", task, f"{a}/{b}", pct(len(same), len(pairs)),
                              "%", t["parallel_identity_warn"], t["parallel_identity_fail"],
                              f"{len(same)} of {len(pairs)} parallel texts are a letter-by-"
                              "letter transliteration of each other", same))
    return out


# ------------------------------------------------------------------ references


def references(task: str, rows: list[Row], t: Mapping[str, float]) -> list[CheckResult]:
    """Reference texts (translation): identical to their source after normalisation;
    and, in a task whose references transliterate their sources (median skeleton
    similarity of source and reference ≥ 0.5), references that rewrite a word instead
    (a source word with no counterpart of similar skeleton in the reference)."""
    pairs = [r for r in rows if r.reference_text is not None]
    if not pairs:
        return []
    same = [r.id for r in pairs if normalize(r.text) == normalize(str(r.reference_text))]
    out = [judged("reference_is_source", task, "all", pct(len(same), len(pairs)), "%",
                  t["reference_is_source_warn"], t["reference_is_source_fail"],
                  f"{len(same)} of {len(pairs)} references equal their source", same)]
    sims = [pair_jaccard(skeleton(r.text), skeleton(str(r.reference_text))) for r in pairs]
    if median(sims) >= 0.5:
        rewrites = [f"{r.id}: {', '.join(words)}" for r in pairs
                    if (words := unmatched_words(r.text, str(r.reference_text)))]
        out.append(judged("rewrites", task, "all", pct(len(rewrites), len(pairs)), "%",
                          t["rewrites_warn"], t["rewrites_fail"],
                          f"{len(rewrites)} of {len(pairs)} references of this "
                          "transliteration task rewrite a word of their source (shown as "
                          "its consonant skeleton)", rewrites))
    return out


def accidental_keys(task: str, rows: list[Row], t: Mapping[str, float]) -> list[CheckResult]:
    """Items whose answer key holds a value matched anywhere in an answer (a number)
    so short (a single digit by default) that an answer mentioning it for any reason
    matches it by accident."""
    keyed = [r for r in evaluated(rows) if r.answer_keys]
    if not keyed:
        return []
    limit = int(t["short_key_chars"])

    def short(row: Row, chars: int) -> list[str]:
        return [k for k in row.loose_keys if len(normalize(k).replace(" ", "")) <= chars]

    found = [f"{r.id}: {', '.join(keys)}" for r in keyed if (keys := short(r, limit))]
    # one character longer: not failed, but shown (a "10" still matches many answers)
    near = sum(1 for r in keyed if short(r, limit + 1))
    return [judged("accidental_keys", task, "all", pct(len(found), len(keyed)), "%",
                   t["accidental_keys_warn"], t["accidental_keys_fail"],
                   f"{len(found)} of {len(keyed)} keyed items have a bare-value key of ≤ "
                   f"{limit} character(s), matched by any answer that mentions it ({near} "
                   f"with one of ≤ {limit + 1})", found)]


# ------------------------------------------------------------------ sample size


def ci_half_width(n: int) -> float:
    """Half-width in points of a 95% interval of an accuracy at p = 0.5 (the widest) over
    ``n`` items, by the binomial normal approximation."""
    return 100.0 * Z95 * math.sqrt(0.25 / n) if n else math.inf


def sample_size(task: str, rows: list[Row], t: Mapping[str, float]) -> list[CheckResult]:
    """Per evaluated split and variety: the 95% CI half-width of an accuracy at the
    current n (binomial normal approximation at p = 0.5, the worst case)."""
    counts = Counter((r.split, r.variety) for r in evaluated(rows))
    order = {code: i for i, code in enumerate(varieties.registry())}
    out = []
    for (split, variety), n in sorted(counts.items(),
                                      key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))):
        scope = variety if split == "test" else f"{split}/{variety}"
        out.append(judged("ci_half_width", task, scope, ci_half_width(n), "points",
                          t["ci_half_width_warn"], t["ci_half_width_fail"],
                          f"n={n}: ±{ci_half_width(n):.1f} points (95%, normal approximation "
                          "at p=0.5)"))
    return out
