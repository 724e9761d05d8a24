"""The access log: one line per HTTP request, written in batches (tiles are the hot path).

    2026-11-25T16:00:00.123Z access GET '/tiles/{id}/{gen}/image_files/12/3_2.jpeg' 200
        key=- image={id} 1.4ms        (one line)

The path never carries the query (tile tokens live there); ``key`` is the fingerprint of the
Bearer key the request presented, never the key. With PLEXZOOM_LOG_FORMAT=json the same fields
make one JSON object per line (plexzoom.core.logs).
"""

import json
import logging
import os
import re
import threading
import time
from typing import Any

from plexzoom.core.access import bearer_key, key_fingerprint
from plexzoom.core.logs import json_lines, utc_stamp
from plexzoom.core.metrics import answered

access_log = logging.getLogger("plexzoom.access")
_IMAGE_IN_PATH = re.compile(r"^/(?:v1/images|tiles)/([0-9a-z]{26})(?:/|$)")
ASGIApp = Any


class AccessLog:
    """ASGI middleware: one access log line per HTTP request, whatever its outcome."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.describe = describe_request_json if json_lines() else describe_request

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await answered(self.app, scope, receive, send, self.write)

    def write(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        """Write the request's line."""
        if access_log.isEnabledFor(logging.INFO):
            line = self.describe(scope, status, seconds)
            # makeRecord, not info(): no walk up the stack for the caller's file and line.
            access_log.handle(
                access_log.makeRecord(access_log.name, logging.INFO, "", 0, line, (), None)
            )


def _key_and_image(scope: dict[str, Any]) -> tuple[str | None, str | None]:
    """The fingerprint of the Bearer key the request carries, and the image its path names."""
    authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
    key = bearer_key(authorization) if authorization else None
    found = _IMAGE_IN_PATH.match(scope["path"])
    return (key_fingerprint(key) if key else None), (found.group(1) if found else None)


def describe_request(scope: dict[str, Any], status: int, seconds: float) -> str:
    """The access log line of a request (built directly: it is written for every tile)."""
    key, image = _key_and_image(scope)
    return (
        f"{scope['method']} {scope['path'][:300]!r} {status or '-'} key={key or '-'} "
        f"image={image or '-'} {seconds * 1000:.1f}ms"
    )


def request_fields(scope: dict[str, Any], status: int, seconds: float) -> dict[str, Any]:
    """What the access log tells of a request, as fields (the key by fingerprint; tokens live
    in the query, which is never logged)."""
    key, image = _key_and_image(scope)
    return {
        "method": scope["method"],
        "path": scope["path"][:300],
        "status": status or None,
        "key": key,
        "image": image,
        "ms": round(seconds * 1000, 1),
    }


def describe_request_json(scope: dict[str, Any], status: int, seconds: float) -> str:
    """The request's fields as a JSON object (the JSON access formatter adds time and logger)."""
    return json.dumps(request_fields(scope, status, seconds), ensure_ascii=False)


class AccessFormatter(logging.Formatter):
    """``2026-11-25T16:00:00.123Z access <line>``: UTC, the date formatted once a second."""

    def __init__(self) -> None:
        super().__init__("%(message)s")
        self._second, self._stamp = -1, ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        millis = int((record.created - second) * 1000)
        return f"{self._stamp}.{millis:03d}Z access {record.getMessage()}"


class JsonAccessFormatter(logging.Formatter):
    """``{"time": ..., "logger": "plexzoom.access", "method": ..., ...}``: the request's JSON
    object with the time and logger put in front."""

    def format(self, record: logging.LogRecord) -> str:
        head = f'{{"time":"{utc_stamp(record.created)}","logger":"plexzoom.access",'
        return head + record.getMessage()[1:]


class BatchedHandler(logging.Handler):
    """Writes lines to a file descriptor in batches: every ``interval_s`` from a background
    thread, or at once past 64 KiB (a write per line cost the tile path a third of its speed)."""

    def __init__(self, fd: int = 2, interval_s: float = 0.2) -> None:
        super().__init__()
        self.fd, self.interval_s = fd, interval_s
        self.pending: list[str] = []
        self.size = 0
        threading.Thread(target=self._flush_often, name="access-log", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record) + "\n"
        self.pending.append(line)  # handle() holds self.lock
        self.size += len(line)
        if self.size >= 65536:
            self._write()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._write()

    def _write(self) -> None:
        data = "".join(self.pending).encode("utf-8", "backslashreplace")
        self.pending.clear()
        self.size = 0
        while data:
            data = data[os.write(self.fd, data) :]

    def _flush_often(self) -> None:
        while True:
            time.sleep(self.interval_s)
            try:
                self.flush()
            except OSError:
                return  # the log went away (stderr closed): nothing left to write to


def log_requests_to_stderr() -> None:
    """Send the access log to stderr in batches (uvicorn configures only its own loggers)."""
    if not access_log.handlers:
        handler = BatchedHandler()
        handler.setFormatter(JsonAccessFormatter() if json_lines() else AccessFormatter())
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
