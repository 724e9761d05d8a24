"""Real server processes for tests: moto's S3 server and the whole stack (plexzoom.run)."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
import redis

from tests.holds import Hold

CI = bool(os.environ.get("CI"))
REDIS_URL = os.environ.get("PLEXZOOM_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """Wait until ``url`` answers 200, or fail with the process's fate."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout_s: float = 20) -> None:
    """Stop a process politely, then firmly."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class MotoServer:
    """moto's S3 server in its own process on loopback."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"{self.endpoint}/moto-api/", self.proc)

    def stop(self) -> None:
        """Stop the server."""
        stop(self.proc, signal.SIGTERM)


def require_redis(db: int) -> str:
    """URL of an empty Redis database on the machine's server; skip only outside CI."""
    url = f"{REDIS_URL}/{db}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
    except redis.RedisError as exc:
        if CI:
            raise
        pytest.skip(f"no Redis at {url}: {exc}")
    return url


class Stack:
    """`python -m plexzoom.run` (web + worker) in a subprocess, as `make run` starts it; its
    conversions can be held at a progress value (``hold``, see tests/holds.py)."""

    def __init__(
        self, data_dir: Path, env: Mapping[str, str], log_path: Path, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir, self.env = data_dir, dict(env)
        self.hold = Hold(data_dir.parent / "holds")
        full_env = {
            **os.environ,
            "PLEXZOOM_DATA_DIR": str(data_dir),
            "PLEXZOOM_PORT": str(self.port),
            "PLEXZOOM_WEB_PROCESSES": "1",
            **self.hold.env(),
            **env,
        }
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plexzoom.run"],
            env=full_env,
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(f"{self.url}/healthz", self.proc, timeout_s=60)

    def stop(self) -> None:
        """Stop the stack as Ctrl-C would."""
        stop(self.proc, signal.SIGINT)
        self.log.close()

    def wait_status(
        self, image_id: str, statuses: tuple[str, ...] = ("ready", "failed"), timeout_s: float = 120
    ) -> dict[str, object]:
        """Poll an image until its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body: dict[str, object] = httpx.get(f"{self.url}/v1/images/{image_id}").json()
            if body["status"] in statuses:
                return body
            time.sleep(0.2)
        raise AssertionError(f"image {image_id} did not reach {statuses} in {timeout_s} s")
