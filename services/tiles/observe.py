"""Request metrics and the access log of the tile process, in one ASGI layer (tiles are the hot
path: one wrapped ``send`` and one clock reading per request instead of one per layer).

The access line is the api's (plexzoom.core.accesslog.describe_request), handed straight to
the ``plexzoom.access`` logger's handlers in a light record: a LogRecord's constructor looks
up the process, the thread and the caller's file for every line, which cost the tile path a
tenth of its speed, and the access formatters read only the time and the message.
"""

import logging
import time
from typing import Any

from plexzoom.core.accesslog import (
    AccessFormatter,
    JsonAccessFormatter,
    access_log,
    describe_request,
    describe_request_json,
)
from plexzoom.core.logs import json_lines
from plexzoom.core.metrics import answered
from plexzoom.tiles.app import ROUTE
from plexzoom.tiles.metrics import TALLY

Scope = dict[str, Any]
ASGIApp = Any


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
        self.describe = describe_request_json if json_lines() else describe_request

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await answered(self.app, scope, receive, send, self.done)

    def done(self, scope: Scope, status: int, seconds: float) -> None:
        """Tally the request; write its access line."""
        TALLY.request(scope.get(ROUTE, "unmatched"), scope["method"], status, seconds)
        if self.access_lines and access_log.isEnabledFor(logging.INFO):
            record = AccessRecord(self.describe(scope, status, seconds))
            for handler in access_log.handlers:  # the logger's own: it does not propagate
                handler.handle(record)


def light_records_suffice() -> bool:
    """True when the access logger keeps its lines to its own handlers, which format with the
    api's access formatters (they read only the time and the message of a record)."""
    formats = (AccessFormatter, JsonAccessFormatter)
    plain = not access_log.propagate and not access_log.filters
    return plain and all(
        isinstance(h.formatter, formats) and h.level <= logging.INFO for h in access_log.handlers
    )
