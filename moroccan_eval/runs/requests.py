"""One request to a model: built from an item exactly as ``verify`` rebuilds it, spaced by
the model's rate limit, retried with backoff, with the run's canary put in and taken out."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import sys
import time
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from ..adapters.base import Adapter, ModelSpec, Request, Response, TaskContext
from ..adapters.caps import check_size
from ..adapters.redact import Redactor, storable
from ..canary import Canary
from ..errors import AdapterError
from ..io import canonical_json, sha256_json
from ..prompts import PromptRenderer
from ..suites.loader import Task
from ..suites.schema import Item
from ..tasks.tool_call import json_mode_messages


class Limiter(Protocol):
    """What paces a model's requests: :class:`RateLimiter` in one process, a limiter shared
    by processes (the Ray executor's), or the adaptive gate of ``concurrency: auto``.
    ``wait`` comes before each attempt and ``done`` after it."""

    async def wait(self) -> None: ...

    def done(self, latency_ms: float | None, pushed_back: bool) -> None: ...


class RateLimiter:
    """Spaces request starts evenly to stay under ``requests_per_minute``."""

    def __init__(self, per_minute: float | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next_start = 0.0

    def done(self, latency_ms: float | None, pushed_back: bool) -> None:
        """Nothing to learn: the spacing is fixed."""

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        start = max(now, self.next_start)
        self.next_start = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


Outcome = tuple[Response | None, str | None, int]  # (response, error, attempts)

_NO_TIMER = contextlib.nullcontext()  # stateless: one serves every call


async def call_with_retries(adapter: Adapter[Any], request: Request, spec: ModelSpec,
                            limiter: Limiter) -> Outcome:
    """``(response, error, attempts)``. Retries retryable errors with exponential backoff
    and full jitter, or the server's ``Retry-After`` when it sends one, though never longer
    than ``limits.backoff_max_s`` (an endpoint asking for an hour would stall the run).

    This is the one way out of an adapter (for runs, ``verify`` and ``models check``), so
    the model's secrets (API key, custom header values) are redacted here from the response
    and the error, before anything caches, writes or prints them."""
    limits = spec.limits
    redactor = Redactor.for_spec(spec)
    error = "no attempt made"
    for attempt in range(1, limits.retries + 2):
        await limiter.wait()
        retry_after: float | None = None
        outcome: tuple[float | None, bool] = (None, False)  # cancelled: nothing learnt
        try:
            # an answer computed in place cannot be interrupted: no timer to arm for it
            async with (_NO_TIMER if adapter.answers_inline
                        else asyncio.timeout(limits.timeout_s)):
                response = check_size(await adapter.generate(request),
                                      limits.max_response_bytes, f"model '{spec.name}'")
                outcome = (response.latency_ms, False)
                if not adapter.replaces_lone_surrogates:
                    response = storable(response)
                return redactor.response(response), None, attempt
        except TimeoutError:
            error, retryable = f"timed out after {limits.timeout_s:g} s", True
            outcome = (None, True)  # a 429, a 5xx, a timeout: the endpoint pushes back
        except AdapterError as exc:
            error, retryable, retry_after = str(exc), exc.retryable, exc.retry_after
            outcome = (None, retryable)
        except Exception as exc:  # an adapter bug must not stop the run: record it
            error, retryable = f"adapter crashed: {exc.__class__.__name__}: {exc}", False
        finally:
            limiter.done(*outcome)
        if not retryable or attempt > limits.retries:
            return None, redactor.text(f"{error} (after {attempt} attempt(s))"), attempt
        backoff = min(limits.backoff_max_s, limits.backoff_base_s * 2 ** (attempt - 1))
        await asyncio.sleep(min(retry_after, limits.backoff_max_s) if retry_after is not None
                            else random.uniform(0, backoff))
    return None, redactor.text(error), limits.retries + 1


async def send(adapter: Adapter[Any], request: Request, spec: ModelSpec, limiter: Limiter,
               canary: Canary) -> Outcome:
    """:func:`call_with_retries` with the canary put into the request; what comes back
    (answer or error) has it redacted before anything caches, scores or writes it."""
    messages = canary.reveal(request.messages)
    if messages is request.messages:
        return await call_with_retries(adapter, request, spec, limiter)
    sent = Request(messages=messages, input=request.input, params=request.params,
                   tools=request.tools)
    response, error, attempts = await call_with_retries(adapter, sent, spec, limiter)
    if response is not None:
        response = Response.from_dict(canary.redact(response.to_dict()))
    return response, canary.redact_text(error) if error else None, attempts


def build_request(task: Task, renderer: PromptRenderer, item: Item, tool_calling: str) -> Request:
    """The request for one item as it is hashed and cached: a tool task's tools go native
    or, for ``tool_calling: json`` models, into the prompt; a canary stays a placeholder."""
    messages = renderer.render(item)
    tools = task.spec.tools or None
    if tools and tool_calling == "json":
        messages, tools = json_mode_messages(messages, tools), None
    return Request(messages=messages, input=item["fields"], tools=tools)


def task_setup(task: Task, seed: int) -> tuple[TaskContext, PromptRenderer]:
    """What an adapter may learn about a task, and the task's prompt renderer. ``verify``
    rebuilds runs with this too, so its requests hash exactly like the runner's."""
    train = list(task.items("train"))
    context = TaskContext(
        name=task.name, type=task.spec.type, labels=task.labels,
        input_fields=task.spec.input_fields, train=train, context=task.context,
        root=str(task.suite.path), tools=task.spec.tools,
        label_descriptions={name: label.description
                            for name, label in task.spec.labels.items() if label.description},
    )
    return context, PromptRenderer(task.spec, train, seed=seed, context=task.context)


class PromptKeys:
    """Per item, a *prompt key*: a hash of everything :func:`build_request` reads to make
    its request, so that two items with the same key get the same request hash, and the
    response cache can answer an item without rendering its prompt.

    What rendering reads: the task's spec (templates, labels and their descriptions,
    ``few_shot``, tools), its train items (the few-shot pool), the seed (which examples),
    its context, the prompt literals, the model's ``tool_calling`` mode, the item itself
    (fields, history, meta, variety, id), and code: this toolkit's source (every module,
    hashed: an edit anywhere invalidates every key), Jinja2, MarkupSafe and Python (whose
    ``random`` draws the examples). All of it goes into the key, the item whole. A task
    whose templates use ``|random`` renders differently each time: it has no keys."""

    def __init__(self, task: Task, renderer: PromptRenderer, train: list[Item],
                 tool_calling: str):
        self.task_key: bytes | None = None
        if renderer.deterministic:
            self.task_key = sha256_json({
                "code": _code_identity(), "spec": task.spec.model_dump(mode="json"),
                "train": train, "seed": renderer.seed, "context": renderer.context,
                "literals": renderer.literals, "tool_calling": tool_calling,
            }).encode()

    def of(self, item: Item) -> str | None:
        """The item's prompt key (``None``: the task has none)."""
        if self.task_key is None:
            return None
        digest = hashlib.sha256(self.task_key)
        digest.update(canonical_json(item).encode("utf-8"))
        return digest.hexdigest()


@cache
def _code_identity() -> list[str]:
    from ..verdicts import code_fingerprint

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    return [code_fingerprint(""), installed("jinja2"), installed("markupsafe"), sys.version]
