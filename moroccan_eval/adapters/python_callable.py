"""A Python function as a model: ``callable: "my_package.my_module:answer"``.

The function receives a dict ``{"messages", "input", "params", "tools"}`` and returns a
string, or a dict with ``text`` and optionally ``tool_calls``, ``input_tokens``,
``output_tokens``. It may be ``async``. A slow synchronous function should set
``threaded: true`` so it runs in a worker thread instead of blocking the event loop.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import AdapterError, ConfigError
from .base import Adapter, ModelSpec, Request, Response


class PythonCallableOptions(BaseModel):
    """Model YAML fields of the ``python`` adapter."""

    model_config = ConfigDict(extra="forbid")
    callable: str = Field(pattern=r"^[\w.]+:[\w.]+$", description="module.path:function")
    threaded: bool = False


def import_callable(target: str) -> Callable[..., Any]:
    """Import ``module:attr``; errors name the target and the cause."""
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"callable '{target}' cannot be imported: {exc}") from None
    if not callable(obj):
        raise ConfigError(f"'{target}' is not callable")
    return obj  # type: ignore[no-any-return]


class PythonCallableAdapter(Adapter[PythonCallableOptions]):
    """Calls a Python function in-process."""

    Options = PythonCallableOptions

    def __init__(self, spec: ModelSpec, options: PythonCallableOptions):
        super().__init__(spec, options)
        self.target = options.callable
        self.function = import_callable(options.callable)
        self.is_async = inspect.iscoroutinefunction(self.function)
        self.threaded = options.threaded
        self.answers_inline = not self.is_async and not self.threaded

    async def generate(self, request: Request) -> Response:
        payload = request.to_dict()
        started = time.perf_counter()
        try:
            if self.is_async:
                result = await self.function(payload)
            elif self.threaded:
                result = await asyncio.to_thread(self.function, payload)
            else:
                result = self.function(payload)
        except Exception as exc:  # the user's code: any failure becomes a recorded error
            raise AdapterError(
                f"{self.target} raised {exc.__class__.__name__}: {exc}"
            ) from None
        latency_ms = (time.perf_counter() - started) * 1000
        if isinstance(result, str):
            return Response(text=result, latency_ms=latency_ms)
        if isinstance(result, dict):
            return Response(
                text=str(result.get("text") or ""),
                tool_calls=list(result.get("tool_calls") or []),
                input_tokens=int(result.get("input_tokens") or 0),
                output_tokens=int(result.get("output_tokens") or 0),
                latency_ms=latency_ms,
            )
        raise AdapterError(
            f"{self.target} returned {type(result).__name__}; return str or dict"
        )
