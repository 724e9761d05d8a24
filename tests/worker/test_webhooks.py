"""Outbound webhooks over a real Redis stream to a real HTTP receiver on loopback: signatures
that verify (and a tampered body that does not), retries under one webhook-id, nothing lost
across a restart, one delivery per status and generation, give-up, and the settings' checks."""

import base64
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from pydantic import ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from plexzoom.core.eventlog import EventLog
from plexzoom.worker.config import WorkerSettings
from plexzoom.worker.webhooks import GROUP, WebhookOptions, WebhookSender
from tests.servers import _redis_base, free_port

SECRET = "whsec_" + base64.b64encode(b"plexzoom webhook test secret 32b").decode()
IMAGE = "01jf0000000000000000000000"
Request = tuple[dict[str, str], bytes]


class Receiver:
    """An HTTP receiver on loopback that records every POST and answers ``answers`` in turn
    (then 200)."""

    def __init__(self, port: int = 0, answers: tuple[int, ...] = ()) -> None:
        self.requests: list[Request] = []
        self.answers = list(answers)
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.changed:
                    receiver.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks?token=receiver-token"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, count: int, timeout_s: float = 10) -> list[Request]:
        """The first ``count`` requests, once they have arrived."""
        with self.changed:
            arrived = self.changed.wait_for(lambda: len(self.requests) >= count, timeout_s)
            assert arrived, f"{len(self.requests)} of {count} deliveries arrived"
            return self.requests[:count]

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


def wait_until(check: Callable[[], bool], timeout_s: float = 10) -> None:
    """Poll ``check`` until it holds, failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def state(status: str, generation: int = 1, image_id: str = IMAGE) -> dict[str, Any]:
    """An event's data, as plexzoom.core.eventlog.summary writes it."""
    return {
        "id": image_id,
        "status": status,
        "stage": "done" if status == "ready" else "",
        "progress": 1.0 if status == "ready" else 0.0,
        "error": "Unsupported format" if status == "failed" else None,
        "filename": "slide.tif",
        "generation": generation,
        "updated": f"2025-01-01T00:00:0{generation}+00:00",
    }


class Bench:
    """A stream and keys of this test's own in a real Redis, and the senders started on it."""

    def __init__(self) -> None:
        self.client = redis.Redis.from_url(f"{_redis_base()}/0")
        self.name = f"plexzoom-test:webhooks:{secrets.token_hex(4)}"
        self.events = EventLog(self.client, stream=self.name)
        self.senders: list[WebhookSender] = []

    def sender(self, urls: list[str], consumer: str | None = None, **opts: Any) -> WebhookSender:
        """A started sender with a tiny backoff (retries are quick, not timed)."""
        options = {"retry_s": 30, "timeout_s": 2, "backoff_s": 0.01, "backoff_max_s": 0.05}
        options |= {"concurrency": 2, "claim_idle_s": 0.3} | opts
        sender = WebhookSender(
            self.client,
            WebhookOptions(tuple(urls), SECRET, **options),
            consumer=consumer,
            stream=self.name,
            sent_prefix=f"{self.name}:sent:",
        )
        sender.start()
        self.senders.append(sender)
        return sender

    def pending(self) -> int:
        """Entries read and not yet acknowledged."""
        return int(self.client.xpending(self.name, GROUP)["pending"])

    def close(self) -> None:
        """Stop the senders and remove every key of this test."""
        for sender in self.senders:
            sender.stop()
        self.client.delete(self.name, *self.client.scan_iter(f"{self.name}:*"))


@pytest.fixture
def bench() -> Iterator[Bench]:
    """This test's stream, keys and senders."""
    made = Bench()
    yield made
    made.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that answers 200."""
    made = Receiver()
    yield made
    made.close()


def test_a_ready_image_is_delivered_once_and_verifies(bench: Bench, receiver: Receiver) -> None:
    """Only the `ready` among the image's events goes out, once, and verifies; a tampered body
    or another secret does not."""
    bench.sender([receiver.url])
    bench.events.publish("created", state("queued"))
    bench.events.publish("image", state("converting"))
    bench.client.xadd(bench.name, {"kind": "image", "data": "not json"})  # passed over
    entry = bench.events.publish("image", state("ready"))
    [(headers, body)] = receiver.wait_for(1)
    wait_until(lambda: bench.pending() == 0)
    assert len(receiver.requests) == 1
    payload = Webhook(SECRET).verify(body, headers)
    assert payload["type"] == "image.ready"
    assert payload["data"] == state("ready")
    assert payload["timestamp"].endswith("Z")
    assert headers["webhook-id"] == f"msg_{entry}"
    assert headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b'"ready"', b'"failed"'), headers)
    other = "whsec_" + base64.b64encode(b"another secret, same length 32b").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_failed_and_deleted_are_delivered(bench: Bench, receiver: Receiver) -> None:
    """A failure and a deletion each make their webhook; the events before them none."""
    bench.sender([receiver.url])
    bench.events.publish("created", state("queued"))
    bench.events.publish("image", state("failed"))
    bench.events.publish("deleted", {"id": IMAGE})
    delivered = receiver.wait_for(2)
    wait_until(lambda: bench.pending() == 0)
    payloads = [json.loads(body) for _, body in receiver.requests]
    assert [p["type"] for p in payloads] == ["image.failed", "image.deleted"] or [
        p["type"] for p in payloads
    ] == ["image.deleted", "image.failed"]
    assert {p["data"]["id"] for p in payloads} == {IMAGE} and len(delivered) == 2


def test_a_failing_receiver_gets_the_same_id_until_it_answers(bench: Bench) -> None:
    """500, 500, then 200: three attempts under one webhook-id, each signed; then acknowledged."""
    receiver = Receiver(answers=(500, 500))
    try:
        bench.sender([receiver.url])
        entry = bench.events.publish("image", state("ready"))
        attempts = receiver.wait_for(3)
        wait_until(lambda: bench.pending() == 0)
        assert [h["webhook-id"] for h, _ in attempts] == [f"msg_{entry}"] * 3
        assert all(Webhook(SECRET).verify(body, h)["type"] == "image.ready" for h, body in attempts)
        assert len(receiver.requests) == 3
    finally:
        receiver.close()


def test_nothing_is_lost_across_a_restart(bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    """A sender stopped while its receiver is down leaves the event pending; a new sender (a new
    consumer) claims it and delivers it under the same id."""
    port = free_port()
    first = bench.sender([f"http://127.0.0.1:{port}/hooks"], consumer="first")
    entry = bench.events.publish("image", state("ready"))
    wait_until(lambda: "failed (ConnectError)" in caplog.text)
    first.stop()
    owners = bench.client.xpending_range(bench.name, GROUP, "-", "+", 10)
    assert [(o["message_id"].decode(), o["consumer"].decode()) for o in owners] == [
        (entry, "first")
    ]
    receiver = Receiver(port=port)
    try:
        bench.sender([f"http://127.0.0.1:{port}/hooks"], consumer="second")
        [(headers, body)] = receiver.wait_for(1)
        assert headers["webhook-id"] == f"msg_{entry}"
        assert Webhook(SECRET).verify(body, headers)["data"]["status"] == "ready"
        wait_until(lambda: bench.pending() == 0)
    finally:
        receiver.close()


def test_one_delivery_per_generation_and_status(bench: Bench, receiver: Receiver) -> None:
    """A record written again as ready (same generation) is not told twice; a new generation's
    ready is."""
    bench.sender([receiver.url])
    bench.events.publish("image", state("ready", generation=1))
    again = state("ready", generation=1) | {"updated": "2025-01-01T00:00:09+00:00"}
    bench.events.publish("image", again)  # render settings saved while ready
    bench.events.publish("image", state("ready", generation=2))
    receiver.wait_for(2)
    wait_until(lambda: bench.pending() == 0)
    generations = sorted(json.loads(body)["data"]["generation"] for _, body in receiver.requests)
    assert generations == [1, 2]


def test_a_delivery_is_given_up_after_retry_s(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver that always fails: retried for retry_s, logged, acknowledged; the next event
    is sent. Logs name neither the secret, the body nor the URL's query."""
    caplog.set_level(logging.DEBUG)
    receiver = Receiver(answers=(500,) * 1000)
    try:
        bench.sender([receiver.url], retry_s=0.3)
        entry = bench.events.publish("image", state("failed"))
        # Tried (so read into the group), then acknowledged: nothing pending before the read.
        wait_until(lambda: len(receiver.requests) >= 2 and bench.pending() == 0)
        assert "gave up after" in caplog.text and f"msg_{entry}" in caplog.text
        tried = {h["webhook-id"] for h, _ in receiver.requests}
        assert tried == {f"msg_{entry}"} and len(receiver.requests) >= 2
        following = bench.events.publish("image", state("ready", image_id="01jf" + "1" * 22))
        wait_until(lambda: any(h["webhook-id"] == f"msg_{following}" for h, _ in receiver.requests))
        body = receiver.requests[0][1].decode()
        for secret in (SECRET, SECRET[6:], body, "receiver-token", "slide.tif"):
            assert secret not in caplog.text
    finally:
        receiver.close()


def test_a_lost_stream_is_made_again(bench: Bench, receiver: Receiver) -> None:
    """Redis lost the stream and its group (flushed, restarted empty): the sender makes them
    again and delivers what comes next."""
    bench.sender([receiver.url])
    bench.client.delete(bench.name)
    wait_until(lambda: bench.client.exists(bench.name) == 1)
    entry = bench.events.publish("image", state("ready"))
    [(headers, _)] = receiver.wait_for(1)
    assert headers["webhook-id"] == f"msg_{entry}"


def test_valid_settings_make_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """URLs and a whsec_ secret from the environment reach the sender; no URLs, no sender."""
    monkeypatch.setenv("PLEXZOOM_WEBHOOK_URLS", '["https://hooks.example.org/plexzoom"]')
    monkeypatch.setenv("PLEXZOOM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("PLEXZOOM_WEBHOOK_RETRY_S", "120")
    options = WorkerSettings().webhook_options()
    assert options is not None
    assert options.urls == ("https://hooks.example.org/plexzoom",)
    assert (options.secret, options.retry_s, options.timeout_s) == (SECRET, 120, 10)
    monkeypatch.delenv("PLEXZOOM_WEBHOOK_URLS")
    assert WorkerSettings().webhook_options() is None


@pytest.mark.parametrize(
    ("urls", "secret", "message"),
    [
        ('["https://hooks.example.org/"]', None, "PLEXZOOM_WEBHOOK_SECRET is required"),
        ('["ftp://hooks.example.org/"]', SECRET, "PLEXZOOM_WEBHOOK_URLS"),
        ('["hooks.example.org/in"]', SECRET, "PLEXZOOM_WEBHOOK_URLS"),
        ('["file:///etc/passwd"]', SECRET, "PLEXZOOM_WEBHOOK_URLS"),
        ('"https://hooks.example.org/"', SECRET, "webhook_urls"),
        ('["https://hooks.example.org/"]', "not-a-whsec-secret", "whsec_"),
        ('["https://hooks.example.org/"]', "whsec_%%%%", "whsec_"),
    ],
)
def test_invalid_settings_fail_clearly(
    monkeypatch: pytest.MonkeyPatch, urls: str, secret: str | None, message: str
) -> None:
    """URLs without a secret, a URL that is not http(s) or a malformed secret stop the start,
    naming the variable and never echoing the secret."""
    monkeypatch.setenv("PLEXZOOM_WEBHOOK_URLS", urls)
    if secret is None:
        monkeypatch.delenv("PLEXZOOM_WEBHOOK_SECRET", raising=False)
    else:
        monkeypatch.setenv("PLEXZOOM_WEBHOOK_SECRET", secret)
    with pytest.raises((ValidationError, ValueError), match=message) as failure:
        WorkerSettings()
    if secret:
        assert secret not in str(failure.value)
