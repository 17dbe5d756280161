"""The HTTP client: aiohttp is imported, and adapters' sessions are made, here
(:func:`client_session`); an untrusted response is read up to ``limits.max_response_bytes``
(:mod:`.caps`).

The body is streamed and reading stops at the cap (a body announcing a larger
``Content-Length`` is refused before its first byte), so a runaway or hostile endpoint
cannot make a run hold, cache and write gigabytes. The connection is then closed rather
than drained: draining would read what the cap refuses.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .caps import too_large


class _Certificates:
    """The system's CA certificates, loaded into aiohttp's default SSL contexts in a thread.

    aiohttp builds two SSL contexts when it is imported, and each loads the system's
    certificates: 0.05-0.06 s of a run's 0.45 s start-up. OpenSSL lets go of the
    interpreter while it reads them, so a thread does it beside the rest of the start-up
    (start-up to the first request 0.482 -> 0.467 s and 0.555 -> 0.488 s, medians of 12
    and 16, old and new code in turn). :func:`client_session` waits
    for it, so no session of the toolkit connects before they are in (a TLS connection
    made with a context still empty would fail verification, never pass it).
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def import_aiohttp(self) -> ModuleType:
        """aiohttp, its default SSL contexts' certificates loading in a thread."""
        if "aiohttp.connector" in sys.modules:  # imported already, its certificates loaded
            import aiohttp

            return aiohttp
        context_class = ssl.SSLContext
        # the class's own method only when something replaced ssl.SSLContext (truststore)
        own = context_class.__dict__.get("set_default_verify_paths")
        load = context_class.set_default_verify_paths
        deferred: list[ssl.SSLContext] = []

        def defer(context: ssl.SSLContext) -> None:
            deferred.append(context)

        context_class.set_default_verify_paths = defer  # type: ignore[method-assign,assignment]
        try:
            import aiohttp
        finally:
            if own is None:
                del context_class.set_default_verify_paths
            else:
                context_class.set_default_verify_paths = own  # type: ignore[method-assign]

        def load_deferred() -> None:
            try:
                for context in deferred:
                    load(context)
            except BaseException as exc:  # raised where the contexts are wanted
                self._error = exc

        # not a daemon: the interpreter waits for it before tearing anything down (a
        # process exiting while OpenSSL filled a context it freed crashed)
        self._thread = threading.Thread(target=load_deferred, name="load-certificates")
        self._thread.start()
        os.register_at_fork(before=self.wait)  # a child gets whole contexts, not the thread
        return aiohttp

    def wait(self) -> None:
        """Return once aiohttp's SSL contexts hold the system's certificates."""
        if self._thread is not None:
            self._thread.join()  # returns at once after the first time
        if self._error is not None:
            raise self._error


_certificates = _Certificates()
if TYPE_CHECKING:
    import aiohttp as aiohttp  # what the toolkit's other modules import from here
else:
    aiohttp = _certificates.import_aiohttp()


def client_session(**options: Any) -> aiohttp.ClientSession:
    """A new :class:`aiohttp.ClientSession` (``options`` as aiohttp takes them), made once
    the system's certificates are loaded. Adapters make their sessions here."""
    _certificates.wait()
    return aiohttp.ClientSession(**options)


#: How much of an error body is read: error messages quote only its first characters.
ERROR_BODY_BYTES = 8192


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
