"""Importing Presidio as the toolkit uses it: offline, and without what it imports only
because it is installed.

Presidio's analyzer imports its transformers NER engine, and with it torch, whenever
``transformers`` is installed; spaCy's thinc imports torch whenever it is installed. The
toolkit runs Presidio on a blank spaCy pipeline, which uses neither, and the ``hf`` extra
installs both: building the PII scanner took 5.9 s with them importable, 1.1 s without
(the anonymizer's engine, built on a scanner, finds Presidio imported already).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Presidio's e-mail recognizer pulls tldextract, which fetches a suffix list on first use;
# we use our own e-mail pattern, and nothing may reach the network.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

#: Libraries Presidio and spaCy import when installed and the toolkit's use never needs.
UNUSED_OPTIONAL = ("torch", "transformers")


@contextmanager
def importing_presidio() -> Iterator[None]:
    """Within the block, ``import torch`` and ``import transformers`` fail with
    :class:`ImportError`, as when they are not installed (each library falls back on its
    own), unless imported already; afterwards they import as before."""
    blocked = [name for name in UNUSED_OPTIONAL if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # what makes an import fail
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
