"""/v1/events: every image's status, stage and progress as Server-Sent Events.

One reader per api process follows the Redis stream of events (plexzoom.core.eventlog) and
hands each event to every open stream of that process, so any api process behind a load
balancer streams every event. A client that reconnects with ``Last-Event-ID`` gets what it
missed from the stream's history; one whose events were trimmed meanwhile gets ``reset`` and
reloads. Comments (``: heartbeat``) keep idle streams open through proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

import redis
import redis.asyncio
from anyio import to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from plexzoom.api.deps import StorageDep
from plexzoom.api.security import KEY_RESPONSES, require_key
from plexzoom.core.errors import BrokerError
from plexzoom.core.eventlog import (
    Event,
    EventLog,
    current_state,
    order,
    parse_event,
    parse_id,
)

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
QUEUE_EVENTS = 5000  # a client this far behind is told to reload (reset) instead of holding memory
router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(require_key)],
                   responses=KEY_RESPONSES)  # fmt: skip


class EventHub:
    """Follows the stream with one Redis connection and fans events out to subscribers."""

    def __init__(self, redis_url: str, events: EventLog, block_ms: int = 5000) -> None:
        self.redis_url, self.events, self.block_ms = redis_url, events, block_ms
        self.subscribers: set[asyncio.Queue[Event | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._cursor = "$"

    def subscribe(self) -> asyncio.Queue[Event | None]:
        """A queue that receives every event from now on (None: fell behind, reload)."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_EVENTS)
        self.subscribers.add(queue)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        self.subscribers.discard(queue)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        client = redis.asyncio.Redis.from_url(self.redis_url)
        try:
            self._cursor = await to_thread.run_sync(self.events.latest_id)
            while True:  # until close(): one blocked read per process, even with no stream open
                try:
                    got = await client.xread({self.events.stream: self._cursor},
                                             block=self.block_ms, count=1000)  # fmt: skip
                except redis.RedisError as exc:
                    log.warning("event stream unreadable, retrying: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                for _stream, entries in got or []:
                    for entry_id, fields in entries:
                        event = parse_event(entry_id, fields)
                        self._cursor = event.id
                        self._hand_out(event)
        finally:
            await client.aclose()  # type: ignore[attr-defined]

    def _hand_out(self, event: Event) -> None:
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # make room for the "reload" marker
                queue.put_nowait(None)


def sse(event: Event) -> bytes:
    """One event in the text/event-stream format."""
    data = json.dumps(event.data, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()


def reset(reason: str) -> bytes:
    return f"event: reset\ndata: {json.dumps({'reason': reason})}\n\n".encode()


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "A stream of image events."}})  # fmt: skip
async def events(
    request: Request,
    storage: StorageDep,
    image: Annotated[list[str] | None, Query(max_length=100)] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """Server-Sent Events: `event: created | image | deleted` with the image's id, status, stage,
    progress and error as JSON. `?image=ID` (repeatable) follows those images only, and first
    sends each one's current state. `Last-Event-ID` resumes after that event; when it is older
    than the history kept, `event: reset` says to reload the state."""
    hub: EventHub | None = request.app.state.events
    if hub is None:
        raise BrokerError("Events need Redis (PLEXZOOM_REDIS_URL); poll GET /v1/images instead.")
    wanted = set(image) if image else None
    resume = parse_id(last_event_id) if last_event_id else None
    queue = hub.subscribe()  # before history, so nothing falls between the two

    async def stream() -> AsyncIterator[bytes]:
        try:
            seen = "0-0"
            if resume is not None:
                if await to_thread.run_sync(hub.events.trimmed_after, resume):
                    yield reset("Events after the one you saw were dropped; reload the state.")
                else:
                    for event in await to_thread.run_sync(hub.events.after, resume):
                        if wanted is None or event.data.get("id") in wanted:
                            yield sse(event)
                        seen = event.id
            elif wanted is not None:
                latest = await to_thread.run_sync(hub.events.latest_id)
                for image_id in sorted(wanted):
                    kind, data = await to_thread.run_sync(current_state, storage, image_id)
                    yield sse(Event(latest, kind, data))
                seen = latest
            else:
                yield b": connected\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
                if item is None:
                    yield reset("This stream fell behind; reload the state.")
                    return
                if order(item.id) > order(seen) and (
                    wanted is None or item.data.get("id") in wanted
                ):
                    yield sse(item)
        finally:
            hub.unsubscribe(queue)

    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
