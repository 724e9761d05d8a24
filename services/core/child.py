"""Run a function in a spawned child process with a memory cap and a wall-clock limit.

A crash, an out-of-memory or a runaway decode then ends the child, never the worker. The cap
is RLIMIT_DATA (heap and private mappings): libvips reserves far more address space than it
touches, so an address-space cap (RLIMIT_AS) breaks ordinary conversions.
"""

import contextlib
import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from queue import Empty, Queue
from typing import Any

from plexzoom.core.errors import ImageTooLarge, PlexzoomError

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


class ChildCrashed(PlexzoomError):
    """The child died without an answer (a signal, a crash): a counted, retried attempt."""

    permanent = False


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
) -> Any:
    """Call ``target(*args, report=...)`` in a spawned child and return its result.

    ``report(stage, progress)`` calls in the child arrive as ``on_report`` calls here; ``tick``
    runs every ``tick_s`` seconds meanwhile (and may raise to stop the child). A child over its
    limits ends with ImageTooLarge; one that dies otherwise with ChildCrashed.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main,
        args=(send, os.getpid(), target, args, limits.memory_mb, setup),
        name="plexzoom-convert",
        daemon=True,
    )
    child.start()
    send.close()

    def messages() -> list[tuple[Any, ...]]:
        found = []
        for ready in wait([receive, child.sentinel], timeout=tick_s):
            if ready is receive:
                found.append(_receive(receive, child))
            elif not receive.poll():
                child.join()
                raise _crashed(child.exitcode)
        return found

    try:
        return _supervise(messages, on_report, tick, limits)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()


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


def _child_main(
    send: Connection,
    parent: int,
    target: Callable[..., Any],
    args: tuple[Any, ...],
    memory_mb: int,
    setup: Callable[[], object] | None,
) -> None:
    """The child: limits first, then the work; every outcome becomes one message."""
    _die_with_parent(parent)
    if memory_mb:
        cap = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    if setup is not None:
        setup()
    sys.unraisablehook = _note_unraisable
    progress: list[tuple[str, float]] = [("", -1.0)]

    def report(stage: str, value: float) -> None:
        if stage != progress[0][0] or value >= progress[0][1] + 0.001:  # a few hundred at most
            progress[0] = (stage, value)
            send.send(("progress", stage, value))

    try:
        send.send(("done", target(*args, report=report)))
    except BaseException as exc:
        send.send(_describe(exc))


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
