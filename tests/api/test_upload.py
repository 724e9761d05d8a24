"""Streaming multipart upload: formats, size cap, malformed bodies, disconnects, broker failures."""

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from plexzoom.core import keys
from plexzoom.core.errors import BrokerError
from plexzoom.core.manifest import read_manifest
from plexzoom.core.storage import S3Storage, Storage
from plexzoom.core.storage.s3 import PART_SIZE
from tests.api.conftest import (
    BOUNDARY,
    FORM_TAIL,
    MULTIPART,
    Api,
    MakeApi,
    form_head,
)
from tests.conftest import encode, leftover_uploads, noise_image, quadrant_bytes

pytestmark = pytest.mark.anyio

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUPPORTED = ("TIFF", "PNG", "JPEG", "WebP")


def _nothing_stored(api: Api) -> None:
    assert api.storage.list_keys("") == []
    assert leftover_uploads(api.storage) == []
    assert api.enqueue.ids == []


@pytest.mark.parametrize("fmt", ["tiff", "png", "jpeg", "webp"])
async def test_each_supported_format_is_accepted(api: Api, fmt: str) -> None:
    """Every allow-listed format is accepted and its name recorded."""
    data = encode(noise_image(64, 48), fmt)
    answer = await api.upload(data, f"x.{fmt}")
    assert answer.status_code == 202, answer.text
    assert answer.json()["format"] == fmt
    assert api.storage.get_bytes(keys.original_key(answer.json()["id"])) == data


async def test_uploads_land_intact_on_every_backend(make_api: MakeApi, storage: Storage) -> None:
    """The stored original is byte-identical to the upload, whichever backend stores it."""
    api = await make_api(storage)
    data = quadrant_bytes("tiff", 300, 200)
    answer = await api.upload(data)
    assert answer.status_code == 202
    image_id = answer.json()["id"]
    assert storage.get_bytes(keys.original_key(image_id)) == data
    assert leftover_uploads(storage) == []


async def test_a_large_upload_streams_into_a_multipart_object(
    make_api: MakeApi, s3_storage: S3Storage
) -> None:
    """A body larger than one S3 part arrives intact as a multipart object, no upload left over."""
    api = await make_api(s3_storage)
    data = PNG_SIGNATURE + os.urandom(PART_SIZE + 3 * 1024 * 1024)

    async def body() -> AsyncIterator[bytes]:
        yield form_head()
        for start in range(0, len(data), 1024 * 1024):
            yield data[start : start + 1024 * 1024]
        yield FORM_TAIL

    answer = await api.client.post(
        "/v1/images", content=body(), headers={"content-type": MULTIPART}
    )
    assert answer.status_code == 202, answer.text
    key = keys.original_key(answer.json()["id"])
    assert s3_storage.get_bytes(key) == data
    assert answer.json()["size"] == len(data)
    etag = s3_storage.client.head_object(Bucket=s3_storage.bucket, Key=key)["ETag"]
    assert etag.strip('"').endswith("-2")
    assert leftover_uploads(s3_storage) == []


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"just some notes\n" * 10, "notes.png"),
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "image.tif"),
        (b"", "empty.png"),
        (b"PK\x03\x04" + bytes(100), "slide.zip"),
        (b"GIF89a" + bytes(100), "anim.gif"),
        (b"\x89PN", "short.png"),
    ],
    ids=["text", "html", "empty", "zip", "gif", "three-bytes"],
)
async def test_unsupported_content_is_415_naming_the_formats(
    api: Api, data: bytes, filename: str
) -> None:
    """Content decides, not the name: non-images are 415 with the supported formats named."""
    answer = await api.upload(data, filename)
    assert answer.status_code == 415, answer.text
    detail = answer.json()["detail"]
    assert all(name in detail for name in SUPPORTED), detail
    _nothing_stored(api)


async def test_a_misnamed_image_is_accepted(api: Api) -> None:
    """A PNG called notes.txt and sent as text/plain is still a PNG."""
    answer = await api.client.post(
        "/v1/images",
        content=form_head("notes.txt", ctype="text/plain") + quadrant_bytes() + FORM_TAIL,
        headers={"content-type": MULTIPART},
    )
    assert answer.status_code == 202
    assert answer.json()["format"] == "png"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("image/png", quadrant_bytes()),
        ("application/json", b'{"file": "x"}'),
        ("application/x-www-form-urlencoded", b"file=abc"),
        ("multipart/form-data", b"--x\r\n"),  # no boundary parameter
        (None, quadrant_bytes()),
    ],
    ids=["raw-png", "json", "urlencoded", "no-boundary", "no-content-type"],
)
async def test_a_body_that_is_not_multipart_is_400(
    api: Api, content_type: str | None, body: bytes
) -> None:
    """Anything but multipart/form-data with a boundary is a 400 that says what to send."""
    headers = {"content-type": content_type} if content_type else {}
    answer = await api.client.post("/v1/images", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert "multipart/form-data" in answer.json()["detail"]
    _nothing_stored(api)


async def test_a_form_without_a_file_field_is_a_client_error(api: Api) -> None:
    """A form whose only field is not 'file' is refused with a 4xx and stores nothing."""
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="comment"\r\n\r\nhello'
    ).encode() + FORM_TAIL
    answer = await api.client.post("/v1/images", content=body, headers={"content-type": MULTIPART})
    assert answer.status_code in (400, 415)
    assert "file" in answer.json()["detail"]
    _nothing_stored(api)


async def test_a_body_cut_off_mid_file_is_400_and_leaves_nothing(api: Api) -> None:
    """A body that ends before the closing boundary is refused and its bytes discarded."""
    body = form_head() + quadrant_bytes()[:3000]  # no closing boundary
    answer = await api.client.post("/v1/images", content=body, headers={"content-type": MULTIPART})
    assert answer.status_code == 400, answer.text
    _nothing_stored(api)


class CountingBody:
    """An upload body without Content-Length that counts the bytes the server pulled."""

    def __init__(self, size: int, chunk: int) -> None:
        self.size, self.chunk, self.sent = size, chunk, 0
        self.head = form_head("huge.png")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.sent += len(self.head)
        yield self.head
        data = PNG_SIGNATURE + bytes(self.size - len(PNG_SIGNATURE))
        for start in range(0, self.size, self.chunk):
            piece = data[start : start + self.chunk]
            self.sent += len(piece)
            yield piece
        self.sent += len(FORM_TAIL)
        yield FORM_TAIL


@pytest.mark.parametrize("backend", ["local", "s3-server", "s3-seaweed"], indirect=True)
async def test_an_upload_over_the_cap_is_413_after_reading_about_the_cap(
    make_api: MakeApi, storage: Storage
) -> None:
    """A chunked body 3x the cap is cut off at cap + one chunk; nothing of it is kept."""
    cap, chunk = 64 * 1024, 8 * 1024
    api = await make_api(storage, max_upload_bytes=cap)
    body = CountingBody(3 * cap, chunk)
    answer = await api.client.post("/v1/images", content=body, headers={"content-type": MULTIPART})
    assert answer.status_code == 413, answer.text
    assert str(cap) in answer.json()["detail"]
    assert answer.headers.get("connection") == "close"
    assert "content-length" not in answer.request.headers
    assert body.sent <= cap + chunk + len(body.head) + len(FORM_TAIL)
    _nothing_stored(api)


async def test_a_declared_length_over_the_cap_is_413_before_reading(
    make_api: MakeApi, local_storage: Storage
) -> None:
    """A Content-Length already over the cap is refused without reading the body."""
    cap = 64 * 1024
    api = await make_api(local_storage, max_upload_bytes=cap)
    body = CountingBody(3 * cap, 8 * 1024)
    total = len(body.head) + 3 * cap + len(FORM_TAIL)
    answer = await api.client.post(
        "/v1/images",
        content=body,
        headers={"content-type": MULTIPART, "content-length": str(total)},
    )
    assert answer.status_code == 413
    assert body.sent <= len(body.head)
    _nothing_stored(api)


async def test_an_upload_just_under_the_cap_is_accepted(
    make_api: MakeApi, local_storage: Storage
) -> None:
    """The cap is on the file's bytes: a file of exactly the cap passes."""
    cap = 64 * 1024
    api = await make_api(local_storage, max_upload_bytes=cap)
    data = PNG_SIGNATURE + bytes(cap - len(PNG_SIGNATURE))
    answer = await api.upload(data)
    assert answer.status_code == 202, answer.text
    assert answer.json()["size"] == cap


def _upload_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/images",
        "raw_path": b"/v1/images",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", MULTIPART.encode()),
            (b"transfer-encoding", b"chunked"),
        ],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }


@dataclass
class Disconnected:
    """What the app sent, and the unfinished writes that existed when the client left."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    pending_at_disconnect: list[str] | None = None


async def _disconnect_after(api: Api, chunks: list[bytes]) -> Disconnected:
    """Drive the app by hand: send ``chunks``, then the client goes away."""
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    seen = Disconnected()
    sent = seen.sent

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        if seen.pending_at_disconnect is None:
            seen.pending_at_disconnect = leftover_uploads(api.storage)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await api.app(_upload_scope(), receive, send)
    except Exception as exc:  # the app may re-raise the disconnect to the server
        assert type(exc).__name__ == "ClientDisconnect", exc
    return seen


@pytest.mark.parametrize(
    "sent_bytes",
    [0, 100_000, PART_SIZE + 1024 * 1024],
    ids=["headers-only", "small", "over-a-part"],
)
async def test_a_client_that_disconnects_leaves_nothing(
    make_api: MakeApi, storage: Storage, sent_bytes: int
) -> None:
    """No object, manifest, temp file or multipart upload survives an abandoned upload."""
    if sent_bytes > PART_SIZE and not isinstance(storage, S3Storage):
        sent_bytes = 5 * 1024 * 1024  # local writes have no parts; keep the test quick
    api = await make_api(storage)
    data = PNG_SIGNATURE + bytes(max(0, sent_bytes - len(PNG_SIGNATURE)))
    chunks = [form_head()] + [data[i : i + 1024 * 1024] for i in range(0, sent_bytes, 1024 * 1024)]
    seen = await _disconnect_after(api, chunks)
    if sent_bytes == 0:
        assert seen.pending_at_disconnect == []
    elif isinstance(storage, S3Storage) and sent_bytes < PART_SIZE:
        assert seen.pending_at_disconnect == []  # still buffered in memory: nothing to abort
    else:  # a temp file or a started multipart upload really existed
        assert seen.pending_at_disconnect and len(seen.pending_at_disconnect) == 1
    _nothing_stored(api)


async def test_a_disconnect_is_not_logged_as_a_server_error(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients go away all the time; that is no error of ours."""
    with caplog.at_level(logging.WARNING):
        seen = await _disconnect_after(api, [form_head(), quadrant_bytes()[:5000]])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(m.get("status") != 500 for m in seen.sent)


async def test_an_unreachable_broker_is_503_and_keeps_nothing(api: Api) -> None:
    """When the job cannot be queued the client is told to retry and no orphan is left."""
    api.enqueue.error = BrokerError("The job queue did not answer; try again shortly.")
    answer = await api.upload(quadrant_bytes())
    assert answer.status_code == 503
    assert "try again" in answer.json()["detail"]
    assert api.storage.list_keys("") == []
    assert leftover_uploads(api.storage) == []


async def test_an_unreachable_broker_after_a_large_upload_is_503_and_keeps_nothing(
    make_api: MakeApi, s3_storage: S3Storage
) -> None:
    """Even when the original went up in several parts, a failed enqueue leaves nothing."""
    api = await make_api(s3_storage)
    api.enqueue.error = BrokerError("The job queue did not answer; try again shortly.")
    answer = await api.upload(PNG_SIGNATURE + bytes(PART_SIZE + 1000))
    assert answer.status_code == 503, answer.text
    assert s3_storage.list_keys("") == []
    assert leftover_uploads(s3_storage) == []


async def test_only_the_first_file_field_is_stored(api: Api) -> None:
    """A second 'file' part is ignored rather than appended to the first."""
    first, second = quadrant_bytes("png", 20, 20), quadrant_bytes("jpeg", 20, 20)
    body = (
        form_head("a.png") + first + f"\r\n--{BOUNDARY}\r\n".encode()
        + form_head("b.jpg")[len(f"--{BOUNDARY}\r\n"):] + second + FORM_TAIL
    )  # fmt: skip
    answer = await api.client.post("/v1/images", content=body, headers={"content-type": MULTIPART})
    assert answer.status_code == 202
    assert api.storage.get_bytes(keys.original_key(answer.json()["id"])) == first
    assert answer.json()["filename"] == "a.png"


async def test_a_long_upload_keeps_its_manifest_fresh(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While bytes arrive the manifest's `updated` moves on, so the reconciler never takes a
    slow upload for one whose web process died."""
    monkeypatch.setattr("plexzoom.api.upload.TOUCH_S", 0.0)
    seen: list[object] = []

    async def body() -> AsyncIterator[bytes]:
        yield form_head()
        yield PNG_SIGNATURE + bytes(1024 * 1024)
        image_id = api.storage.list_children("images/", "", 10)[0]
        seen.append(read_manifest(api.storage, image_id).updated)
        for _ in range(3):
            yield bytes(1024 * 1024)
        seen.append(read_manifest(api.storage, image_id).updated)
        yield FORM_TAIL

    answer = await api.client.post(
        "/v1/images", content=body(), headers={"content-type": MULTIPART}
    )
    assert answer.status_code == 202, answer.text
    assert len(seen) == 2 and seen[1] > seen[0]  # type: ignore[operator]
