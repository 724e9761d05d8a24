"""Conversions held at a progress value until the test lets them go: long by construction.

The stack's processes load tests/holdsite/sitecustomize.py (through PYTHONPATH), which stops a
conversion at each value the test arms and waits for the test to open it. A test that needs a
conversion in flight (to kill it, delete its image, send a duplicate message, break its storage)
arms a hold before the upload and opens it when it is done, so nothing depends on how fast
the machine converts.
"""

import os
import time
from pathlib import Path

SITE = Path(__file__).resolve().parent / "holdsite"


class Hold:
    """The test's side of the holds, in a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        """Environment for a process whose conversions may be held."""
        path = os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH", "")) if p)
        return {"PYTHONPATH": path, "PLEXZOOM_TEST_HOLD_DIR": str(self.folder)}

    def arm(self, *values: float | str) -> None:
        """Conversions that start from now on stop at each of ``values`` (0..1); none: no holds.

        Forgets earlier holds and releases (so only conversions that start later are seen):
        call it while no conversion is held.
        """
        for old in [*self.folder.glob("held-*"), *self.folder.glob("open-*")]:
            old.unlink()
        (self.folder / "hold-at").write_text("".join(f"{_name(v)}\n" for v in values))

    def wait_held(self, value: float | str, timeout_s: float = 120) -> int:
        """Wait until a conversion stops at ``value`` (or an inbox claim at "claimed");
        return its process id."""
        held = self.folder / f"held-{_name(value)}"
        deadline = time.monotonic() + timeout_s
        while not held.exists():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"nothing stopped at {_name(value)} within {timeout_s} s "
                    "(does tests/holdsite/sitecustomize.py still patch the converter?)"
                )
            time.sleep(0.02)
        return int(held.read_text())

    def release(self, value: float | str) -> None:
        """Let every conversion held at ``value`` go on, and those that reach it later."""
        (self.folder / f"open-{_name(value)}").touch()

    def disarm(self) -> None:
        """Release every armed value; conversions that start from now on run freely."""
        listed = self.folder / "hold-at"
        for value in listed.read_text().split() if listed.exists() else []:
            self.release(value)
        listed.write_text("")


def _name(value: float | str) -> str:
    """A hold point as the files name it: a progress value, or a named point."""
    return value if isinstance(value, str) else f"{value:g}"
