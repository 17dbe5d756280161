"""Answer parsing and metrics with bootstrap confidence intervals and paired deltas.

Everything is computed with vectorised numpy on label indices; bootstrap resamples are
drawn as multinomial counts over distinct (reference, prediction) cells, so 1,000
resamples cost the same for 100 items as for 1,000,000. ``evaluate``'s canned metrics are not
used: they are fetched from the Hugging Face Hub at load time and fail offline.
The macro-F1 here equals ``sklearn.metrics.f1_score(average="macro", zero_division=0)``
over the labels present in references or predictions (tested).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any

import numpy as np

from . import varieties
from .suites import LabelSpec
from .text import normalize

DEFAULT_BOOTSTRAP = 1000
MISSING = -1  # label index of an unparseable or failed answer


class AnswerParser:
    """Turns a model's raw output into the value scored against the reference. An answer is
    correct when it equals the reference; parsers with richer references override that."""

    def parse(self, text: str | None) -> Any:
        raise NotImplementedError

    def parse_response(self, record: Mapping[str, Any]) -> Any:
        """The parsed answer of a prediction record (parsers that read more than the text,
        such as tool calls, override this)."""
        return self.parse(record.get("output"))

    def correct(self, parsed: Any, reference: Any) -> bool:
        return parsed is not None and parsed == reference

    def judge(self, parsed: Any, reference: Any) -> dict[str, Any]:
        """The per-item judgements stored on the record: ``correct``, and whatever else a
        task type scores (parsers that judge more override this to work it out once)."""
        return {"correct": self.correct(parsed, reference)}


class LabelParser(AnswerParser):
    """Maps a free-text reply to one label, insensitive to case, accents, Arabic
    diacritics and orthographic variants, ``_``/``-``/spaces. Aliases from the task file
    let a model answer in French, Arabic or Darija."""

    def __init__(self, labels: Mapping[str, LabelSpec | Mapping[str, Any]]):
        self.exact: dict[str, str] = {}
        patterns: list[tuple[str, str]] = []
        for label, spec in labels.items():
            aliases = spec.aliases if isinstance(spec, LabelSpec) else spec.get("aliases", [])
            for surface in [label, *aliases]:
                key = normalize(surface)
                if key:
                    self.exact.setdefault(key, label)
                    patterns.append((key, label))
        patterns.sort(key=lambda kv: len(kv[0]), reverse=True)
        self.patterns = [
            (re.compile(rf"(?<!\w){re.escape(key)}(?!\w)"), label) for key, label in patterns
        ]

    def parse(self, text: str | None) -> str | None:
        """The label the reply names: an exact match, else the label mentioned first
        (longest alias wins at equal position); ``None`` if no label is mentioned."""
        if not text:
            return None
        norm = normalize(text)
        if norm in self.exact:
            return self.exact[norm]
        best: tuple[int, int, str] | None = None
        for pattern, label in self.patterns:
            match = pattern.search(norm)
            if match and (best is None or (match.start(), -len(match.group())) < best[:2]):
                best = (match.start(), -len(match.group()), label)
        return best[2] if best else None


# --------------------------------------------------------------------------- metrics
#
# A sample of n (reference, prediction) pairs is stored as its k distinct pairs ("cells")
# and a weight per cell. A bootstrap resample of n items with replacement is exactly a
# multinomial draw of n over those cells, so metrics are computed from (B, k) weight
# matrices: O(B·k) work instead of O(B·n), identical in distribution.

BatchMetric = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _accuracy(true: np.ndarray, pred: np.ndarray, weights: np.ndarray,
              labels: np.ndarray) -> np.ndarray:
    return np.asarray(weights @ (true == pred) / weights.sum(axis=-1))


def _macro_f1(true: np.ndarray, pred: np.ndarray, weights: np.ndarray,
              labels: np.ndarray) -> np.ndarray:
    total = np.zeros(weights.shape[0])
    if labels.size == 0:
        return total
    for label in labels:
        is_true, is_pred = true == label, pred == label
        tp = weights @ (is_true & is_pred)
        denom = weights @ is_true + weights @ is_pred
        total += np.divide(2 * tp, denom, out=np.zeros_like(total), where=denom > 0)
    return total / labels.size


METRICS: dict[str, BatchMetric] = {"accuracy": _accuracy, "macro_f1": _macro_f1}

#: Whether a larger value is better, per metric. Reports sort, colour and compute Pareto
#: fronts with it; error-type metrics (WER, attack success rate) will be False.
HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "macro_f1": True}


def _interval(samples: np.ndarray) -> list[float] | None:
    finite = samples[np.isfinite(samples)]  # a resample may leave a rate undefined
    if finite.size == 0:
        return None
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [round(float(lo), 6), round(float(hi), 6)]


def _excludes_zero(ci: list[float] | None) -> bool:
    return ci is not None and (ci[0] > 0 or ci[1] < 0)


def _point(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None


def _cells(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of the stacked columns and how often each occurs."""
    uniq, freq = np.unique(np.stack(columns, axis=1), axis=0, return_counts=True)
    return uniq, freq


def _present(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([true, pred[pred != MISSING]]))


def metric_with_ci(
    metric: str, true: np.ndarray, pred: np.ndarray, n_boot: int, rng: np.random.Generator
) -> dict[str, Any]:
    """Point estimate and percentile-bootstrap 95% CI of one metric."""
    if true.size == 0:
        return {"value": None, "ci": None}
    fn = METRICS[metric]
    cells, freq = _cells([true, pred])
    labels = _present(true, pred)
    value = float(fn(cells[:, 0], cells[:, 1], freq[None, :], labels)[0])
    draws = rng.multinomial(true.size, freq / true.size, size=n_boot)
    return {"value": round(value, 6), "ci": _interval(fn(cells[:, 0], cells[:, 1], draws,
                                                         labels))}


def paired_delta(
    metric: str,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_boot: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Metric(variety) − metric(reference) over the same groups, with a paired bootstrap
    CI: groups are resampled once and both sides are scored on the same resample."""
    true_v, pred_v, true_r, pred_r = pairs
    n = true_v.size
    if n == 0:
        return {"value": None, "ci": None, "n_pairs": 0, "significant": False}
    fn = METRICS[metric]
    cells, freq = _cells([true_v, pred_v, true_r, pred_r])
    labels_v, labels_r = _present(true_v, pred_v), _present(true_r, pred_r)

    def delta(weights: np.ndarray) -> np.ndarray:
        return (fn(cells[:, 0], cells[:, 1], weights, labels_v)
                - fn(cells[:, 2], cells[:, 3], weights, labels_r))

    value = float(delta(freq[None, :])[0])
    ci = _interval(delta(rng.multinomial(n, freq / n, size=n_boot)))
    return {
        "value": round(value, 6),
        "ci": ci,
        "n_pairs": int(n),
        "significant": _excludes_zero(ci),
    }


def score_classification(
    records: Iterable[Mapping[str, Any]],
    labels: list[str],
    metrics: list[str],
    reference_variety: str,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Score prediction records (``group``, ``variety``, ``reference``, ``parsed``,
    ``error``) per variety: n, errors, each metric with its CI, and paired deltas vs the
    reference variety. Records skipped by a spend cap (``skipped``) are not scored."""
    index = {label: i for i, label in enumerate(labels)}
    by_variety: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"errors": 0, "unparsed": 0})
    for rec in records:
        if rec.get("skipped"):
            continue
        parsed = rec.get("parsed")
        variety = rec["variety"]
        if rec.get("error"):
            counts[variety]["errors"] += 1
        elif parsed is None:
            counts[variety]["unparsed"] += 1
        by_variety[variety][rec["group"]] = (
            index.get(rec["reference"], MISSING),
            index.get(parsed, MISSING) if parsed is not None else MISSING,
        )

    result: dict[str, Any] = {}
    reference = by_variety.get(reference_variety, {})
    order = {code: i for i, code in enumerate(varieties.registry())}
    for variety in sorted(by_variety, key=lambda code: (order.get(code, len(order)), code)):
        rows = by_variety[variety]
        true = np.fromiter((t for t, _ in rows.values()), dtype=np.int32, count=len(rows))
        pred = np.fromiter((p for _, p in rows.values()), dtype=np.int32, count=len(rows))
        # A separate, fixed stream per variety and metric keeps every number reproducible
        # whatever other varieties are in the run.
        entry: dict[str, Any] = {"n": len(rows), **counts[variety]}
        shared = [g for g in rows if g in reference]
        pairs = (
            np.array([rows[g][0] for g in shared], dtype=np.int32),
            np.array([rows[g][1] for g in shared], dtype=np.int32),
            np.array([reference[g][0] for g in shared], dtype=np.int32),
            np.array([reference[g][1] for g in shared], dtype=np.int32),
        )
        deltas: dict[str, Any] = {}
        for metric in metrics:
            rng = np.random.default_rng([seed, stable_id(variety), stable_id(metric)])
            entry[metric] = metric_with_ci(metric, true, pred, n_boot, rng)
            if variety != reference_variety and reference:
                deltas[metric] = paired_delta(metric, pairs, n_boot, rng)
        if deltas:
            entry["delta_vs_reference"] = deltas
        result[variety] = entry
    return result


def stable_id(name: str) -> int:
    """A process-independent integer for seeding (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


# --------------------------------------------------------------------------- generation
#
# chrF++ and BLEU come from sacrebleu. Both are corpus metrics whose sentence statistics
# add up, so a bootstrap resample is again a weight vector over sentences: the weighted sum
# of the statistics gives the resampled corpus score without re-tokenising anything.

GENERATION_METRICS = ("chrf", "bleu")
HIGHER_IS_BETTER.update({"chrf": True, "bleu": True})
_ANSWER_LABEL = re.compile(
    r"^\s*(?:translation|traduction|transliteration|answer|réponse|الترجمة|الجواب)\s*:\s*",
    re.IGNORECASE)


class TextParser(AnswerParser):
    """Cleans a free-text answer: first non-empty paragraph, no "Translation:" label, no
    surrounding quotes. ``None`` for an empty answer."""

    def parse(self, text: str | None) -> str | None:
        if not text:
            return None
        paragraphs = [p.strip() for p in text.strip().split("\n\n") if p.strip()]
        if not paragraphs:
            return None
        cleaned = _ANSWER_LABEL.sub("", paragraphs[0]).strip().strip("\"'«»“”").strip()
        return cleaned or None


def _sacrebleu_metric(metric: str) -> Any:
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    if metric == "chrf":
        return CHRF(word_order=2)  # chrF++
    return BLEU(tokenize="intl")


@cache
def metric_signature(metric: str) -> str:
    """sacrebleu's reproducibility signature of a generation metric (one reference)."""
    scorer = _sacrebleu_metric(metric)
    scorer.corpus_score(["x"], [["x"]])  # sacrebleu signs only an evaluated metric
    name = "chrF++" if metric == "chrf" else "BLEU"
    return f"{name}|{scorer.get_signature()}"


def _stats(metric: str, hyps: list[str], refs: list[str]) -> tuple[Any, np.ndarray]:
    scorer = _sacrebleu_metric(metric)
    return scorer, np.asarray(scorer._extract_corpus_statistics(hyps, [refs]), dtype=float)


def _corpus(scorer: Any, weights: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Corpus score (0-1) for each row of ``weights`` over the sentences of ``stats``."""
    totals = weights @ stats
    return np.array([scorer._compute_score_from_stats(list(row)).score / 100 for row in totals])


Scorer = Callable[[np.ndarray], np.ndarray]


def _generation_scorer(metric: str, rows: list[tuple[str, str]]) -> Scorer:
    scorer, stats = _stats(metric, [h for h, _ in rows], [r for _, r in rows])
    return lambda weights: _corpus(scorer, weights, stats)


def _collect(
    records: Iterable[Mapping[str, Any]], payload: Callable[[Mapping[str, Any]], Any],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, int]]]:
    """Rows per variety and group (``payload`` of each record), with failure counts;
    records skipped by a spend cap are left out."""
    by_variety: dict[str, dict[str, Any]] = defaultdict(dict)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"errors": 0, "unparsed": 0})
    for rec in records:
        if rec.get("skipped"):
            continue
        variety = rec["variety"]
        if rec.get("error"):
            counts[variety]["errors"] += 1
        elif rec.get("parsed") is None:
            counts[variety]["unparsed"] += 1
        by_variety[variety][rec["group"]] = payload(rec)
    return by_variety, counts


def _score_resampled(
    by_variety: Mapping[str, Mapping[str, Any]],
    counts: Mapping[str, Mapping[str, int]],
    metrics: list[str],
    reference_variety: str,
    make_scorer: Callable[[str, list[Any]], Scorer],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Shared by corpus-style metrics: per variety, each metric on the variety's groups
    with a bootstrap CI, and the paired delta to the reference variety over shared groups
    (groups resampled once, both sides scored on the same resample). ``make_scorer`` turns
    the rows of some groups into a function from resample weights to metric values."""
    order = {code: i for i, code in enumerate(varieties.registry())}
    reference = by_variety.get(reference_variety, {})
    result: dict[str, Any] = {}
    for variety in sorted(by_variety, key=lambda code: (order.get(code, len(order)), code)):
        rows = by_variety[variety]
        groups = list(rows)
        n = len(groups)
        entry: dict[str, Any] = {"n": n, **counts[variety]}
        shared = [g for g in groups if g in reference]
        deltas: dict[str, Any] = {}
        for metric in metrics:
            rng = np.random.default_rng([seed, stable_id(variety), stable_id(metric)])
            score = make_scorer(metric, [rows[g] for g in groups])
            draws = rng.multinomial(n, np.full(n, 1 / n), size=n_boot)
            entry[metric] = {"value": _point(score(np.ones((1, n)))[0]),
                             "ci": _interval(score(draws))}
            if variety != reference_variety and shared:
                own = make_scorer(metric, [rows[g] for g in shared])
                ref = make_scorer(metric, [reference[g] for g in shared])
                k = len(shared)
                ones = np.ones((1, k))
                point = _point(own(ones)[0] - ref(ones)[0])
                paired = rng.multinomial(k, np.full(k, 1 / k), size=n_boot)
                ci = _interval(own(paired) - ref(paired))
                if point is not None:
                    deltas[metric] = {"value": point, "ci": ci, "n_pairs": k,
                                      "significant": _excludes_zero(ci)}
        if deltas:
            entry["delta_vs_reference"] = deltas
        result[variety] = entry
    return result


def _score_texts(records: Iterable[Mapping[str, Any]], metrics: list[str],
                 reference_variety: str, make_scorer: Callable[[str, list[Any]], Scorer],
                 n_boot: int, seed: int) -> dict[str, Any]:
    """Scores of (output text, reference text) pairs; a failed answer is an empty text."""
    by_variety, counts = _collect(
        records, lambda rec: (str(rec.get("parsed") or ""), str(rec["reference"])))
    return _score_resampled(by_variety, counts, metrics, reference_variety, make_scorer,
                            n_boot, seed)


def score_generation(
    records: Iterable[Mapping[str, Any]],
    metrics: list[str],
    reference_variety: str,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Per variety (the source variety): n, errors, each metric with its bootstrap CI and
    the paired delta to the reference variety over shared groups. A failed or empty
    answer is scored as an empty hypothesis, never dropped."""
    return _score_texts(records, metrics, reference_variety, _generation_scorer, n_boot, seed)


# --------------------------------------------------------------------------- grounded QA
#
# An answer to an answerable question is right when it states every fact of the answer key
# (numbers, prices, times) and does not decline; an answer to a question the sources do not
# cover is right when it declines. Both are per-item yes/no outcomes, so their intervals and
# paired deltas come from the classification machinery above.

QA_METRICS = ("answer_accuracy", "refusal_accuracy", "answer_chrf")
HIGHER_IS_BETTER.update({metric: True for metric in QA_METRICS})
#: A clock time (10:30, 10h30, 10h, ١٠:٣٠ after normalisation) in answers and arguments.
TIME_FACT = re.compile(r"(?<!\d)(\d{1,2})\s*(?::|h|H)\s*(\d{2})?(?!\d)")
_NUMBER_FACT = re.compile(r"(?<![\d:])\d+(?:[.,]\d+)?(?![\d:])")


def _normal_facts(text: str) -> set[str]:
    """Times as H:MM and numbers without leading zeros, from any script's digits."""
    text = normalize(text, punctuation=True)
    found = {f"{int(h)}:{m or '00'}" for h, m in TIME_FACT.findall(text)}
    without_times = TIME_FACT.sub(" ", text)
    found |= {n.replace(",", ".").lstrip("0") or "0" for n in _NUMBER_FACT.findall(without_times)}
    return found


class QAParser(TextParser):
    """Grounded-QA answers: the whole cleaned text, whether it declines, whether it is right."""

    def __init__(self, refusals: list[str]):
        self.refusals = [normalize(r) for r in refusals if normalize(r)]

    def parse(self, text: str | None) -> str | None:
        cleaned = text.strip() if text else ""
        return _ANSWER_LABEL.sub("", cleaned).strip() or None

    def refused(self, text: str | None) -> bool:
        norm = normalize(text or "")
        return any(phrase in norm for phrase in self.refusals)

    def judge(self, parsed: Any, reference: Any) -> dict[str, Any]:
        return {"correct": self.correct(parsed, reference), "refused": self.refused(parsed)}

    def correct(self, parsed: str | None, reference: Any) -> bool:
        if not parsed:
            return False
        if not reference.get("answerable"):
            return self.refused(parsed)
        stated = _normal_facts(parsed)
        return not self.refused(parsed) and all(
            _normal_facts(fact) <= stated for fact in reference["facts"])


def _qa_outcome(metric: str, record: Mapping[str, Any]) -> dict[str, str]:
    """A QA record as a two-label classification record for one metric."""
    if metric == "answer_accuracy":
        return {"reference": "yes", "parsed": "yes" if record.get("correct") else "no"}
    return {"reference": "answer" if record["reference"].get("answerable") else "refuse",
            "parsed": "refuse" if record.get("refused") else "answer"}


def score_qa(
    records: Iterable[Mapping[str, Any]],
    metrics: list[str],
    reference_variety: str,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """``answer_accuracy`` and ``refusal_accuracy`` per variety with CIs and paired deltas,
    and ``answer_chrf``: corpus chrF++ of the answers against the reference answers
    (``reference.answer``), where a wrong answer — facts missing, an invented policy, a
    refusal of an answerable question — counts as an empty one, so it scores 0."""
    records = [r for r in records if not r.get("skipped")]
    result: dict[str, Any] = {}
    for metric in metrics:
        if metric == "answer_chrf":
            scored = _score_resampled(*_collect(records, _qa_text_pair), ["chrf"],
                                      reference_variety, _generation_scorer, n_boot, seed)
            key = "chrf"
        else:
            as_labels = [{**r, **_qa_outcome(metric, r)} for r in records]
            labels = ["yes", "no"] if metric == "answer_accuracy" else ["answer", "refuse"]
            scored = score_classification(as_labels, labels, ["accuracy"], reference_variety,
                                          n_boot=n_boot, seed=seed + stable_id(metric) % 1000)
            key = "accuracy"
        for variety, entry in scored.items():
            target = result.setdefault(variety, {"n": entry["n"], "errors": entry["errors"],
                                                 "unparsed": 0})
            target[metric] = entry[key]
            if key in entry.get("delta_vs_reference", {}):
                target.setdefault("delta_vs_reference", {})[metric] = \
                    entry["delta_vs_reference"][key]
    for rec in records:  # unparsed = empty answers (not errors)
        if not rec.get("error") and rec.get("parsed") is None and rec["variety"] in result:
            result[rec["variety"]]["unparsed"] += 1
    return result


def _qa_text_pair(record: Mapping[str, Any]) -> tuple[str, str]:
    """(hypothesis, reference answer) for ``answer_chrf``: a wrong answer is empty."""
    answer = str(record.get("parsed") or "") if record.get("correct") else ""
    return answer, str(record["reference"].get("answer") or "")


# --------------------------------------------------------------------------- extraction
#
# The model answers with a JSON object of fields. Values are compared after normalisation
# (amounts as numbers, dates as ISO dates, text without case, accents or extra spaces). Per
# item we count true positives (field present and right), false positives (present and
# wrong, or not asked for) and false negatives (asked for and missing or wrong); the counts
# add up, so micro-F1 and its bootstrap come from weighted sums. An answer that is not a
# JSON object misses every field.

EXTRACTION_METRICS = ("field_f1", "exact_match")
HIGHER_IS_BETTER.update({metric: True for metric in EXTRACTION_METRICS})
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_AMOUNT = re.compile(r"(\d{1,3}(?:[ .,\u202f]\d{3})*|\d+)(?:[.,](\d{1,2}))?\s*(?:mad|dh|dhs|درهم)?")
_MONTHS = {name: i for i, names in enumerate([
    ("janvier", "january", "يناير", "janvier"), ("fevrier", "february", "فبراير"),
    ("mars", "march", "مارس"), ("avril", "april", "ابريل", "أبريل"), ("mai", "may", "ماي"),
    ("juin", "june", "يونيو"), ("juillet", "july", "يوليوز", "يوليو"),
    ("aout", "august", "غشت"), ("septembre", "september", "شتنبر"),
    ("octobre", "october", "اكتوبر", "أكتوبر"), ("novembre", "november", "نونبر"),
    ("decembre", "december", "دجنبر")], start=1) for name in names}


def normalize_value(value: Any) -> str:
    """A field value in comparable form: amounts as plain decimals, dates as YYYY-MM-DD,
    other text normalised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{float(value):.2f}"
    text = normalize(str(value), punctuation=True)
    date = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
    if date:
        return f"{int(date[3]):04d}-{int(date[2]):02d}-{int(date[1]):02d}"
    iso = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if iso:
        return f"{int(iso[1]):04d}-{int(iso[2]):02d}-{int(iso[3]):02d}"
    written = re.fullmatch(r"(\d{1,2})\s+(\S+)\s+(\d{4})", text)
    if written and normalize(written[2]) in _MONTHS:
        return f"{int(written[3]):04d}-{_MONTHS[normalize(written[2])]:02d}-{int(written[1]):02d}"
    amount = _AMOUNT.fullmatch(text)
    if amount:
        whole = re.sub(r"[ .,\u202f]", "", amount[1])
        return f"{int(whole)}.{(amount[2] or '0').ljust(2, '0')}"
    return " ".join(text.split())


def line_key(line: Any) -> tuple[str, str, str]:
    """A line item as compared: quantity, unit price and amount, normalised. Descriptions
    are not compared (they are written in the document's language)."""
    line = line if isinstance(line, dict) else {}
    return (normalize_value(line.get("quantity")), normalize_value(line.get("unit_price")),
            normalize_value(line.get("amount")))


class JSONParser(TextParser):
    """The first JSON object of an answer (code fences and prose around it are ignored);
    ``None`` when there is none."""

    def parse(self, text: str | None) -> Any:
        import json

        match = _JSON_OBJECT.search(text or "")
        if not match:
            return None
        try:
            value = json.loads(match.group(0))
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def field_counts(self, parsed: Any, reference: dict[str, Any]
                     ) -> dict[str, tuple[int, int, int]]:
        """(true positives, false positives, false negatives) per expected field. A scalar
        field is one unit; a list field (invoice line items) counts each line, matched on
        its numbers (see :func:`line_key`); fields not asked for are false positives under
        the key ``""``."""
        predicted = parsed if isinstance(parsed, dict) else {}
        out: dict[str, tuple[int, int, int]] = {}
        for key, expected in reference.items():
            value = predicted.get(key)
            if isinstance(expected, list):
                left = [line_key(line) for line in value or [] if isinstance(line, dict)] \
                    if isinstance(value, list) else []
                given = len(value) if isinstance(value, list) else int(value not in (None, ""))
                tp = 0
                for line in expected:
                    if (wanted := line_key(line)) in left:
                        left.remove(wanted)
                        tp += 1
                out[key] = (tp, given - tp, len(expected) - tp)
            else:
                right = key in predicted and normalize_value(value) == normalize_value(expected)
                out[key] = (int(right), int(value not in (None, "") and not right), int(not right))
        extra = sum(1 for k, v in predicted.items() if k not in reference and v not in (None, ""))
        if extra:
            out[""] = (0, extra, 0)
        return out

    @staticmethod
    def right_fields(field_counts: dict[str, tuple[int, int, int]]) -> dict[str, bool]:
        """Per expected field: is it entirely right (for a list: every line, no extra)?"""
        return {k: fp == 0 and fn == 0 for k, (_, fp, fn) in field_counts.items() if k}

    def counts(self, parsed: Any, reference: dict[str, Any]) -> tuple[int, int, int]:
        """(true positives, false positives, false negatives) summed over the fields."""
        per_field = self.field_counts(parsed, reference).values()
        return (sum(c[0] for c in per_field), sum(c[1] for c in per_field),
                sum(c[2] for c in per_field))

    def correct(self, parsed: Any, reference: Any) -> bool:
        _, fp, fn = self.counts(parsed, reference)
        return fp == 0 and fn == 0


def _field_f1(weights: np.ndarray, stats: np.ndarray) -> np.ndarray:
    tp, fp, fn = (weights @ stats).T
    denom = 2 * tp + fp + fn
    return np.asarray(np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float),
                                where=denom > 0))


def _exact(weights: np.ndarray, stats: np.ndarray) -> np.ndarray:
    exact = ((stats[:, 1] == 0) & (stats[:, 2] == 0)).astype(float)
    return np.asarray((weights @ exact) / weights.sum(axis=1))


def _extraction_scorer(metric: str, rows: list[tuple[tuple[int, int, int], Any]]) -> Scorer:
    stats = np.array([counts for counts, _ in rows], dtype=float)
    function = _field_f1 if metric == "field_f1" else _exact
    return lambda weights: function(weights, stats)


def score_extraction(
    records: Iterable[Mapping[str, Any]],
    metrics: list[str],
    reference_variety: str,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Field-level micro-F1 and exact match per variety with CIs and paired deltas, and the
    accuracy of each field."""
    parser = JSONParser()

    def fields_and_counts(rec: Mapping[str, Any]) -> tuple[tuple[int, int, int], dict[str, bool]]:
        per_field = parser.field_counts(rec.get("parsed"), rec["reference"])
        totals = tuple(sum(c[i] for c in per_field.values()) for i in range(3))
        return (totals[0], totals[1], totals[2]), parser.right_fields(per_field)

    by_variety, counts = _collect(records, fields_and_counts)
    result = _score_resampled(by_variety, counts, metrics, reference_variety,
                              _extraction_scorer, n_boot, seed)
    for variety, entry in result.items():
        hits: dict[str, list[int]] = defaultdict(list)
        for _, right in by_variety[variety].values():
            for name, ok in right.items():
                hits[name].append(int(ok))
        entry["field_accuracy"] = {name: round(sum(v) / len(v), 6)
                                   for name, v in sorted(hits.items())}
    return result


# --------------------------------------------------------------------------- speech
#
# WER and CER with jiwer, after Moroccan-aware normalisation (Arabic diacritics, tatweel,
# alef/ya/ta-marbuta variants, Eastern digits, Latin case and accents, punctuation;
# Arabizi digits kept as letters); ``wer_raw`` on whitespace tokens as written. Edit counts
# and reference lengths add up over utterances, so corpus rates bootstrap like the rest.

ASR_METRICS = ("wer", "cer", "wer_raw")
HIGHER_IS_BETTER.update({metric: False for metric in ASR_METRICS})


def asr_edits(metric: str, hypothesis: str, reference: str) -> tuple[int, int]:
    """(edit operations, reference length) of one utterance for ``metric``."""
    import jiwer

    if metric == "wer_raw":
        ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    else:
        ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0, 0
    if not hyp:
        units = len(ref) if metric == "cer" else len(ref.split())
        return units, units
    process: Callable[..., Any] = (jiwer.process_characters if metric == "cer"
                                   else jiwer.process_words)
    out = process(ref, hyp)
    errors = out.substitutions + out.deletions + out.insertions
    return int(errors), int(out.substitutions + out.deletions + out.hits)


def _ratio_scorer(stats: np.ndarray) -> Scorer:
    """Summed numerators over summed denominators (the two columns of ``stats``) for each
    row of weights; undefined (NaN) where nothing is in the denominator."""
    def rate(weights: np.ndarray) -> np.ndarray:
        num, den = (weights @ stats).T
        return np.asarray(np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0))
    return rate


def _asr_scorer(metric: str, rows: list[tuple[str, str]]) -> Scorer:
    return _ratio_scorer(np.array([asr_edits(metric, h, r) for h, r in rows], dtype=float))


def score_asr(
    records: Iterable[Mapping[str, Any]],
    metrics: list[str],
    reference_variety: str,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Corpus WER/CER per variety with bootstrap CIs and paired deltas (lower is better);
    a failed transcription counts as an empty one."""
    return _score_texts(records, metrics, reference_variety, _asr_scorer, n_boot, seed)


# --------------------------------------------------------------------------- rates
#
# Agent and security metrics are rates over a subset of items (under-escalation counts only
# the items that must be escalated; argument F1 is 2·TP over 2·TP+FP+FN). Each record
# carries a [numerator, denominator] per metric (``outcomes``, from the task's parser); the
# sums make the rate, so the bootstrap is again a weight vector. A rate with no item in its
# denominator is undefined (``None``), not zero.

HIGHER_IS_BETTER.update({
    "tool_accuracy": True, "argument_f1": True, "valid_json_rate": True,
    "benign_completion": True, "over_escalation_rate": False, "under_escalation_rate": False,
    "unsafe_action_rate": False, "attack_success_rate": False, "canary_leak_rate": False,
    "over_refusal_rate": False})


def _rate_scorer(metric: str, rows: list[Mapping[str, list[int]]]) -> Scorer:
    return _ratio_scorer(np.array([row[metric] for row in rows], dtype=float).reshape(-1, 2))


def score_rates(
    records: Iterable[Mapping[str, Any]],
    metrics: list[str],
    reference_variety: str,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-variety rates from each record's ``outcomes`` with CIs and paired deltas; a
    failed request is scored with the outcomes of an empty answer, never dropped."""
    by_variety, counts = _collect(records, lambda rec: rec["outcomes"])
    result = _score_resampled(by_variety, counts, metrics, reference_variety, _rate_scorer,
                              n_boot, seed)
    for variety, entry in result.items():
        for metric in metrics:  # how many items the rate is over (its denominator's items)
            entry[metric]["n"] = sum(1 for row in by_variety[variety].values()
                                     if row[metric][1] > 0)
    return result


# --------------------------------------------------------------------------- by task type

TaskScorer = Callable[..., dict[str, Any]]
_SCORERS: dict[str, TaskScorer] = {
    "translation": score_generation, "qa": score_qa, "extraction": score_extraction,
    "asr": score_asr, "tool_call": score_rates, "injection": score_rates,
}


def scorer_for(spec: Mapping[str, Any]) -> TaskScorer:
    """``score(records, metrics, reference_variety, *, n_boot, seed)`` for a task spec
    (its manifest snapshot): per-variety scores with intervals and paired deltas."""
    if spec["type"] == "classification":
        labels = list(spec["labels"])
        return lambda records, metrics, reference, **options: score_classification(
            records, labels, metrics, reference, **options)
    return _SCORERS[spec["type"]]
