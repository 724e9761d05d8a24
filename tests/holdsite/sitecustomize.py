"""Holds a conversion at chosen progress values until the test releases it (see tests/holds.py).

Python imports this module at start-up in every process whose PYTHONPATH names this folder:
the stack's web and worker processes and the conversion child the worker spawns. It wraps
``Progress.set`` of plexzoom's conversion once that module is imported, so a test can make a
conversion as long as it likes by construction, whatever the machine's speed.

Protocol, all files in ``$PLEXZOOM_TEST_HOLD_DIR``: a conversion that starts while ``hold-at``
lists progress values (one per line) stops at each of them, writes ``held-{value}`` (its pid)
and waits until ``open-{value}`` exists. Without ``hold-at``, nothing changes.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

TARGET = "plexzoom.core.convert"
LONGEST_HOLD_S = 600  # a test that never releases still ends, on its own timeout


def _hold(folder: Path, value: float) -> None:
    """Announce the hold, then wait for the test to open it."""
    opened = folder / f"open-{value:g}"
    if opened.exists():
        return
    held = folder / f"held-{value:g}"
    partial = held.with_suffix(f".{os.getpid()}")
    partial.write_text(str(os.getpid()))
    partial.replace(held)
    deadline = time.monotonic() + LONGEST_HOLD_S
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def _patch(module: ModuleType, folder: Path) -> None:
    """Wrap Progress so that each conversion stops at the values ``hold-at`` lists."""
    progress = module.Progress  # a rename must break the tests that hold, not silence them
    original_init, original_set = progress.__init__, progress.set

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        listed = folder / "hold-at"
        text = listed.read_text() if listed.exists() else ""
        self._holds = sorted(float(line) for line in text.split())

    def set_value(self: Any, value: float) -> None:
        original_set(self, value)
        while self._holds and self._holds[0] <= value:
            _hold(folder, self._holds.pop(0))

    progress.__init__, progress.set = init, set_value


class _Finder(importlib.abc.MetaPathFinder):
    """Patches TARGET right after the normal import has run it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module
        folder = self.folder

        def exec_module(module: ModuleType) -> None:
            run(module)
            _patch(module, folder)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get("PLEXZOOM_TEST_HOLD_DIR"):
    sys.meta_path.insert(0, _Finder(Path(os.environ["PLEXZOOM_TEST_HOLD_DIR"])))
