"""Deterministic in-process models for the ``python`` adapter in tests and the golden file."""

from __future__ import annotations

import asyncio
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


async def slow_async(request: dict[str, Any]) -> str:
    await asyncio.sleep(0.01)
    return "other"
