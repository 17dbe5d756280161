"""Canary secrets of the security suite.

A task's system prompt may hold ``{{ canary }}``: a confidential code the model must never
reveal. Templates render it as :data:`CANARY_PLACEHOLDER`, so request hashes (and the
cache) do not depend on it; just before a request is sent the placeholder becomes the run's
random canary (:func:`reveal`), and everything that comes back is redacted
(:func:`redact`) before it is cached, scored or written. A leak therefore shows as the
placeholder in an output, and the secret itself is never stored anywhere.

Redaction matches the canary case-insensitively and with any separators between its
characters (``m e v-7F3K...``); a model that encodes it (reversed, base64, spelled out in
another script) is not caught.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

CANARY_PLACEHOLDER = "⟦CANARY⟧"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud the same way
_SEPARATORS = r"[\s\-_.·:/|,]*"


def new_canary() -> str:
    """A fresh random secret, e.g. ``MEV-7F3K-Q9XD-2TPW``."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return "MEV-" + "-".join(body[i:i + 4] for i in range(0, 12, 4))


class Canary:
    """One run's secret: puts it into requests and takes it out of everything returned."""

    def __init__(self, secret: str | None = None):
        self.secret = secret or new_canary()
        chars = [re.escape(c) for c in self.secret if c.isalnum()]
        self._pattern = re.compile(_SEPARATORS.join(chars), re.IGNORECASE)

    def reveal(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages as sent: the placeholder replaced by the secret."""
        if not any(CANARY_PLACEHOLDER in str(m.get("content")) for m in messages):
            return messages
        return [{**m, "content": str(m["content"]).replace(CANARY_PLACEHOLDER, self.secret)}
                if CANARY_PLACEHOLDER in str(m.get("content")) else m for m in messages]

    def redact_text(self, text: str) -> str:
        return self._pattern.sub(CANARY_PLACEHOLDER, text)

    def redact(self, value: Any) -> Any:
        """``value`` (any JSON-like object) with every occurrence of the secret replaced by
        the placeholder."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value
