"""The garbage collector's schedule: paused for a start-up, rarer while a run or a board is
made, and always given back as it was found."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from moroccan_eval import collector


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    gc.unfreeze()  # what other tests' runs froze: these count what they freeze themselves
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()


def test_a_pause_collects_nothing_then_freezes_what_exists_and_resumes() -> None:
    frozen = gc.get_freeze_count()
    with collector.paused():
        assert not gc.isenabled()
        made = [[] for _ in range(3 * gc.get_threshold()[0])]
        assert gc.get_count()[0] > 2 * gc.get_threshold()[0]  # no collection ran
        del made
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen  # the start-up's objects are out of collections
    gc.unfreeze()


def test_a_pause_ends_on_an_error_too() -> None:
    with pytest.raises(KeyError), collector.paused():
        raise KeyError("a suite that does not load")
    assert gc.isenabled()
    gc.unfreeze()


def test_a_pause_keeps_collections_off_when_the_caller_had_turned_them_off() -> None:
    gc.disable()
    frozen = gc.get_freeze_count()
    with collector.paused():
        pass
    assert not gc.isenabled() and gc.get_freeze_count() == frozen


def test_long_work_inside_a_pause_is_collected_as_usual() -> None:
    with collector.paused():
        with collector.resumed():
            assert gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.unfreeze()
    with collector.resumed():  # no pause: nothing to resume, nothing changed after
        assert gc.isenabled()
    assert gc.isenabled()


def test_rarer_collections_only_inside_and_the_threshold_given_back() -> None:
    before = gc.get_threshold()
    with pytest.raises(KeyError), collector.rarer(50_000, older=20):
        assert gc.get_threshold() == (50_000, 20, 20) and gc.isenabled()
        raise KeyError("an error while building a board")
    assert gc.get_threshold() == before


def test_rarer_collections_freeze_only_when_nothing_was_frozen() -> None:
    with collector.rarer(10_000, freeze=True):
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == 10_000
    assert gc.get_freeze_count() == 0
    gc.freeze()
    with collector.rarer(10_000, freeze=True):
        pass
    # the caller's freeze is the caller's: not thawed (an unfreeze empties the permanent
    # generation). Not compared with the count before: frozen objects are still freed when
    # their last reference goes, and a thread left by another test may drop one meanwhile
    # (CI saw 922,558 become 922,556).
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    gc.set_threshold(0)
    with collector.rarer(10_000):
        assert gc.get_threshold()[0] == 0  # turned off stays off
