"""Worker roles: conversion workers that run nothing on a clock (they may scale to zero), and
one maintenance worker that runs the passes (reconciler, inbox scanner, ...) and consumes no
queue; together they take a file dropped in the inbox to `ready`."""

import os
import signal
import time
from pathlib import Path

import pytest

from plexzoom.core.images import list_images
from plexzoom.core.storage import LocalStorage
from tests.conftest import quadrant_bytes
from tests.servers import require_redis, start_module

pytestmark = pytest.mark.slow
TIMEOUT_S = 120


def wait_logged(log: Path, text: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{log.name} never said {text!r}"
        time.sleep(0.05)


def test_convert_and_maintain_workers_share_the_work(tmp_path: Path) -> None:
    data = tmp_path / "data"
    common = {
        "PLEXZOOM_DATA_DIR": str(data),
        "PLEXZOOM_REDIS_URL": require_redis(4),
        "PLEXZOOM_INBOX_SETTLE_S": "0.2",
    }
    logs = {role: tmp_path / f"{role}.log" for role in ("convert", "maintain")}
    # A scratch folder that does not exist yet: the worker makes it at start.
    scratch = {"PLEXZOOM_SCRATCH_DIR": str(tmp_path / "scratch" / "not-yet")}
    procs = [
        start_module(
            "plexzoom.worker", {**common, **scratch, "PLEXZOOM_WORKER_ROLE": role}, logs[role]
        )
        for role in ("convert", "maintain")
    ]
    try:
        for log in logs.values():
            wait_logged(log, "Worker process is ready for action")
        wait_logged(logs["maintain"], "watching the inbox folder")
        (data / "inbox").mkdir(parents=True, exist_ok=True)
        (data / "inbox" / "dropped.png").write_bytes(quadrant_bytes("png"))
        storage = LocalStorage(data)
        deadline = time.monotonic() + TIMEOUT_S
        while not [m for m in list_images(storage, 10).images if m.status == "ready"]:
            assert time.monotonic() < deadline, "the dropped file never became ready"
            time.sleep(0.1)
        wait_logged(logs["convert"], ": ready")  # the conversion worker converted it
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    # Nothing on a clock in the conversion worker; no conversion in the maintenance worker.
    assert "watching the inbox folder" not in logs["convert"].read_text()
    assert ": ready" not in logs["maintain"].read_text()
