"""Request metrics and the access log of the tile process, in one ASGI layer (tiles are the hot
path: one wrapped ``send`` and one clock reading per request instead of one per layer).

The access line is the api's (plexzoom.api.accesslog.describe_request; ``text_line`` builds
the same text without its dict of fields), handed straight to the ``plexzoom.access`` logger's
handlers in a light record: a LogRecord's constructor looks up the process, the thread and the
caller's file for every line, which cost the tile path a tenth of its speed, and the access
formatters read only the time and the message.
"""

import logging
import re
import time
from typing import Any

from plexzoom.api.accesslog import (
    AccessFormatter,
    JsonAccessFormatter,
    access_log,
    describe_request_json,
)
from plexzoom.core.access import bearer_key, key_fingerprint
from plexzoom.core.logs import json_lines
from plexzoom.tiles.app import ROUTE
from plexzoom.tiles.metrics import TALLY

Scope = dict[str, Any]
ASGIApp = Any
_IMAGE_IN_PATH = re.compile(r"^/(?:v1/images|tiles)/([0-9a-z]{26})(?:/|$)")


class AccessRecord(logging.LogRecord):
    """A log record of one access line: only what formatters and handlers read."""

    def __init__(self, line: str) -> None:  # no super().__init__: see the module's docstring
        self.name, self.msg, self.args = access_log.name, line, ()
        self.levelname, self.levelno = "INFO", logging.INFO
        self.created = time.time()
        self.msecs = (self.created - int(self.created)) * 1000
        self.exc_info, self.exc_text, self.stack_info = None, None, None
        self.pathname = self.filename = self.module = self.funcName = ""
        self.lineno = 0


class Observed:
    """Counts and times each HTTP request by route template (plexzoom.core.metrics' figures,
    the counts tallied: plexzoom.tiles.metrics) and writes its access line."""

    def __init__(self, app: ASGIApp, access_lines: bool) -> None:
        self.app = app
        self.access_lines = access_lines
        self.describe = describe_request_json if json_lines() else text_line

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def record_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            seconds = time.perf_counter() - started
            TALLY.request(scope.get(ROUTE, "unmatched"), scope["method"], status, seconds)
            if self.access_lines and access_log.isEnabledFor(logging.INFO):
                record = AccessRecord(self.describe(scope, status, seconds))
                for handler in access_log.handlers:  # the logger's own: it does not propagate
                    handler.handle(record)


def text_line(scope: Scope, status: int, seconds: float) -> str:
    """describe_request's line (a test keeps them equal), without its dict of fields."""
    authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
    key = bearer_key(authorization) if authorization else None
    path: str = scope["path"]
    found = _IMAGE_IN_PATH.match(path)
    return (
        f"{scope['method']} {path[:300]!r} {status or '-'} "
        f"key={key_fingerprint(key) if key else '-'} "
        f"image={found.group(1) if found else '-'} {seconds * 1000:.1f}ms"
    )


def light_records_suffice() -> bool:
    """True when the access logger keeps its lines to its own handlers, which format with the
    api's access formatters (they read only the time and the message of a record)."""
    formats = (AccessFormatter, JsonAccessFormatter)
    plain = not access_log.propagate and not access_log.filters
    return plain and all(
        isinstance(h.formatter, formats) and h.level <= logging.INFO for h in access_log.handlers
    )
