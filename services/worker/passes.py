"""What every worker process runs beside its actors: the reconciler, the inbox scanner and the
consumer of S3 events through SQS."""

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3

from plexzoom.core.inbox import Inbox, scan_inbox
from plexzoom.core.reconcile import reconcile
from plexzoom.core.sqs import SqsQueue, poll_queue
from plexzoom.core.storage import Storage

log = logging.getLogger(__name__)
Enqueue = Callable[[str], None]


def reconcile_pass(
    storage: Callable[[], Storage],
    enqueue: Enqueue,
    queued_grace_s: float,
    upload_stale_s: float,
    resumable_ttl_s: float,
) -> Callable[[], None]:
    """One reconciler pass, logging what it did."""

    def run() -> None:
        done = reconcile(storage(), enqueue, queued_grace_s, upload_stale_s, resumable_ttl_s)
        for image_id in done.requeued:
            log.info("image %s queued again (its job was lost or stalled)", image_id)
        for prefix in done.removed:
            log.info("removed %s (named by no manifest, or an upload that stopped)", prefix)
        for key in done.aborted:
            log.info("aborted the multipart upload of %s (stopped, or named by no record)", key)

    return run


def inbox_pass(
    storage: Callable[[], Storage],
    enqueue: Enqueue,
    inbox: Inbox,
    watches: list[Inbox],
    bucket: Callable[[str], Storage],
) -> Callable[[], None]:
    """One scan of the inbox and of each watched source, read through ``bucket(name)`` (each
    image taken is logged by core, by a hash of its key)."""

    def run() -> None:
        scan_inbox(storage(), inbox, enqueue)
        for watch in watches:
            scan_inbox(storage(), watch, enqueue, bucket(str(watch.bucket)))

    return run


def sqs_pass(
    storage: Callable[[], Storage],
    enqueue: Enqueue,
    inbox: Inbox,
    queue: SqsQueue,
    region: str | None,
) -> Callable[[], None]:
    """One long poll of the SQS queue S3 notifies (its client is built on the first)."""
    clients: list[Any] = []

    def run() -> None:
        if not clients:
            parts = urlsplit(queue.url)  # the queue's own host: AWS, or a test server
            endpoint = f"{parts.scheme}://{parts.netloc}"
            clients.append(boto3.client("sqs", endpoint_url=endpoint, region_name=region))
        poll_queue(clients[0], queue, storage(), inbox, enqueue)

    return run
