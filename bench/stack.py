"""Processes the benchmarks drive: moto's S3 server and the whole plexzoom stack."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Wait until ``url`` answers 200, or fail with the process's fate."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def settle(max_s: float = 10.0, busy_percent: float = 15.0) -> None:
    """Wait (at most ``max_s``) until the machine's CPUs are idle: a server still digesting the
    last run (moto after a 50 MB upload) would otherwise slow whichever run comes next."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline and psutil.cpu_percent(interval=0.25) > busy_percent:
        pass


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait_s: float = 20
) -> None:
    """Stop a process politely, then kill it and whatever is left of its process group."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # every child was started in the process's own group


class MotoServer:
    """moto's S3 server in its own process on loopback (optionally with O(range) ranged GETs)."""

    def __init__(self, log_path: Path, ranged_reads_patch: bool = False) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path, self.log = log_path, log_path.open("wb")
        server = [str(HERE / "moto_ranges.py")] if ranged_reads_patch else ["-m", "moto.server"]
        self.proc = subprocess.Popen(
            [sys.executable, *server, "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, **S3_ENV},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(f"{self.endpoint}/moto-api/", self.proc)

    def env(self, bucket: str) -> dict[str, str]:
        """PLEXZOOM_* variables that point a stack at a bucket of this server."""
        return {**S3_ENV, "PLEXZOOM_S3_ENDPOINT_URL": self.endpoint, "PLEXZOOM_S3_BUCKET": bucket}

    def ranged_gets(self) -> int:
        """How many ranged GETs (206 answers) the server has logged so far."""
        self.log.flush()
        with self.log_path.open("rb") as log:
            return sum(1 for line in log if b'" 206 ' in line)

    def stop(self) -> None:
        """Stop the server."""
        stop_process(self.proc)
        self.log.close()


class SeaweedS3:
    """SeaweedFS' S3 server (tests/servers.py starts it: telemetry off, loopback only)."""

    def __init__(self, log_path: Path) -> None:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        from tests.servers import SeaweedServer

        self.folder = log_path.with_suffix("")
        self.server = SeaweedServer(self.folder)
        self.endpoint = self.server.endpoint

    def env(self, bucket: str) -> dict[str, str]:
        """PLEXZOOM_* variables that point a stack at a bucket of this server."""
        keys = {"AWS_ACCESS_KEY_ID": self.server.ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": self.server.SECRET_KEY}  # fmt: skip
        return {**S3_ENV, **keys, "PLEXZOOM_S3_ENDPOINT_URL": self.endpoint,
                "PLEXZOOM_S3_BUCKET": bucket}  # fmt: skip

    def stop(self) -> None:
        """Stop the server and remove its data."""
        self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class Stack:
    """`python -m plexzoom.run` (private Redis, uvicorn web, Dramatiq worker) as `make run`."""

    def __init__(self, data_dir: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Only our settings: a PLEXZOOM_* variable left in the shell (a bucket, a Redis URL)
        # would silently change what is measured. Redis is always the stack's private one.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PLEXZOOM_")}
        full_env = {
            **inherited,
            "PLEXZOOM_DATA_DIR": str(data_dir),
            "PLEXZOOM_PORT": str(self.port),
            **env,
        }
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plexzoom.run"],
            env=full_env,
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.client = httpx.Client(base_url=self.url, timeout=60)
        try:
            wait_http(f"{self.url}/healthz", self.proc, timeout_s=90)
        except BaseException:
            self.stop()
            raise

    def worker_root(self) -> psutil.Process:
        """The Dramatiq CLI process (its children are the worker processes)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for child in psutil.Process(self.proc.pid).children():
                try:
                    if any("dramatiq" in part for part in child.cmdline()):
                        return child
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.1)
        raise RuntimeError("the stack has no Dramatiq worker process")

    def upload(self, path: Path) -> tuple[str, float]:
        """POST the file; returns its id and the monotonic time the 202 arrived."""
        with path.open("rb") as f:
            answer = self.client.post(
                "/v1/images", files={"file": (path.name, f, "image/tiff")}, timeout=600
            )
        arrived = time.monotonic()
        if answer.status_code != 202:
            raise RuntimeError(f"upload answered {answer.status_code}: {answer.text[:300]}")
        return str(answer.json()["id"]), arrived

    def wait_ready(self, image_id: str, timeout_s: float, poll_s: float) -> dict[str, object]:
        """Poll every ``poll_s`` until the image is ready; its status."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body: dict[str, object] = self.client.get(f"/v1/images/{image_id}").json()
            if body["status"] == "ready":
                return body
            if body["status"] == "failed":
                raise RuntimeError(f"conversion of {image_id} failed: {body.get('error')}")
            time.sleep(poll_s)
        raise RuntimeError(f"image {image_id} was not ready within {timeout_s} s")

    def convert(
        self, path: Path, timeout_s: float, poll_s: float = 0.05
    ) -> tuple[dict[str, object], float]:
        """Upload and wait: the ready status and the seconds from the 202 to 'ready'.

        The time is the manifest's own: from the 202 to the ``updated`` time of the commit that
        made it ready (less the few milliseconds of that one write), so the polling interval
        adds nothing; a poll sees it up to ``poll_s`` later. Both clocks are this machine's.
        """
        image_id, accepted = self.upload(path)
        answered = time.time() - (time.monotonic() - accepted)
        status = self.wait_ready(image_id, timeout_s, poll_s)
        polled = time.monotonic() - accepted
        total = datetime.fromisoformat(str(status["updated"])).timestamp() - answered
        if not 0 < total <= polled:
            raise RuntimeError(f"ready {total:.3f} s after the upload, seen at {polled:.3f} s")
        return status, total

    def stop(self) -> None:
        """Stop the stack as Ctrl-C would, then make sure nothing of it is left."""
        self.client.close()
        stop_process(self.proc, signal.SIGINT, wait_s=30)
        self.log.close()


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User+system CPU seconds used so far by these processes."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


class TreeSampler:
    """Samples, every ``interval_s``, the summed RSS of a process tree and the bytes under dirs."""

    def __init__(self, root: psutil.Process, dirs: list[Path], interval_s: float = 0.05) -> None:
        self.root, self.dirs, self.interval = root, dirs, interval_s
        self.peak_rss = 0
        self.peak_disk = 0
        self.peak_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def tree(self) -> list[psutil.Process]:
        """The root and all its descendants right now (empty once the root is gone)."""
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def tree_rss(self) -> tuple[int, int]:
        """(summed RSS, process count) of the root and all its descendants right now."""
        total, count = 0, 0
        for proc in self.tree():
            try:
                total += proc.memory_info().rss
                count += 1
            except psutil.NoSuchProcess:
                pass
        return total, count

    def disk_bytes(self) -> int:
        """Total size of the files under the watched folders."""
        total = 0
        for folder in self.dirs:
            for parent, _dirs, files in os.walk(folder):
                for name in files:
                    with contextlib.suppress(FileNotFoundError):
                        total += os.stat(os.path.join(parent, name)).st_size
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, count = self.tree_rss()
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_procs = max(self.peak_procs, count)
            self.peak_disk = max(self.peak_disk, self.disk_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
