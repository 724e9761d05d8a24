"""`make run` (python -m plexzoom.run): private Redis, loud failure, supervision, clean stop."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from plexzoom.run import RunSettings, access_notice
from tests.servers import REPO, Stack, free_port

pytestmark = pytest.mark.slow


def test_unanswering_redis_fails_loudly(tmp_path: Path) -> None:
    """A configured Redis that does not answer stops the start; no other broker is used."""
    env = {
        **os.environ,
        "PLEXZOOM_DATA_DIR": str(tmp_path),
        "PLEXZOOM_PORT": str(free_port()),
        "PLEXZOOM_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "plexzoom.run"], env=env, cwd=REPO, capture_output=True, timeout=60
    )
    assert done.returncode != 0
    assert b"does not answer" in done.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_no_keys_means_no_listening_beyond_loopback(tmp_path: Path, host: str) -> None:
    """Without API keys, a non-loopback PLEXZOOM_HOST stops the start before anything runs."""
    env = {
        **os.environ,
        "PLEXZOOM_DATA_DIR": str(tmp_path),
        "PLEXZOOM_PORT": str(free_port()),
        "PLEXZOOM_HOST": host,
    }
    env.pop("PLEXZOOM_API_KEYS", None)
    done = subprocess.run(
        [sys.executable, "-m", "plexzoom.run"], env=env, cwd=REPO, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert f"refusing to listen on {host} without API keys".encode() in done.stderr
    assert b"PLEXZOOM_API_KEYS" in done.stderr
    assert not (tmp_path / "redis").exists(), "nothing was started"


@pytest.mark.parametrize(
    ("host", "keys", "allowed", "said"),
    [
        ("127.0.0.1", "", True, "to this machine only"),
        ("127.0.0.2", "", True, "to this machine only"),
        ("::1", "", True, "to this machine only"),
        ("localhost", "", True, "to this machine only"),
        ("0.0.0.0", "k1,k2", True, "2 configured"),
        ("0.0.0.0", " , ", False, "refusing"),
    ],
)
def test_the_access_notice(host: str, keys: str, allowed: bool, said: str) -> None:
    settings = RunSettings(host=host, api_keys=keys)
    may_start, notice = access_notice(settings)
    assert may_start is allowed
    assert said in notice
    assert "k1" not in notice


def test_private_redis_supervised_worker_and_clean_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without PLEXZOOM_REDIS_URL the stack runs its own Redis; a dead worker comes back;
    SIGINT leaves no process behind."""
    monkeypatch.delenv("PLEXZOOM_REDIS_URL", raising=False)  # only for this test's children
    stack = Stack(tmp_path / "data", {}, tmp_path / "stack.log")
    try:
        assert os.environ.get("PLEXZOOM_REDIS_URL") is None
        assert httpx.get(f"{stack.url}/healthz").json()["broker"] == "ok"
        assert (tmp_path / "data" / "redis" / "redis.sock").exists()
        launcher = psutil.Process(stack.proc.pid)
        family = launcher.children(recursive=True)
        worker = _workers(launcher)[0]
        worker.kill()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            workers = _workers(launcher)
            if workers and workers[0].pid != worker.pid:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the worker was not restarted")
        family += launcher.children(recursive=True)
    finally:
        stack.stop()
    assert stack.proc.returncode == 0
    said = (tmp_path / "stack.log").read_text()
    assert "the API is open, to this machine only" in said  # make run
    assert "the API is open; serve it on loopback only" in said  # each web process
    psutil.wait_procs(family, timeout=20)
    assert _alive(family) == []


def _workers(launcher: psutil.Process) -> list[psutil.Process]:
    """The launcher's live dramatiq children."""
    found = []
    for child in launcher.children():
        try:
            if "dramatiq" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue  # exited or a zombie
    return found


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` still running (zombies count as gone)."""
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            continue
    return alive


def test_sigterm_also_stops_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM (what a process manager sends) stops the stack like Ctrl-C."""
    monkeypatch.delenv("PLEXZOOM_REDIS_URL", raising=False)
    stack = Stack(tmp_path / "data", {}, tmp_path / "stack.log")
    family = psutil.Process(stack.proc.pid).children(recursive=True)
    stack.proc.send_signal(signal.SIGTERM)
    stack.proc.wait(timeout=30)
    stack.log.close()
    psutil.wait_procs(family, timeout=20)
    assert _alive(family) == []
