"""Dramatiq actors. Import this module only after plexzoom.core.queue has set the broker.

Run with: dramatiq plexzoom.worker.main
"""

import functools
import logging

import dramatiq
import pyvips
import redis

from plexzoom.core.convert import convert_image
from plexzoom.core.errors import NotFound
from plexzoom.core.eventlog import EventingStorage, EventLog
from plexzoom.core.inbox import key_digest, take_object
from plexzoom.core.queue import CONVERT_ACTOR, QUEUE, TAKE_ACTOR
from plexzoom.core.storage import Storage
from plexzoom.settings import build_storage
from plexzoom.worker.config import WorkerSettings

log = logging.getLogger(__name__)
settings = WorkerSettings()


@functools.cache
def storage() -> Storage:
    """The storage client, built on first use rather than at import."""
    pyvips.cache_set_max(0)  # each pyramid is written once; libvips' op cache only holds memory
    if settings.vips_concurrency:
        pyvips.concurrency_set(settings.vips_concurrency)
    storage = build_storage(settings, agent="plexzoom-worker")
    if not settings.redis_url:
        return storage
    events = EventLog(redis.Redis.from_url(settings.redis_url), history=settings.events_history)
    return EventingStorage(storage, events)  # record writes become image events


@dramatiq.actor(
    actor_name=CONVERT_ACTOR,
    queue_name=QUEUE,
    time_limit=settings.job_time_limit_ms,
    max_retries=settings.job_max_retries,
    min_backoff=2_000,
    max_backoff=60_000,
    throws=(NotFound,),
)
def convert(image_id: str) -> None:
    """Convert one image; permanent errors are recorded in its manifest by core (which logs
    what this run did: converted, failed, or nothing to do)."""
    convert_image(storage(), image_id, settings.convert_options())


@dramatiq.actor(
    actor_name=TAKE_ACTOR,
    queue_name=QUEUE,
    max_retries=settings.job_max_retries,
    min_backoff=2_000,
    max_backoff=60_000,
)
def take_from_inbox(key: str) -> None:
    """Take one inbox object an event named; storage is looked up, the event is only a hint.

    Failures are retried as ``dramatiq.Retry``, which Dramatiq does not log with the message:
    its argument is the key, which names a file, and file names stay out of logs.
    """
    try:
        image_id = take_object(storage(), settings.inbox(), key, _queue_conversion)
    except Exception as exc:
        log.warning("inbox object %s: %s; retried", key_digest(key)[:12], type(exc).__name__)
        raise dramatiq.Retry() from exc
    if image_id is not None:
        log.info("image %s: taken from the inbox on an event", image_id)


def _queue_conversion(image_id: str) -> None:
    convert.send(image_id)
