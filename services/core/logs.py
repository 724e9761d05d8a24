"""Log lines as text (the default) or as one JSON object per line (PLEXZOOM_LOG_FORMAT=json),
for a log collector that parses fields rather than reading sentences.

    {"time": "2026-12-04T23:40:01.123Z", "level": "INFO", "logger": "plexzoom.core.convert",
     "message": "image 01j...: ready"}                                              (one line)

A traceback becomes ``"error": "<exception class>"`` plus the stack in ``"stack"``; nothing
else changes: the same lines are written, with the same care about what they name.
"""

import copy
import json
import logging
import sys
import time
from typing import Any

_json_lines = False


def json_lines() -> bool:
    """True when log lines are JSON objects (set once at start by configure_logging)."""
    return _json_lines


def utc_stamp(created: float) -> str:
    """``2026-12-04T23:40:01.123Z`` for a record's creation time."""
    second = int(created)
    millis = int((created - second) * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(second))}.{millis:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, and the error if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": utc_stamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            line["stack"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    """Write every handler's lines as JSON when ``log_format`` is "json" (the root logger's and
    those of loggers that keep their own, such as uvicorn's; one on stderr when the root has
    none). Call at start, before the access log and the app are built."""
    global _json_lines
    _json_lines = log_format == "json"
    if not _json_lines:
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())  # stderr, at the root's level
    formatter = JsonFormatter()
    loggers = [root] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and logger.name != "plexzoom.access"
    ]
    for logger in loggers:
        for handler in logger.handlers:
            handler.setFormatter(formatter)


def uvicorn_log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's own logging settings, its lines as JSON objects when ``log_format`` is "json"
    (the supervising process logs before any app is built)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if log_format == "json":
        for formatter in config["formatters"].values():
            formatter.clear()
            formatter["()"] = "plexzoom.core.logs.JsonFormatter"
    return config


def say(text: str, error: bool = False, log_format: str = "text") -> None:
    """A start-up notice on stdout (stderr when ``error``), as a JSON line in JSON mode."""
    if log_format == "json":
        level = "ERROR" if error else "INFO"
        text = json.dumps(
            {"time": utc_stamp(time.time()), "level": level, "logger": "plexzoom", "message": text}
        )
    print(text, file=sys.stderr if error else sys.stdout, flush=True)
