"""Run a function in a spawned child process with a memory cap and a wall-clock limit.

A crash, an out-of-memory or a runaway decode then ends the child, never the worker. The cap
is RLIMIT_DATA (heap and private mappings): libvips reserves far more address space than it
touches, so an address-space cap (RLIMIT_AS) breaks ordinary conversions.
"""

import contextlib
import ctypes
import importlib
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from queue import Empty, Queue
from typing import Any

from plexzoom.core.errors import ChildCrashed, ImageTooLarge, PlexzoomError

log = logging.getLogger(__name__)
Report = Callable[[str, float], None]
_PR_SET_PDEATHSIG = 1
_MEMORY_WORDS = (
    "out of memory",
    "cannot allocate",
    "unable to allocate",
    "memory allocation",
    "can't start new thread",  # thread stacks count against RLIMIT_DATA
    "error creating thread",
)


@dataclass(frozen=True)
class ChildLimits:
    """Limits of the child process; 0 means none."""

    memory_mb: int = 0
    timeout_s: float = 0


def run_in_child(
    target: Callable[..., Any],
    args: tuple[Any, ...],
    limits: ChildLimits,
    on_report: Report,
    tick: Callable[[], None],
    tick_s: float,
    setup: Callable[[], object] | None = None,
    spare: bool = False,
) -> Any:
    """Call ``target(*args, report=...)`` in a spawned child and return its result.

    ``report(stage, progress)`` calls in the child arrive as ``on_report`` calls here; ``tick``
    runs every ``tick_s`` seconds meanwhile (and may raise to stop the child). A child over its
    limits ends with ImageTooLarge; one that dies otherwise with ChildCrashed. With ``spare``,
    a child started ahead (``start_spare``) takes the call when it fits, and a new spare is
    started once this call is over.
    """
    spec = _Spec(target.__module__, limits.memory_mb, setup)
    child = _take_spare(spec) or _KEEPER.submit(_Child, spec).result()
    try:
        child.conn.send((target, args))
        return _supervise(child.messages(tick_s), on_report, tick, limits)
    finally:
        child.close()
        if spare:
            _KEEPER.submit(_refill, spec)


def start_spare(
    target: Callable[..., Any], limits: ChildLimits, setup: Callable[[], object] | None = None
) -> None:
    """Start a child for ``target`` now, so the next call does not wait for an interpreter to
    start and import (0.5 to 1.2 s). It waits with its limits set and its imports done; idle, it
    costs one interpreter's memory, and a conversion uses it instead of starting another."""
    _KEEPER.submit(_refill, _Spec(target.__module__, limits.memory_mb, setup))


@dataclass(frozen=True)
class _Spec:
    """What a child is started with, before it knows its job."""

    module: str  # imported while the child waits
    memory_mb: int
    setup: Callable[[], object] | None

    def key(self) -> bytes:
        """Equal for equal specs (a partial compares by identity; its pickle by content)."""
        return pickle.dumps(self)


class _Child:
    """A spawned child waiting for one job on its pipe."""

    def __init__(self, spec: _Spec) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe()
        self.key = spec.key()
        self.process = context.Process(
            target=_child_main,
            args=(child_end, os.getpid(), spec),
            name="plexzoom-convert",
            daemon=True,
        )
        self.process.start()
        child_end.close()

    def messages(self, tick_s: float) -> Callable[[], list[tuple[Any, ...]]]:
        """What the child sent within ``tick_s``; raises ChildCrashed when it died silently."""

        def receive() -> list[tuple[Any, ...]]:
            found = []
            for ready in wait([self.conn, self.process.sentinel], timeout=tick_s):
                if ready is self.conn:
                    found.append(_receive(self.conn, self.process))
                elif not self.conn.poll():
                    self.process.join()
                    raise _crashed(self.process.exitcode)
            return found

        return receive

    def close(self) -> None:
        """End the child if it still runs and release the pipe."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


# Children are started from this one long-lived thread: Linux sends the parent-death signal
# when the *thread* that started a child ends, and a spare outlives the job that started it.
_KEEPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plexzoom-child")
_spare_lock = threading.Lock()
_spare: list[_Child] = []  # at most one


def _take_spare(spec: _Spec) -> _Child | None:
    """The waiting spare if it was started for ``spec`` and still lives."""
    with _spare_lock:
        child = _spare.pop() if _spare else None
    if child is None:
        return None
    if child.key == spec.key() and child.process.is_alive():
        return child
    child.close()
    return None


def _refill(spec: _Spec) -> None:
    """Start a spare for ``spec`` unless one waits already (runs on the keeper thread)."""
    with _spare_lock:
        if _spare:
            return
    child = _Child(spec)
    with _spare_lock:
        _spare.append(child)


def run_in_thread(
    target: Callable[..., Any],
    args: tuple[Any, ...],
    on_report: Report,
    tick: Callable[[], None],
    tick_s: float,
) -> Any:
    """``run_in_child`` without the child (tests, and callers that need no isolation): the
    target runs in a thread here, supervised by the same loop."""
    queue: Queue[tuple[Any, ...]] = Queue()

    def run() -> None:
        try:
            report: Report = lambda stage, value: queue.put(("progress", stage, value))  # noqa: E731
            queue.put(("done", target(*args, report=report)))
        except BaseException as exc:
            queue.put(("error", exc))

    def messages() -> list[tuple[Any, ...]]:
        try:
            return [queue.get(timeout=tick_s)]
        except Empty:
            return []

    thread = threading.Thread(target=run, name="plexzoom-build", daemon=True)
    thread.start()
    try:
        return _supervise(messages, on_report, tick, ChildLimits())
    finally:
        thread.join()


def _supervise(
    messages: Callable[[], list[tuple[Any, ...]]],
    on_report: Report,
    tick: Callable[[], None],
    limits: ChildLimits,
) -> Any:
    """Pass progress on and tick until the answer arrives; enforce the wall-clock limit."""
    deadline = time.monotonic() + limits.timeout_s if limits.timeout_s else float("inf")
    while True:
        for message in messages():
            if message[0] != "progress":
                return _unpack(message, limits)
            on_report(message[1], message[2])
        tick()
        if time.monotonic() > deadline:
            raise ImageTooLarge(
                f"The conversion took longer than {limits.timeout_s:g} s, the configured "
                "limit (PLEXZOOM_CONVERT_TIMEOUT_S); the image is too large or too slow "
                "to decode."
            )


def _receive(receive: Connection, child: BaseProcess) -> tuple[Any, ...]:
    """One message from the child (a crash when it closed the pipe without one)."""
    try:
        message: tuple[Any, ...] = receive.recv()
    except EOFError:
        child.join(5)  # its exit code tells how it died
        return ("crash", child.exitcode)
    return message


def _unpack(message: tuple[Any, ...], limits: ChildLimits) -> Any:
    kind = message[0]
    if kind == "done":
        return message[1]
    if kind == "error":
        raise message[1]
    if kind == "memory":
        raise ImageTooLarge(
            f"The conversion needed more than {limits.memory_mb} MiB of memory, the configured "
            "limit (PLEXZOOM_CONVERT_MEMORY_MB); raise it or convert a smaller image."
        )
    raise _crashed(message[1] if len(message) > 1 else None)


def _crashed(exitcode: int | None) -> ChildCrashed:
    how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"code {exitcode}"
    return ChildCrashed(f"The conversion process ended unexpectedly ({how}); it will be retried.")


def _child_main(conn: Connection, parent: int, spec: _Spec) -> None:
    """The child: limits and imports first, then wait for the job; every outcome becomes one
    message."""
    _die_with_parent(parent)
    if spec.memory_mb:
        cap = spec.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    if spec.setup is not None:
        spec.setup()
    sys.unraisablehook = _note_unraisable
    importlib.import_module(spec.module)
    try:
        target, args = conn.recv()
    except EOFError:  # a spare nobody needed
        return
    progress: list[tuple[str, float]] = [("", -1.0)]

    def report(stage: str, value: float) -> None:
        if stage != progress[0][0] or value >= progress[0][1] + 0.001:  # a few hundred at most
            progress[0] = (stage, value)
            conn.send(("progress", stage, value))

    try:
        conn.send(("done", target(*args, report=report)))
    except BaseException as exc:
        conn.send(_describe(exc))


def _describe(exc: BaseException) -> tuple[Any, ...]:
    """The message for an exception: out of memory, a plexzoom error, or a crash."""
    if _memory_errors_seen:
        return ("memory",)
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen).lower()
        if isinstance(seen, MemoryError) or any(word in text for word in _MEMORY_WORDS):
            return ("memory",)
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, PlexzoomError):
        return ("error", type(exc)(exc.message))  # without its traceback and cause
    log.exception("the conversion process failed")
    return ("crash", None)


_memory_errors_seen: list[BaseException] = []


def _note_unraisable(unraisable: "sys.UnraisableHookArgs") -> None:
    """Remember a MemoryError that C code swallowed (libvips calls back into Python for I/O)."""
    if isinstance(unraisable.exc_value, MemoryError):
        _memory_errors_seen.append(unraisable.exc_value)
    sys.__unraisablehook__(unraisable)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the worker dies, so no conversion outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the worker died before the request took effect
        os._exit(1)
