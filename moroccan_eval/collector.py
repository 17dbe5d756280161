"""When Python's cyclic garbage collector runs: less often than by default where the
toolkit makes many objects and few cycles. Objects are still freed as their last reference
goes (reference counting); only the search for unreachable cycles is put off."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_pausing = False  # whether paused() holds collections now


@contextmanager
def paused() -> Iterator[None]:
    """No collection inside, then what exists is frozen out of later collections (never
    walked again) and collections resume. For a start-up, which makes long-lived objects
    only (modules, classes, a suite's index): the collections of ``run``'s start-up found
    nothing to free (one of them walked everything for 11 ms) and took 25-30 ms before the
    first request. A caller that turned the collector off keeps it off."""
    global _pausing
    if not gc.isenabled():
        yield
        return
    gc.disable()
    _pausing = True
    try:
        yield
    finally:
        _pausing = False
        gc.freeze()
        gc.enable()


@contextmanager
def resumed() -> Iterator[None]:
    """Collections as usual inside, when :func:`paused` holds them: for long work that a
    start-up may have to do: a suite's first privacy scan takes seconds and Presidio makes
    cycles (14,000 objects freed by collections in the translation suite's; 15 MB)."""
    if not _pausing or gc.isenabled():
        yield
        return
    gc.enable()
    try:
        yield
    finally:
        gc.disable()


@contextmanager
def rarer(youngest: int, older: int | None = None, *, freeze: bool = False) -> Iterator[None]:
    """The youngest generation collected every ``youngest`` allocations rather than 700
    (and each older one every ``older`` collections of the one below, if given); with
    ``freeze``, what exists on entry is frozen out of the collections inside, unless the
    caller froze objects already. A threshold of 0 (the caller turned collections off) is
    kept."""
    before = gc.get_threshold()
    thaw = freeze and gc.get_freeze_count() == 0
    if thaw:
        gc.freeze()
    if before[0]:
        gc.set_threshold(max(before[0], youngest),
                         *(before[1:] if older is None else (older, older)))
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if thaw:
            gc.unfreeze()
