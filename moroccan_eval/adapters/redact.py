"""What leaves an adapter, made safe to store: secrets redacted, text made encodable.

Secret redaction: the API key and custom header values never reach a file, a cache or
a terminal, even when an endpoint echoes them back (in an error page, a debug field or the
answer itself).

:func:`moroccan_eval.runs.requests.call_with_retries`, which every request of a run and of
``models check`` goes through, redacts each response and each error with
:meth:`Redactor.for_spec` before anything else sees them. Adapters that cut a body to a
snippet redact it first too (:meth:`Redactor.text`), so a cut cannot leave half a key.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .base import REDACTED, ModelSpec, Response

__all__ = ["MIN_SECRET_CHARS", "REDACTED", "Redactor", "storable", "without_lone_surrogates"]
#: Shorter values are not redacted: replacing every "1" or "json" of the answers would
#: corrupt them, and a value that short is no secret.
MIN_SECRET_CHARS = 8


class Redactor:
    """Replaces a fixed set of secret values by :data:`REDACTED`."""

    def __init__(self, secrets: list[str]):
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        # longest first, so a secret containing another is replaced whole
        self._pattern = re.compile("|".join(map(re.escape, kept))) if kept else None
        self._secrets = kept

    @classmethod
    def for_spec(cls, spec: ModelSpec) -> Redactor:
        """The redactor of a model's secrets (:meth:`ModelSpec.secret_values`, read now: a
        key set after the run started is redacted too), one per set of secrets (asked for
        before every request: building it was 5% of an in-process model's run)."""
        return _redactor(tuple(spec.secret_values()))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """``text`` with every secret replaced."""
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text

    def snippet(self, text: str, chars: int, *, complete: bool = True) -> str:
        """The first ``chars`` characters of ``text`` once redacted, for an error message.

        Redaction comes before the cut: a key cut in two would be found by neither half.
        ``complete=False`` says ``text`` is itself only the start of something longer (the
        first bytes of a body), so it may end with the start of a secret, which redaction
        cannot recognise: an end of the redacted text that begins a secret is dropped
        (redaction may shrink the text enough to bring that end into view)."""
        if self._pattern is None:
            return text[:chars]
        redacted = self.text(text)
        if not complete:
            redacted = redacted[:self._secret_start(redacted)]
        return redacted[:chars]

    def _secret_start(self, text: str) -> int:
        """Where the longest end of ``text`` that is the beginning of a secret starts
        (``len(text)`` if none is)."""
        cut = len(text)
        for secret in self._secrets:
            for start in range(max(0, len(text) - len(secret) + 1), cut):
                if secret.startswith(text[start:]):
                    cut = start
                    break
        return cut

    def value(self, value: Any) -> Any:
        """A JSON-like value (dicts, lists, strings, keys included) with every secret
        replaced; other values are returned as they are."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def response(self, response: Response) -> Response:
        """``response`` with every secret replaced in its text, tool calls and raw body."""
        if self._pattern is None:
            return response
        return Response(text=self.text(response.text),
                        tool_calls=self.value(response.tool_calls),
                        input_tokens=response.input_tokens,
                        output_tokens=response.output_tokens,
                        latency_ms=response.latency_ms, raw=self.value(response.raw))


@lru_cache(maxsize=32)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(list(secrets))


#: A UTF-16 surrogate code point. json.loads pairs valid surrogates into one character, so
#: any left in a decoded string is a lone one: valid JSON, but no UTF-8 file can hold it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(value: Any) -> Any:
    """A JSON-like value whose strings (keys included) have each lone UTF-16 surrogate
    replaced by U+FFFD, so that it can be written as UTF-8."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_lone_surrogates(v) for v in value]
    return value


def storable(response: Response) -> Response:
    """``response`` with lone surrogates replaced in its text, tool calls and raw body:
    one in a plugin's answer made the run's UTF-8 writes fail and the run hang."""
    if not _LONE_SURROGATE.search(response.text) and (
            not (response.tool_calls or response.raw)
            or not _has_lone_surrogate([response.tool_calls, response.raw])):
        return response  # the usual case: nothing copied
    return Response(text=without_lone_surrogates(response.text),
                    tool_calls=without_lone_surrogates(response.tool_calls),
                    input_tokens=response.input_tokens, output_tokens=response.output_tokens,
                    latency_ms=response.latency_ms, raw=without_lone_surrogates(response.raw))


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]  # iterative: a plugin's raw answer may nest deeply
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False
