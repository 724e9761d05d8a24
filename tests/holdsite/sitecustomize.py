"""Holds a conversion at chosen progress values until the test releases it (see tests/holds.py).

Python imports this module at start-up in every process whose PYTHONPATH names this folder:
the stack's web and worker processes and the conversion child the worker spawns. It wraps
``Progress.set`` of plexzoom's conversion and the inbox's ``complete_claim`` once their modules
are imported, so a test can hold either as long as it likes by construction, whatever the
machine's speed.

Protocol, all files in ``$PLEXZOOM_TEST_HOLD_DIR``: a conversion that starts while ``hold-at``
lists progress values (one per line) stops at each of them, writes ``held-{value}`` (its pid)
and waits until ``open-{value}`` exists. The name ``claimed`` holds the inbox instead: each
claim of an inbox object stops before its image is created (``held-claimed``). Without
``hold-at``, nothing changes.
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

CLAIMED = "claimed"
LONGEST_HOLD_S = 600  # a test that never releases still ends, on its own timeout


def _armed(folder: Path) -> list[str]:
    """What ``hold-at`` lists now."""
    listed = folder / "hold-at"
    return listed.read_text().split() if listed.exists() else []


def _hold(folder: Path, point: str) -> None:
    """Announce the hold, then wait for the test to open it."""
    opened = folder / f"open-{point}"
    if opened.exists():
        return
    held = folder / f"held-{point}"
    partial = held.with_suffix(f".{os.getpid()}")
    partial.write_text(str(os.getpid()))
    partial.replace(held)
    deadline = time.monotonic() + LONGEST_HOLD_S
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def _patch_progress(module: ModuleType, folder: Path) -> None:
    """Wrap Progress so that each conversion stops at the values ``hold-at`` lists."""
    progress = module.Progress  # a rename must break the tests that hold, not silence them
    original_init, original_set = progress.__init__, progress.set

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        points = [p for p in _armed(folder) if p != CLAIMED]
        self._holds = sorted(points, key=float)

    def set_value(self: Any, value: float) -> None:
        original_set(self, value)
        while self._holds and float(self._holds[0]) <= value:
            _hold(folder, self._holds.pop(0))

    progress.__init__, progress.set = init, set_value


def _patch_claims(module: ModuleType, folder: Path) -> None:
    """Wrap complete_claim so that an inbox claim stops before its image exists."""
    original = module.complete_claim

    def complete_claim(*args: Any, **kwargs: Any) -> Any:
        if CLAIMED in _armed(folder):
            _hold(folder, CLAIMED)
        return original(*args, **kwargs)

    module.complete_claim = complete_claim


PATCHES = {"plexzoom.core.build": _patch_progress, "plexzoom.core.inbox": _patch_claims}


class _Finder(importlib.abc.MetaPathFinder):
    """Patches the modules of PATCHES right after the normal import has run them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        patch = PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module
        folder = self.folder

        def exec_module(module: ModuleType) -> None:
            run(module)
            patch(module, folder)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get("PLEXZOOM_TEST_HOLD_DIR"):
    sys.meta_path.insert(0, _Finder(Path(os.environ["PLEXZOOM_TEST_HOLD_DIR"])))
