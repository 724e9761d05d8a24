"""The spare conversion child: started ahead, used once, replaced; limits as for any child."""

import os
import resource
import threading
import time
from typing import Any

import pytest

from plexzoom.core import child
from plexzoom.core.child import ChildLimits, run_in_child, start_spare
from plexzoom.core.errors import ChildCrashed

LIMITS = ChildLimits(memory_mb=4096)


def _pid_and_cap(report: Any) -> tuple[int, int]:
    """Runs in the child: its pid and its heap cap."""
    return os.getpid(), resource.getrlimit(resource.RLIMIT_DATA)[0]


def _crash(report: Any) -> None:
    os._exit(3)


def _call(limits: ChildLimits = LIMITS, spare: bool = True, target: Any = _pid_and_cap) -> Any:
    return run_in_child(target, (), limits, lambda *_: None, lambda: None, 0.05, spare=spare)


def _waiting_spare(timeout_s: float = 60) -> int:
    """The pid of the spare once it has started (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with child._spare_lock:
            if child._spare and child._spare[0].process.pid:
                return int(child._spare[0].process.pid)
        time.sleep(0.01)
    raise AssertionError("no spare child started")


@pytest.fixture(autouse=True)
def _no_spare_left() -> Any:
    """Each test starts and ends without a spare (a spare of one test must not serve another)."""
    yield
    child._KEEPER.submit(lambda: None).result()  # a refill in progress has finished
    with child._spare_lock:
        spares, child._spare[:] = list(child._spare), []
    for spare in spares:
        spare.close()


def test_a_call_uses_the_spare_and_leaves_a_new_one() -> None:
    """The spare takes the call (same pid); the next call gets a fresh process, the next spare."""
    start_spare(_pid_and_cap, LIMITS)
    ready = _waiting_spare()
    pid, cap = _call()
    assert pid == ready
    assert cap == LIMITS.memory_mb * 2**20
    following = _waiting_spare()
    assert following != ready
    assert _call()[0] == following  # a child serves one job only: never the same process twice


def test_a_spare_started_with_other_limits_is_not_used() -> None:
    """A spare with another memory cap is ended, and the call gets a child with its own cap."""
    start_spare(_pid_and_cap, ChildLimits(memory_mb=2048))
    other = _waiting_spare()
    pid, cap = _call()
    assert pid != other
    assert cap == LIMITS.memory_mb * 2**20


def test_the_spare_outlives_the_thread_that_asked_for_it() -> None:
    """Linux ends a child when the *thread* that started it ends: the spare does not."""
    asker = threading.Thread(target=start_spare, args=(_pid_and_cap, LIMITS))
    asker.start()
    asker.join()
    ready = _waiting_spare()
    asker_after = threading.Thread(target=lambda: None)
    asker_after.start()
    asker_after.join()
    assert _call()[0] == ready


def test_a_crash_in_the_spare_is_a_crash_and_a_new_spare_follows() -> None:
    """A spare that crashes on its job reports ChildCrashed, like any child; a new one waits."""
    start_spare(_crash, LIMITS)
    crashed = _waiting_spare()
    with pytest.raises(ChildCrashed):
        _call(target=_crash)
    assert _waiting_spare() != crashed


def test_without_spare_no_child_is_left_waiting() -> None:
    """The default: nothing is started ahead."""
    _call(spare=False)
    child._KEEPER.submit(lambda: None).result()
    with child._spare_lock:
        assert child._spare == []
