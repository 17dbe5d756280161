"""``models check``: validate a model spec and send it one request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ..errors import MoroccanEvalError
from . import build_adapter
from .base import Adapter, ModelSpec, Request, Response, TaskContext

#: What a baseline trains on when it is checked outside any task.
_TOY_TASK = TaskContext(
    name="check", type="classification", labels=["ok", "ko"], input_fields=["text"],
    train=[{"id": label, "group": label, "split": "train", "variety": "eng_Latn",
            "fields": {"text": label}, "reference": label, "consent_id": "authored",
            "meta": {}} for label in ("ok", "ko")])


@dataclass
class CheckResult:
    """A model's answer to the check request, and how many attempts it took."""

    response: Response
    attempts: int


def check_model(spec: ModelSpec, prompt: str) -> CheckResult:
    """Send ``prompt`` once (with the spec's retries); raise when the model does not answer."""
    from ..runs.requests import RateLimiter, call_with_retries

    adapter = build_adapter(spec)

    async def once(adapter: Adapter[Any]) -> tuple[Response | None, str | None, int]:
        try:
            if not adapter.cacheable:  # baselines need a task to train on
                await adapter.start_task(_TOY_TASK)
            request = Request(messages=[{"role": "user", "content": prompt}],
                              input={"text": prompt})
            return await call_with_retries(adapter, request, spec, RateLimiter(None))
        finally:
            await adapter.aclose()

    response, error, attempts = asyncio.run(once(adapter))
    if response is None:
        raise MoroccanEvalError(f"model '{spec.name}' did not answer: {error}")
    return CheckResult(response, attempts)
