"""Reading an untrusted HTTP response: never more than ``limits.max_response_bytes``.

The body is streamed and reading stops at the cap (a body announcing a larger
``Content-Length`` is refused before its first byte), so a runaway or hostile endpoint
cannot make a run hold, cache and write gigabytes. The connection is then closed rather
than drained: draining would read what the cap refuses.
"""

from __future__ import annotations

import json

import aiohttp

from ..errors import AdapterError
from .base import Response

#: How much of an error body is read: error messages quote only its first characters.
ERROR_BODY_BYTES = 8192


def too_large(url: str, limit: int, declared: int | None = None) -> AdapterError:
    """The non-retryable error of a body over the cap (a retry would only be as large)."""
    size = f"declares {declared} bytes, " if declared is not None else "is "
    return AdapterError(
        f"response from {url} {size}over limits.max_response_bytes ({limit} bytes); "
        f"raise limits.max_response_bytes in the model YAML if answers this long are "
        f"expected")


async def read_capped(response: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    """The whole body of ``response``, or :func:`too_large` as soon as it passes
    ``limit`` bytes (counted after any decompression, so a small gzip bomb is caught too)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise too_large(url, limit, declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            response.close()
            raise too_large(url, limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_prefix(response: aiohttp.ClientResponse,
                      limit: int = ERROR_BODY_BYTES) -> tuple[bytes, bool]:
    """At most the first ``limit`` bytes of the body (for an error message), and whether
    that is the whole body; the rest is not read: the connection is closed instead."""
    data = b""
    while len(data) < limit:
        chunk = await response.content.read(limit - len(data))
        if not chunk:
            return data, True
        data += chunk
    if response.content.at_eof():
        return data, True
    response.close()
    return data, False


def check_size(response: Response, limit: int, source: str) -> Response:
    """``response``, or :func:`too_large` when its text and tool calls together pass
    ``limit`` bytes: the same cap for adapters that do not read HTTP bodies through
    :func:`read_capped` (plugins, local programs), before the run stores the answer."""
    size = len(response.text)
    if size * 4 > limit or response.tool_calls:  # a character is at most 4 UTF-8 bytes
        size = len(response.text.encode("utf-8", "surrogatepass"))
        if response.tool_calls:
            size += len(json.dumps(response.tool_calls, ensure_ascii=False, default=str)
                        .encode("utf-8", "surrogatepass"))
    if size > limit:
        raise too_large(source, limit)
    return response
