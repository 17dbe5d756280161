"""Deterministic in-process models for the ``python`` adapter in tests and the golden file."""

from __future__ import annotations

import asyncio
import os
import time
import zlib
from pathlib import Path
from typing import Any

KEYWORDS = {
    "refund": ["rembours", "flous", "استرجاع", "المال", "المبلغ"],
    "delivery_status": ["livraison", "wsel", "wslat", "arrivee", "وصل", "يصل"],
}


def keyword_router(request: dict[str, Any]) -> Any:
    """Answers like a chatty model: sometimes a bare label, sometimes a sentence, sometimes
    nothing usable; one input makes it fail."""
    text = request["input"]["text"].lower()
    if "recrutez" in text:
        raise RuntimeError("model crashed on this input")
    for label, words in KEYWORDS.items():
        if any(w in text for w in words):
            if "?" in text:
                return {"text": f"Intent: {label}", "input_tokens": 20, "output_tokens": 3}
            return label
    return "je ne sais pas"


def instant(request: dict[str, Any]) -> str:
    """The cheapest possible model: answers the first label, for throughput measurements."""
    return "refund"


def pid(request: dict[str, Any]) -> str:
    """Answers the id of the process that computes it: which worker ran an item."""
    return str(os.getpid())


def exits_on_message_300(request: dict[str, Any]) -> str:
    """:func:`instant`, except that one input ends the process running it (exit code 3):
    a worker process that dies mid-run (``run --processes``)."""
    if request["input"]["text"].startswith("message 300 "):
        os._exit(3)
    return "refund"


def fails_on_sevens(request: dict[str, Any]) -> str:
    """:func:`instant`, failing on every input with a 7 in it."""
    if "7" in request["input"]["text"]:
        raise RuntimeError("no sevens")
    return "refund"


def sleepy(request: dict[str, Any]) -> str:
    """:func:`instant` after 5 ms: a run long enough to be stopped mid-way."""
    time.sleep(0.005)
    return "refund"


async def slow_async(request: dict[str, Any]) -> str:
    await asyncio.sleep(0.01)
    return "other"


async def jittery(request: dict[str, Any]) -> str:
    """Answers after 0-4 ms, by a hash of the message: with concurrency, answers come back
    (and records are written) out of the order the items were sent."""
    await asyncio.sleep(zlib.crc32(request["messages"][-1]["content"].encode()) % 5 / 1000)
    return "refund"


#: Per call of :func:`census`, how many of the runner's workers had started by then.
CENSUS: list[int] = []


async def census(request: dict[str, Any]) -> str:
    """:func:`slow_async` that counts the runner's workers (its ``worker`` tasks) at each
    call."""
    CENSUS.append(sum(1 for task in asyncio.all_tasks()
                      if getattr(task.get_coro(), "__name__", "") == "worker"))
    return await slow_async(request)


# Oracles for synthetic suites (``moroccan_eval.synthetic``): the reference of "message g
# in <variety>" is LABELS[g % 3], so a toy can be right on purpose. ``oracle_k`` is right on
# a share of items that falls with k and with the variety's distance from MSA, and reports
# token counts that grow with k, so ten oracles span a quality/cost trade-off.
_PENALTY = {"arb_Arab": 0, "fra_Latn": 5, "ary_Arab": 10, "ary_fra_mix": 15, "ary_Latn": 20,
            "zgh_Latn": 30, "zgh_Tfng": 35}


def _make_oracle(k: int) -> Any:
    from moroccan_eval.stats import stable_id
    from moroccan_eval.synthetic import LABELS

    def oracle(request: dict[str, Any]) -> dict[str, Any]:
        _, g, _, variety = request["input"]["text"].split(" ")
        skill = 95 - 6 * k - _PENALTY.get(variety, 0)
        right = stable_id(f"{k}/{g}/{variety}") % 100 < skill
        label = LABELS[int(g) % 3] if right else LABELS[(int(g) + 1) % 3]
        return {"text": label, "input_tokens": 50 + 40 * (9 - k), "output_tokens": 2}

    oracle.__name__ = f"oracle_{k}"
    return oracle


for _k in range(10):
    globals()[f"oracle_{_k}"] = _make_oracle(_k)


HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def hostile(request: dict[str, Any]) -> str:
    """A model whose answers are markup: reports must show them as text."""
    return f"refund {HOSTILE}" if "flous" in request["input"]["text"] else HOSTILE


def oracle_runs(root: Path, models: int, *, groups: int = 12,
                params: bool = True) -> list[Path]:
    """Run ``models`` toy oracles (tests/toy_models.py) on a synthetic suite of all seven
    core varieties; returns the run directories, best model first."""
    import yaml

    from moroccan_eval.adapters import load_model
    from moroccan_eval.runs.runner import RunOptions, run
    from moroccan_eval.suites.loader import load_suite
    from moroccan_eval.synthetic import make_suite
    from moroccan_eval.varieties import core_codes

    suite = make_suite(root / "suite", groups, tuple(core_codes()))
    specs = []
    for k in range(models):
        spec = root / f"oracle-{k}.yaml"
        spec.write_text(yaml.safe_dump({
            "name": f"oracle-{k}", "adapter": "python", "callable": f"toy_models:oracle_{k}",
            "pricing": {"input_per_mtok": 2.0, "output_per_mtok": 8.0, "currency": "USD"},
            "info": {"parameters_b": float(70 - 7 * k)} if params else {},
        }), encoding="utf-8")
        specs.append(load_model(str(spec)))
    results = run(RunOptions(suite=load_suite(suite), out_dir=root / "runs", progress=False),
                  specs)
    return [r.path for r in results]
