"""The cap on an untrusted answer's size, ``limits.max_response_bytes``: HTTP bodies are
read up to it (:func:`.http.read_capped`), and every other adapter's answer is measured
against it (:func:`check_size`) before the run stores it. Apart from :mod:`.http` so that
the offline commands (``verify``, ``leaderboard validate``), which rebuild requests but
send none, do not import the HTTP client."""

from __future__ import annotations

import json

from ..errors import AdapterError
from .base import Response


def too_large(url: str, limit: int, declared: int | None = None) -> AdapterError:
    """The non-retryable error of a body over the cap (a retry would only be as large)."""
    size = f"declares {declared} bytes, " if declared is not None else "is "
    return AdapterError(
        f"response from {url} {size}over limits.max_response_bytes ({limit} bytes); "
        f"raise limits.max_response_bytes in the model YAML if answers this long are "
        f"expected")


def check_size(response: Response, limit: int, source: str) -> Response:
    """``response``, or :func:`too_large` when its text and tool calls together pass
    ``limit`` bytes: the same cap for adapters that do not read HTTP bodies through
    :func:`.http.read_capped` (plugins, local programs), before the run stores the answer."""
    size = len(response.text)
    if size * 4 > limit or response.tool_calls:  # a character is at most 4 UTF-8 bytes
        size = len(response.text.encode("utf-8", "surrogatepass"))
        if response.tool_calls:
            size += len(json.dumps(response.tool_calls, ensure_ascii=False, default=str)
                        .encode("utf-8", "surrogatepass"))
    if size > limit:
        raise too_large(source, limit)
    return response
