"""Image events: every change of an image's record, in order, for pages, scripts and webhooks.

Whatever writes records (the API, a worker, a conversion child, the inbox scanner) writes them
through its storage; ``EventingStorage`` wraps that storage and publishes what it sees: the first
write of a record is ``created``, each later one ``image``, its deletion ``deleted``. Events go
to one capped Redis stream, so every api process can stream every event (fan-out through Redis),
a reader resumes after an event id, and the webhook sender reads them with a consumer group.

Progress is coalesced where it is written: an event that changes only the progress goes out at
most every ``PROGRESS_EVERY_S`` per image, so a fast conversion cannot flood clients.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from plexzoom.core import keys
from plexzoom.core.errors import NotFound
from plexzoom.core.manifest import Manifest, read_manifest
from plexzoom.core.storage import Storage

log = logging.getLogger(__name__)

STREAM = "plexzoom:events"
HISTORY = 10_000  # events kept (XADD MAXLEN ~): a conversion makes 10-20, so the last ~500 images
PROGRESS_EVERY_S = 0.25
KINDS = ("created", "image", "deleted")
_MANIFEST = re.compile(rf"^{re.escape(keys.IMAGES)}([0-9a-z]{{26}})/manifest\.json$")
_IMAGE_PREFIX = re.compile(rf"^{re.escape(keys.IMAGES)}([0-9a-z]{{26}})/$")


@dataclass(frozen=True)
class Event:
    """One event: its stream id (also the SSE id), its kind and the image's state."""

    id: str
    kind: str
    data: dict[str, Any]


def summary(manifest: Manifest) -> dict[str, Any]:
    """What an event tells about an image: its state, never its pixels or its record's internals."""
    return {
        "id": manifest.id,
        "status": manifest.status,
        "stage": manifest.stage,
        "progress": manifest.progress,
        "error": manifest.error,
        "filename": manifest.filename,
        "generation": manifest.generation,
        "updated": manifest.updated.isoformat(),
    }


class EventLog:
    """The capped Redis stream of events."""

    def __init__(
        self, client: redis.Redis[bytes], stream: str = STREAM, history: int = HISTORY
    ) -> None:
        self.client, self.stream, self.history = client, stream, history

    def publish(self, kind: str, data: dict[str, Any]) -> str:
        """Append an event; its id."""
        fields = {"kind": kind, "data": json.dumps(data, separators=(",", ":"))}
        added = self.client.xadd(self.stream, fields, maxlen=self.history, approximate=True)
        return text(added)

    def after(self, last_id: str, count: int = 1000) -> list[Event]:
        """Events after ``last_id`` ("0-0": from the oldest kept), oldest first."""
        entries = self.client.xrange(self.stream, min=f"({last_id}", max="+", count=count)
        return [parse_event(entry_id, fields) for entry_id, fields in entries]

    def oldest_id(self) -> str | None:
        """The id of the oldest event kept, None when there is none."""
        first = self.client.xrange(self.stream, count=1)
        return text(first[0][0]) if first else None

    def latest_id(self) -> str:
        """The id of the newest event ("0-0" when there is none)."""
        last = self.client.xrevrange(self.stream, count=1)
        return text(last[0][0]) if last else "0-0"

    def trimmed_after(self, last_id: str) -> bool:
        """Whether events after ``last_id`` may have been dropped from the history."""
        oldest = self.oldest_id()
        return oldest is not None and order(last_id) < order(oldest) and last_id != "0-0"


def _same(storage: Storage) -> Storage:
    return storage


def parse_id(value: str) -> str | None:
    """A stream id as a client may send it back ("1733300000000-0"), or None."""
    return value if re.fullmatch(r"\d{1,20}-\d{1,20}", value) else None


def order(stream_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (milliseconds, sequence)."""
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


def text(value: Any) -> str:
    """A Redis reply (bytes, or str from a decoding client) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_event(entry_id: Any, fields: dict[Any, Any]) -> Event:
    """An event as XRANGE or XREAD gives it."""
    plain = {text(k): text(v) for k, v in fields.items()}
    return Event(text(entry_id), plain.get("kind", "image"), json.loads(plain.get("data", "{}")))


class EventingStorage:
    """A storage that publishes image events for the record writes that pass through it.

    Everything else is the wrapped storage's. A failed publish is logged, never raised: events
    are news, the record in storage is the truth.
    """

    def __init__(
        self, inner: Storage, events: EventLog, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner, self.events, self.clock = inner, events, clock
        self._last: dict[str, tuple[float, tuple[Any, ...]]] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __reduce__(self) -> tuple[Any, ...]:
        # A conversion child gets the storage alone: it writes pyramids, never records (its
        # progress goes through the parent, which publishes).
        return (_same, (self.inner,))

    def put_if_match(self, key: str, data: bytes, etag: str | None, content_type: str = "") -> str:
        tag = self.inner.put_if_match(key, data, etag, content_type)
        self._written(key, data, created=etag is None)
        return tag

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        self.inner.put_bytes(key, data, content_type)
        self._written(key, data, created=False)

    def delete(self, key: str) -> None:
        self.inner.delete(key)
        match = _MANIFEST.match(key)
        if match:
            self._publish("deleted", {"id": match.group(1)})

    def delete_prefix(self, prefix: str) -> None:
        match = _IMAGE_PREFIX.match(prefix)
        had_record = match is not None and self.inner.exists(prefix + "manifest.json")
        self.inner.delete_prefix(prefix)
        if match and had_record:  # an abandoned upload; a delete already said so
            self._publish("deleted", {"id": match.group(1)})

    def _written(self, key: str, data: bytes, created: bool) -> None:
        if not _MANIFEST.match(key):
            return
        try:
            manifest = Manifest.model_validate_json(data)
        except ValueError:
            return
        state = (manifest.status, manifest.stage, manifest.error, manifest.generation)
        now = self.clock()
        with self._lock:
            last = self._last.get(manifest.id)
            if (
                not created
                and last is not None
                and last[1] == state
                and manifest.progress < 1.0
                and now - last[0] < PROGRESS_EVERY_S
            ):
                return  # only the progress moved, and it was told a moment ago
            self._last[manifest.id] = (now, state)
            if len(self._last) > 10_000:
                self._last.clear()
        self._publish("created" if created else "image", summary(manifest))

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        try:
            self.events.publish(kind, data)
        except redis.RedisError as exc:
            log.warning("event %s of image %s not published: %s", kind, data.get("id"), exc)


def current_state(storage: Storage, image_id: str) -> tuple[str, dict[str, Any]]:
    """(kind, data) telling an image's state now: ``image``, or ``deleted`` when it is gone."""
    try:
        return "image", summary(read_manifest(storage, image_id))
    except NotFound:
        return "deleted", {"id": image_id}
