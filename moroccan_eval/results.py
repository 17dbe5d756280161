"""Run directories: layout, manifest, signature, scores, loading and exports.

``<out>/<run_id>/``
  ``manifest.json``     what produced the run (suite, tasks, model spec without secrets,
                        toolkit version, seed, host, times) and its ``status``
  ``predictions.jsonl`` one line per item, streamed while the run goes
  ``scores.json``       per task × variety: n, metrics with 95% CIs, paired deltas;
                        latency, tokens and cost

A run whose manifest ``status`` is not ``complete`` is refused by report/export/rescore.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from . import __version__
from .costing import DEFAULT_USD_MAD, Pricing, convert, latency_stats
from .errors import RunError
from .io import iter_jsonl, write_atomic, write_json
from .scoring import (
    DEFAULT_BOOTSTRAP,
    GENERATION_METRICS,
    AnswerParser,
    JSONParser,
    LabelParser,
    QAParser,
    TextParser,
    metric_signature,
    score_rates,
    scorer_for,
)
from .suites import TOOL_TYPES, ToolPolicy
from .toolcalls import ToolCallParser

MANIFEST = "manifest.json"
PREDICTIONS = "predictions.jsonl"
SCORES = "scores.json"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id(suite: str, model: str) -> str:
    """``20261124T231500Z-support-intents-char-ngram-1a2b3c``: sortable and readable."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", model).strip("-")[:40] or "model"
    suffix = f"{time.time_ns() & 0xFFFFFF:06x}"
    return f"{stamp}-{suite}-{slug}-{suffix}"


def signature(manifest: dict[str, Any], task: str) -> str:
    """A sacrebleu-style string naming exactly what produced a score."""
    task_info = manifest["tasks"][task]
    model = manifest["model"]
    return "|".join(
        [
            f"moroccan-eval:{manifest['toolkit_version']}",
            f"suite:{manifest['suite']['ident']}",
            f"task:{task}@{task_info['version']}+sha.{task_info['sha256'][:8]}",
            f"model:{model['spec']['name']}+hash.{model['cache_hash'][:8]}",
            f"split:{manifest['selection']['split']}",
            *([f"perturb:{p}"] if (p := manifest["selection"].get("perturb")) else []),
            f"shots:{task_info['spec']['few_shot']}",
            f"seed:{manifest['seed']}",
            f"boot:{manifest['bootstrap']}",
        ]
    )


def host_info() -> dict[str, str]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


class RunWriter:
    """Creates a run directory and streams predictions into it."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.dir = root / manifest["run_id"]
        self.manifest = manifest
        try:
            self.dir.mkdir(parents=True, exist_ok=False)
            write_json(self.dir / MANIFEST, {**manifest, "status": "running"})
            self._fh: IO[str] = (self.dir / PREDICTIONS).open("w", encoding="utf-8")
        except OSError as exc:
            raise RunError(f"cannot write the run directory {self.dir}: {exc.strerror}") from None

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    def finish(self, scores: dict[str, Any], status: str = "complete") -> None:
        """Close predictions, write scores, then mark the manifest: the manifest is written
        last, so a run directory only says ``complete`` when everything is in it."""
        self._fh.close()
        write_json(self.dir / SCORES, scores)
        self.manifest.update(status=status, finished=utc_now())
        write_json(self.dir / MANIFEST, self.manifest)

    def abort(self, status: str) -> None:
        """Mark an unfinished run; a run that wrote no prediction leaves nothing behind."""
        empty = self._fh.tell() == 0
        self._fh.close()
        if empty:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        self.manifest.update(status=status, finished=utc_now())
        write_json(self.dir / MANIFEST, self.manifest)


# --------------------------------------------------------------------------- scoring a run


def parser_for(spec: dict[str, Any] | Any) -> AnswerParser:
    """The answer parser of a task spec (a TaskSpec or its manifest snapshot)."""
    data = spec if isinstance(spec, dict) else spec.model_dump()
    if data["type"] == "classification":
        return LabelParser(data["labels"])
    if data["type"] == "qa":
        from .suites import literals

        return QAParser(literals()["refusals"])
    if data["type"] == "extraction":
        return JSONParser()
    if data["type"] in TOOL_TYPES:
        return ToolCallParser(data["type"], ToolPolicy.model_validate(data["tool_policy"]))
    return TextParser()  # translation and asr: the cleaned text


def parsers_for(manifest: dict[str, Any]) -> dict[str, AnswerParser]:
    """One answer parser per task, from the task specs snapshotted in the manifest."""
    return {name: parser_for(info["spec"]) for name, info in manifest["tasks"].items()}


def finalize_record(record: dict[str, Any], parser: AnswerParser) -> dict[str, Any]:
    """Derive ``parsed``, ``correct`` and the parser's other judgements (QA: ``refused``;
    tool tasks: ``outcomes``) from the record's raw output."""
    if not record.get("error") and not record.get("skipped"):
        record["parsed"] = parser.parse_response(record)
    parsed = record.get("parsed")
    record.update(parser.judge(parsed, record["reference"]))
    return record


def reference_variety(manifest: dict[str, Any], task: str) -> str:
    """The task's own reference variety if it sets one, else the suite's."""
    return str(manifest["tasks"][task]["spec"].get("reference_variety")
               or manifest["suite"]["reference_variety"])


def reparse(
    manifest: dict[str, Any], records: Iterable[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Re-derive ``parsed`` and ``correct`` of stored records (after a parser fix)."""
    parsers = parsers_for(manifest)
    for record in records:
        yield finalize_record(record, parsers[record["task"]])


def compute_scores(
    manifest: dict[str, Any], records: Iterable[dict[str, Any]], wall_s: float | None = None
) -> dict[str, Any]:
    """Everything in ``scores.json`` from a manifest and its prediction records."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        by_task[rec["task"]].append(rec)
    seed, n_boot = manifest["seed"], manifest["bootstrap"]
    tasks: dict[str, Any] = {}
    for name, info in manifest["tasks"].items():
        recs = by_task.get(name, [])
        spec = info["spec"]
        metrics = spec["metrics"]
        reference = reference_variety(manifest, name)
        pooled = relabel(recs, lambda _: "all")
        score = scorer_for(spec)
        varieties = score(recs, metrics, reference, n_boot=n_boot, seed=seed)
        overall = score(pooled, metrics, "all", n_boot=n_boot, seed=seed)
        # agent and security tasks: the same rates per kind of item
        by_kind = ({"by_kind": rates_by_kind(recs, metrics, n_boot=n_boot, seed=seed)}
                   if spec["type"] in TOOL_TYPES else {})
        tasks[name] = {
            "signature": signature(manifest, name),
            "type": spec["type"],
            "metrics": metrics,
            "metric_signatures": {m: metric_signature("chrf" if m == "answer_chrf" else m)
                                  for m in metrics
                                  if m in (*GENERATION_METRICS, "answer_chrf")},
            "reference_variety": reference,
            "varieties": varieties,
            "overall": overall.get("all", {"n": 0}),
            "usage": usage_summary(recs, manifest, wall_s),
            **by_kind,
        }
    return {
        "run_id": manifest["run_id"],
        "model": manifest["model"]["spec"]["name"],
        "suite": manifest["suite"]["ident"],
        "tasks": tasks,
    }


def relabel(records: Iterable[dict[str, Any]],
            label: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """Records scored under other "varieties" (all pooled, kinds of item, two runs): each
    keeps a group unique to its item, so the scorers pair and resample items."""
    return [{**r, "variety": label(r), "group": f"{r['group']}/{r['variety']}"}
            for r in records]


def item_kind(reference: dict[str, Any]) -> str:
    """What kind of agent or security item this is: the behaviour it expects, or where its
    attack sits and what it wants (``control`` for benign items)."""
    if "behaviour" in reference:
        return str(reference["behaviour"])
    return "control" if reference.get("attack") == "none" else \
        f"{reference.get('attack')} · {reference.get('goal')}"


def rates_by_kind(records: list[dict[str, Any]], metrics: list[str], *, n_boot: int,
                  seed: int) -> dict[str, Any]:
    """A tool task's rates per kind of item (see :func:`item_kind`), all varieties pooled,
    with bootstrap CIs: where a model fails (escalations? indirect attacks?), not only how
    much."""
    pooled = relabel(records, lambda r: item_kind(r["reference"]))
    kinds = score_rates(pooled, metrics, "", n_boot=n_boot, seed=seed)
    return {kind: {m: entry[m] for m in metrics} | {"n": entry["n"]}
            for kind, entry in sorted(kinds.items())}


def usage_summary(
    records: list[dict[str, Any]], manifest: dict[str, Any], wall_s: float | None
) -> dict[str, Any]:
    """Latency, tokens, throughput and cost per 1,000 requests (MAD and USD)."""
    spec = manifest["model"]["spec"]
    pricing = Pricing.model_validate(spec["pricing"])
    usd_mad = manifest.get("usd_mad", DEFAULT_USD_MAD)
    answered = [r for r in records if not r.get("error") and not r.get("skipped")]
    latencies = [r["latency_ms"] for r in answered if r.get("latency_ms") is not None]
    stats = latency_stats(latencies)
    n = len(answered)
    tokens_in = sum(r.get("input_tokens") or 0 for r in answered)
    tokens_out = sum(r.get("output_tokens") or 0 for r in answered)
    token_cost = sum(r.get("cost") or 0.0 for r in answered)
    hosting = pricing.hosting_cost_per_request(
        (stats["mean_ms"] or 0.0) / 1000, spec["limits"]["concurrency"]
    )
    per_1k = (token_cost / n + hosting) * 1000 if n else None
    audio_s = sum(float((r.get("fields") or {}).get("duration_s") or 0) for r in answered)
    speech = {}
    if audio_s:  # speech tasks: real-time factor, audio seconds per processing second
        busy_s = sum(latencies) / 1000
        speech = {"audio_s": round(audio_s, 3),
                  "rtfx": round(audio_s / busy_s, 3) if busy_s else None}
    return {
        **speech,
        "n_requests": len(records),
        "n_answered": n,
        "n_errors": sum(1 for r in records if r.get("error") and not r.get("skipped")),
        "n_skipped": sum(1 for r in records if r.get("skipped")),
        "n_cached": sum(1 for r in records if r.get("cached")),
        **stats,
        "throughput_per_s": round(n / wall_s, 3) if wall_s else None,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_total": round(token_cost, 6),
        "currency": pricing.currency,
        "cost_per_1k": {
            cur: (round(convert(per_1k, pricing.currency, cur, usd_mad), 6)
                  if per_1k is not None else None)
            for cur in ("MAD", "USD")
        },
        "usd_mad": usd_mad,
    }


# --------------------------------------------------------------------------- reading runs


@dataclass
class Run:
    """A completed run directory."""

    path: Path
    manifest: dict[str, Any]
    scores: dict[str, Any]

    def predictions(self) -> Iterator[dict[str, Any]]:
        for _, record in iter_jsonl(self.path / PREDICTIONS):
            yield record


def load_run(path: Path, *, require_complete: bool = True) -> Run:
    """Open a run directory; refuse it when it is not a finished run."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise RunError(f"{path}: not a run directory (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunError(f"{manifest_path}: corrupted (not JSON)") from None
    status = str(manifest.get("status"))
    finished = status == "complete" or status.startswith("stopped")
    if require_complete and not finished:
        raise RunError(
            f"{path}: run status is '{status}', not 'complete' (it was interrupted or is still "
            "going); re-run the same command to finish it from the cache"
        )
    scores: dict[str, Any] = {}
    if (path / SCORES).is_file():
        scores = json.loads((path / SCORES).read_text(encoding="utf-8"))
    elif require_complete:
        raise RunError(f"{path}: {SCORES} is missing")
    return Run(path=path, manifest=manifest, scores=scores)


def expand_run_paths(paths: Iterable[Path]) -> list[Path]:
    """Run directories from arguments that may be runs or folders of runs."""
    found: list[Path] = []
    for path in paths:
        if (path / MANIFEST).is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p.parent for p in path.glob(f"*/{MANIFEST}"))
        else:
            raise RunError(f"{path}: no such run directory")
    if not found:
        raise RunError("no run directories found in " + ", ".join(map(str, paths)))
    return found


def rescore(run: Run) -> dict[str, Any]:
    """Recompute parsed answers and scores from stored raw outputs; no model is called.
    Rewrites ``predictions.jsonl`` and ``scores.json`` atomically."""
    records = list(reparse(run.manifest, run.predictions()))
    wall = run.manifest.get("wall_s")
    scores = compute_scores(run.manifest, records, wall)
    write_atomic(
        run.path / PREDICTIONS,
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
    )
    write_json(run.path / SCORES, scores)
    return scores


# --------------------------------------------------------------------------- exports


def score_rows(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """One flat row per run × task × variety × metric (for CSV/Parquet/pandas)."""
    rows = []
    for run in runs:
        info = run.manifest["model"]["spec"]
        for task, entry in run.scores["tasks"].items():
            for variety, values in {**entry["varieties"], "all": entry["overall"]}.items():
                for metric in entry["metrics"]:
                    score = values.get(metric) or {}
                    delta = (values.get("delta_vs_reference") or {}).get(metric) or {}
                    ci = score.get("ci") or [None, None]
                    dci = delta.get("ci") or [None, None]
                    rows.append({
                        "run_id": run.manifest["run_id"],
                        "model": info["name"],
                        "suite": run.manifest["suite"]["ident"],
                        "task": task,
                        "variety": variety,
                        "metric": metric,
                        "n": values.get("n"),
                        "value": score.get("value"),
                        "ci_low": ci[0],
                        "ci_high": ci[1],
                        "delta": delta.get("value"),
                        "delta_ci_low": dci[0],
                        "delta_ci_high": dci[1],
                        "delta_significant": delta.get("significant"),
                        "p50_ms": entry["usage"]["p50_ms"],
                        "p95_ms": entry["usage"]["p95_ms"],
                        "cost_per_1k_mad": entry["usage"]["cost_per_1k"]["MAD"],
                        "cost_per_1k_usd": entry["usage"]["cost_per_1k"]["USD"],
                        "signature": entry["signature"],
                    })
    return rows


def prediction_rows(runs: Iterable[Run]) -> Iterator[dict[str, Any]]:
    for run in runs:
        for record in run.predictions():
            yield {"run_id": run.manifest["run_id"],
                   "model": run.manifest["model"]["spec"]["name"], **record}


def export(runs: list[Run], what: str, fmt: str, out: Path) -> int:
    """Write scores or predictions of runs as CSV, Parquet, JSON or JSONL; returns rows."""
    import pandas as pd

    rows = score_rows(runs) if what == "scores" else list(prediction_rows(runs))
    frame = pd.DataFrame(rows)
    if what == "predictions" and "meta" in frame:
        frame["meta"] = frame["meta"].map(lambda m: json.dumps(m, ensure_ascii=False))
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "json":
            frame.to_json(tmp, orient="records", force_ascii=False, indent=2)
        else:
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunError(f"cannot write {out}: {exc.strerror}") from None
    return len(frame)


def run_metadata(
    *, run_id: str, suite: Any, tasks: Iterable[Any], spec: Any, selection: dict[str, Any],
    seed: int, usd_mad: float, bootstrap: int = DEFAULT_BOOTSTRAP,
) -> dict[str, Any]:
    """The manifest of a new run (without secrets: the spec holds env var names only)."""
    from .io import sha256_file

    return {
        "run_id": run_id,
        "toolkit_version": __version__,
        "created": utc_now(),
        "seed": seed,
        "bootstrap": bootstrap,
        "usd_mad": usd_mad,
        "selection": selection,
        "suite": {
            "name": suite.name,
            "version": suite.version,
            "sha256": suite.sha256,
            "ident": suite.ident,
            "reference_variety": suite.spec.reference_variety,
            "license": suite.spec.license,
            "card": suite.card.model_dump(mode="json"),
        },
        "tasks": {
            task.name: {
                "version": task.spec.version,
                "sha256": sha256_file(suite.path / "tasks" / f"{task.name}.yaml"),
                "spec": task.spec.model_dump(mode="json"),
            }
            for task in tasks
        },
        "model": {"spec": spec.public_dict(), "cache_hash": spec.cache_hash},
        "allow_unanonymized": suite.allow_unanonymized,
        "executor": "local",
        "host": host_info(),
    }
