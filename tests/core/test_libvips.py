"""The libvips loader allow-list, checked in fresh interpreters (this one stays unrestricted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import REPO, require_redis

# Loads each sample, runs the set-up code given as argument, loads them again; prints which loaded.
PROBE = """
import json, sys
import pyvips

black = pyvips.Image.black(8, 8)
samples = {
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" '
    b'height="8" fill="red"/></svg>',
    "gif": black.gifsave_buffer(),
    "heif": black.heifsave_buffer(compression="av1"),
    "png": black.pngsave_buffer(),
    "jpeg": black.jpegsave_buffer(),
    "webp": black.webpsave_buffer(),
    "tiff": black.tiffsave_buffer(),
}


def loads():
    found = {}
    for name, data in samples.items():
        try:
            found[name] = pyvips.Image.new_from_buffer(data, "").width == 8
        except pyvips.Error:
            found[name] = False
    return found


before = loads()
exec(sys.argv[1])
print(json.dumps({"before": before, "after": loads()}))
"""


def probe(setup: str, env: dict[str, str] | None = None) -> dict[str, dict[str, bool]]:
    """Run PROBE with ``setup`` between the two rounds of loads."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, setup],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=True,
    )
    found: dict[str, dict[str, bool]] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_only_allow_listed_loaders_run_after_restriction() -> None:
    """SVG, GIF and HEIF load in a plain process and fail after restrict_loaders()."""
    found = probe("from plexzoom.core.libvips import restrict_loaders; restrict_loaders()")
    assert all(found["before"].values())  # every loader exists here
    assert not any(found["after"][name] for name in ("svg", "gif", "heif"))
    assert all(found["after"][name] for name in ("png", "jpeg", "webp", "tiff"))


def test_the_worker_process_restricts_loaders_at_start() -> None:
    """Importing the worker entry point (as `dramatiq plexzoom.worker.main` does) restricts."""
    env = {"PLEXZOOM_REDIS_URL": require_redis(13)}
    found = probe("import plexzoom.worker.main", env)
    assert found["before"]["svg"]
    assert not found["after"]["svg"] and not found["after"]["gif"]
    assert found["after"]["tiff"] and found["after"]["png"]


@pytest.mark.parametrize("factory", ["plexzoom.api.main", "plexzoom.tiles.main", "plexzoom.web"])
def test_each_web_service_restricts_loaders_at_start(tmp_path: Path, factory: str) -> None:
    """Each uvicorn factory (the api alone, the tile service alone, make run's one origin)
    restricts loaders before anything is decoded."""
    env = {"PLEXZOOM_REDIS_URL": require_redis(13), "PLEXZOOM_DATA_DIR": str(tmp_path)}
    found = probe(f"import {factory} as m; m.create_app_from_env()", env)
    assert found["before"]["svg"]
    assert not found["after"]["svg"]
    assert found["after"]["png"]
