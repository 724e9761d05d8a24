"""Outbound webhooks: image events POSTed to the operator's URLs, signed as Standard Webhooks.

The sender reads the event stream (plexzoom.core.eventlog) through a Redis consumer group, so
the worker processes share the work and an entry stays pending until it is settled: acknowledged
once every URL answered 2xx or its retries ran out. Entries that a dead process left pending are
claimed after ``claim_idle_s`` and delivered again (at least once; an event's ``webhook-id``
never changes, so a receiver can drop repeats). A live sender keeps re-claiming the entries it
works on, so a long retry is never taken from it.

Each URL has its own HTTP client and threads: a receiver that is down or slow delays only its own
deliveries, never conversions, the API or the other URLs.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis
import standardwebhooks

from plexzoom.core.eventlog import STREAM, Event, parse_event, text

log = logging.getLogger(__name__)

GROUP = "plexzoom-webhooks"
# "{prefix}{image id}:{generation}:{status}" -> the stream id of the event that delivers it, so a
# record written again with the same status is not told twice; kept this long.
SENT = "plexzoom:webhooks:sent:"
SENT_TTL_S = 7 * 24 * 3600
MAX_OPEN = 1000  # events read and not yet settled; beyond, the reader waits
BATCH = 100
GONE_CONSUMER_S = 24 * 3600  # a consumer with nothing pending, silent this long, is forgotten


@dataclass(frozen=True)
class WebhookOptions:
    """Where and how deliveries go (built from WorkerSettings)."""

    urls: tuple[str, ...]
    secret: str  # "whsec_<base64>", the Standard Webhooks form
    retry_s: float = 3600  # a delivery is retried this long after its first attempt
    timeout_s: float = 10  # one POST
    backoff_s: float = 1  # the first retry's delay, doubling (with jitter) up to backoff_max_s
    backoff_max_s: float = 300
    concurrency: int = 4  # deliveries at once to one URL
    claim_idle_s: float = 60  # an entry pending this long without news is taken over


@dataclass(frozen=True)
class Delivery:
    """One event as it is sent: its Standard Webhooks id, its type and the JSON body."""

    msg_id: str
    type: str
    body: bytes


def webhook_type(event: Event) -> str | None:
    """The webhook an event makes ("image.ready", "image.failed", "image.deleted"), or None."""
    if event.kind == "deleted":
        return "image.deleted"
    if event.kind == "image" and event.data.get("status") in ("ready", "failed"):
        return f"image.{event.data['status']}"
    return None


def build_delivery(event: Event, type_: str) -> Delivery:
    """The body of one event's webhook; the same bytes for every retry."""
    ms = int(event.id.split("-")[0])
    when = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    payload = {"type": type_, "timestamp": when.replace("+00:00", "Z"), "data": event.data}
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Delivery(f"msg_{event.id}", type_, body)


def signed_headers(webhook: standardwebhooks.Webhook, delivery: Delivery) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (signed now, as receivers check the time)."""
    now = datetime.fromtimestamp(int(time.time()), UTC)
    return {
        "content-type": "application/json",
        "user-agent": "plexzoom-webhooks",
        "webhook-id": delivery.msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(delivery.msg_id, now, delivery.body),
    }


def backoff(attempt: int, base_s: float, max_s: float) -> float:
    """The wait after failed attempt number ``attempt`` (1, 2, ...): exponential, half jitter."""
    cap = min(max_s, base_s * 2.0 ** min(attempt - 1, 32))
    return cap * (0.5 + random.random() / 2)


def redacted(url: str) -> str:
    """A URL as logs show it: no credentials, query or fragment (they may carry tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


class _Lane:
    """One URL: its HTTP client, its queue and ``concurrency`` daemon threads."""

    def __init__(self, sender: WebhookSender, url: str, index: int) -> None:
        self.sender, self.url, self.where = sender, url, redacted(url)
        options = sender.options
        limits = httpx.Limits(max_connections=options.concurrency)
        self.http = httpx.Client(timeout=options.timeout_s, limits=limits)
        self.queue: queue.Queue[tuple[str, Delivery] | None] = queue.Queue()
        self.threads = [
            threading.Thread(target=self._run, name=f"webhooks-{index}-{n}", daemon=True)
            for n in range(options.concurrency)
        ]

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            entry_id, delivery = item
            if self.deliver(delivery):
                self.sender.settle(entry_id)

    def deliver(self, delivery: Delivery) -> bool:
        """POST until a 2xx or retry_s has passed (True: settled); False when the sender stops."""
        options, stop = self.sender.options, self.sender.stopping
        first, attempt = time.monotonic(), 0
        while not stop.is_set():
            attempt += 1
            problem = self._post(delivery)
            if problem is None:
                log.debug(
                    "webhook %s %s delivered to %s", delivery.type, delivery.msg_id, self.where
                )
                return True
            left = options.retry_s - (time.monotonic() - first)
            if left <= 0:
                log.error(
                    "webhook %s %s to %s: gave up after %d attempts in %.0f s (last: %s)",
                    delivery.type, delivery.msg_id, self.where, attempt, options.retry_s, problem,
                )  # fmt: skip
                return True
            wait = min(left, backoff(attempt, options.backoff_s, options.backoff_max_s))
            log.warning(
                "webhook %s %s to %s failed (%s); attempt %d, next in %.1f s",
                delivery.type, delivery.msg_id, self.where, problem, attempt + 1, wait,
            )  # fmt: skip
            stop.wait(wait)
        return False

    def _post(self, delivery: Delivery) -> str | None:
        """One attempt; None on a 2xx, else what went wrong (never the body or the secret)."""
        headers = signed_headers(self.sender.webhook, delivery)
        try:
            answer = self.http.post(self.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return None if answer.is_success else f"HTTP {answer.status_code}"


class WebhookSender:
    """Reads the event stream in a consumer group and delivers what matters to every URL."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        options: WebhookOptions,
        consumer: str | None = None,
        stream: str = STREAM,
        group: str = GROUP,
        sent_prefix: str = SENT,
    ) -> None:
        self.client, self.options = client, options
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.stream, self.group, self.sent_prefix = stream, group, sent_prefix
        self.webhook = standardwebhooks.Webhook(options.secret)
        # httpx logs every request's full URL at INFO, and a webhook URL may carry a token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.stopping = threading.Event()
        self._open: dict[str, int] = {}  # entry id -> URLs still to settle
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(MAX_OPEN)
        self._lanes = [_Lane(self, url, n) for n, url in enumerate(options.urls)]
        self._reader = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        """Create the group if needed and start the threads (Redis trouble: the reader retries)."""
        self._create_group_quietly()
        for lane in self._lanes:
            for thread in lane.threads:
                thread.start()
        self._reader.start()

    def stop(self, timeout_s: float = 5) -> None:
        """Stop reading and retrying; what is not settled stays pending for the next sender."""
        self.stopping.set()
        for lane in self._lanes:
            for _ in lane.threads:
                lane.queue.put(None)
        self._reader.join(timeout_s)
        for lane in self._lanes:
            for thread in lane.threads:
                thread.join(timeout_s)
            lane.http.close()

    def settle(self, entry_id: str) -> None:
        """One URL is done with an entry; acknowledge it once all are."""
        with self._lock:
            left = self._open.get(entry_id, 1) - 1
            if left > 0:
                self._open[entry_id] = left
                return
            self._open.pop(entry_id, None)
        self._slots.release()
        self._ack(entry_id)

    def _run(self) -> None:
        every = self.options.claim_idle_s / 3
        block_ms = max(1, int(min(every, 2) * 1000))
        last_claim = float("-inf")
        while not self.stopping.is_set():
            try:
                if time.monotonic() - last_claim >= every:
                    last_claim = time.monotonic()
                    self._keep_open()
                    self._claim_stale()
                read = self.client.xreadgroup(
                    self.group, self.consumer, {self.stream: ">"}, count=BATCH, block=block_ms
                )
                for _, entries in read or []:
                    for entry_id, fields in entries:
                        self._dispatch(text(entry_id), fields)
            except redis.RedisError as exc:
                log.warning("webhooks: reading the event stream failed: %s", exc)
                if str(exc).startswith(("NOGROUP", "UNBLOCKED")):  # Redis lost the stream
                    self._create_group_quietly()
                else:
                    self.stopping.wait(5)

    def _create_group(self) -> None:
        """The consumer group, created at the stream's end ("$": new events only) if missing."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _create_group_quietly(self) -> None:
        try:
            self._create_group()
        except redis.RedisError as exc:
            log.warning("webhooks: creating the consumer group failed: %s", exc)

    def _keep_open(self) -> None:
        """Re-claim the entries still being delivered, so no other sender takes them."""
        with self._lock:
            ids = list(self._open)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            self.client.xclaim(  # type: ignore[no-untyped-call]
                self.stream, self.group, self.consumer, 0, chunk, justid=True
            )

    def _claim_stale(self) -> None:
        """Take over entries that a dead sender left pending, and forget long-gone senders."""
        idle_ms, start = int(self.options.claim_idle_s * 1000), "0-0"
        while not self.stopping.is_set():
            answer = self.client.xautoclaim(
                self.stream, self.group, self.consumer, idle_ms, start_id=start, count=BATCH
            )
            start, entries = text(answer[0]), answer[1]
            for entry_id, fields in entries:
                if text(entry_id) not in self._open:
                    self._dispatch(text(entry_id), fields)
            if start == "0-0":
                break
        consumers = self.client.xinfo_consumers(self.stream, self.group)  # type: ignore[no-untyped-call]
        for consumer in consumers:
            gone = consumer["idle"] > GONE_CONSUMER_S * 1000 and consumer["pending"] == 0
            if gone and text(consumer["name"]) != self.consumer:
                self.client.xgroup_delconsumer(  # type: ignore[no-untyped-call]
                    self.stream, self.group, consumer["name"]
                )

    def _dispatch(self, entry_id: str, fields: dict[Any, Any] | None) -> None:
        """Queue an entry's delivery to every URL, or acknowledge it when it makes none."""
        if not fields:  # trimmed from the stream while pending
            self._ack(entry_id)
            return
        try:
            event = parse_event(entry_id, fields)
        except ValueError:  # not an event plexzoom wrote: nothing to tell
            log.warning("webhooks: entry %s of the event stream is not an event", entry_id)
            self._ack(entry_id)
            return
        type_ = webhook_type(event)
        if type_ is None or not self._first_telling(event, type_):
            self._ack(entry_id)
            return
        while not self._slots.acquire(timeout=1):
            if self.stopping.is_set():
                return
        with self._lock:
            self._open[entry_id] = len(self._lanes)
        delivery = build_delivery(event, type_)
        for lane in self._lanes:
            lane.queue.put((entry_id, delivery))

    def _first_telling(self, event: Event, type_: str) -> bool:
        """False when an earlier event already told this status of this generation."""
        if type_ == "image.deleted":
            return True
        data = event.data
        key = f"{self.sent_prefix}{data.get('id')}:{data.get('generation')}:{data.get('status')}"
        if self.client.set(key, event.id, nx=True, ex=SENT_TTL_S):
            return True
        owner = self.client.get(key)
        return owner is None or text(owner) == event.id  # the same event, delivered again

    def _ack(self, entry_id: str) -> None:
        try:
            self.client.xack(self.stream, self.group, entry_id)  # type: ignore[no-untyped-call]
        except redis.RedisError as exc:  # it stays pending: delivered again later
            log.warning("webhooks: acknowledging %s failed: %s", entry_id, exc)
