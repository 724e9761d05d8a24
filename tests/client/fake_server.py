"""The resumable upload protocol as an in-memory server behind an httpx transport.

It checks what a real server and S3 check (exact Content-Length, Content-MD5, no Authorization
on part URLs) and keeps only each part's size and MD5, never its bytes, so a test can push a
large file through it. ``faults`` makes a part's next PUTs answer a status or drop; ``gate``
holds PUTs until several uploads send at once; ``refused`` names files it will not take.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

PART_HOST = "parts.test"
DROP = 0  # a fault that drops the connection instead of answering
GUARD_S = 20.0  # how long a gate holds a PUT when the other uploads never come: a failure


class PartGate:
    """Holds each upload's PUT of part ``number`` until ``uploads`` uploads have theirs in
    flight, then runs ``then`` once and lets them all go on. A PUT held GUARD_S without the
    others is an AssertionError: the uploads did not run at once."""

    def __init__(
        self, uploads: int, number: int = 1, then: Callable[[], object] | None = None
    ) -> None:
        self.uploads, self.number, self.then = uploads, number, then
        self.held: set[str] = set()
        self.opened = threading.Event()
        self._lock = threading.Lock()

    def enter(self, upload_id: str, number: int) -> None:
        if number != self.number or self.opened.is_set():
            return
        with self._lock:
            self.held.add(upload_id)
            if len(self.held) == self.uploads:
                if self.then is not None:
                    self.then()
                self.opened.set()
        if not self.opened.wait(GUARD_S):
            raise AssertionError(f"part {number} of {sorted(self.held)} held alone")


@dataclass
class FakeUpload:
    id: str
    size: int
    part_size: int
    parts: int
    stored: dict[int, tuple[int, str]] = field(default_factory=dict)  # number -> (size, etag)


@dataclass
class FakeServer:
    part_size: int = 5 * 1024 * 1024
    key: str | None = None
    uploads: dict[str, FakeUpload] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: dict[int, list[int]] = field(default_factory=dict)
    # The sign answer's content_md5 (None: left out); False: a Content-MD5 header is refused,
    # as S3 refuses one a presigned URL did not sign.
    content_md5: bool | None = None
    wrong_etags: dict[int, int] = field(default_factory=dict)  # number -> answers to spoil
    gate: PartGate | None = None
    refused: set[str] = field(default_factory=set)  # names whose upload is refused (415)
    signed: list[list[int]] = field(default_factory=list)
    puts: list[int] = field(default_factory=list)  # part numbers, one per PUT that arrived
    creates: int = 0
    largest_chunk: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def transport(self) -> httpx.BaseTransport:
        return StreamingTransport(self)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == PART_HOST:
            return self.put_part(request)
        request.read()
        if self.key and request.headers.get("authorization") != f"Bearer {self.key}":
            return answer(401, {"detail": "Send an API key."})
        parts = request.url.path.strip("/").split("/")[1:]  # after "v1"
        route = (request.method, *parts[:1], *parts[2:])
        upload = self.uploads.get(parts[1]) if len(parts) > 1 else None
        if route == ("POST", "uploads"):
            return self.create(json.loads(request.content))
        if parts[0] == "images":
            image = self.images.get(parts[1])
            return answer(200, image) if image else answer(404, {"detail": "No such image."})
        if upload is None:
            return answer(404, {"detail": "No such upload."})
        if route == ("GET", "uploads"):
            return answer(200, self.describe(upload))
        if route == ("POST", "uploads", "parts"):
            return self.sign(upload, json.loads(request.content)["numbers"])
        if route == ("POST", "uploads", "complete"):
            return self.complete(upload, json.loads(request.content)["parts"])
        return answer(405, {"detail": "Not here."})

    def create(self, body: dict[str, Any]) -> httpx.Response:
        if body["name"] in self.refused:
            return answer(415, {"detail": "This file is not an image plexzoom can read."})
        self.creates += 1
        upload_id = f"{next(self._ids):026d}"
        size = body["size"]
        upload = FakeUpload(upload_id, size, self.part_size, math.ceil(size / self.part_size))
        self.uploads[upload_id] = upload
        self.images[upload_id] = image(upload_id, "uploading")
        return answer(201, self.describe(upload))

    def describe(self, upload: FakeUpload) -> dict[str, Any]:
        held = sorted(upload.stored.items())
        stored = [{"number": n, "size": s, "etag": e} for n, (s, e) in held]
        return {"id": upload.id, "image_id": upload.id, "size": upload.size,
                "part_size": upload.part_size, "parts": upload.parts, "stored": stored}  # fmt: skip

    def sign(self, upload: FakeUpload, numbers: list[int]) -> httpx.Response:
        self.signed.append(numbers)
        last = upload.size - (upload.parts - 1) * upload.part_size
        parts = [
            {
                "number": n,
                "url": f"http://{PART_HOST}/{upload.id}?partNumber={n}",
                "size": last if n == upload.parts else upload.part_size,
                "headers": {},
            }
            for n in numbers
        ]
        signed: dict[str, Any] = {"parts": parts, "expires_in": 3600}
        if self.content_md5 is not None:
            signed["content_md5"] = self.content_md5
        return answer(200, signed)

    def put_part(self, request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers, "a part URL got the API key"
        upload = self.uploads[request.url.path.strip("/")]
        number = int(request.url.params["partNumber"])
        self.puts.append(number)
        if self.gate is not None:
            self.gate.enter(upload.id, number)
        digest, size = hashlib.md5(), 0
        for chunk in request.stream:  # type: ignore[union-attr]
            self.largest_chunk = max(self.largest_chunk, len(chunk))
            digest.update(chunk)
            size += len(chunk)
        pending = self.faults.get(number)
        if pending:
            status = pending.pop(0)
            if status == DROP:
                raise httpx.ConnectError("connection reset by the test", request=request)
            return httpx.Response(status, text="<Error><Message>Faulty.</Message></Error>")
        assert int(request.headers["content-length"]) == size
        md5 = request.headers.get("content-md5")
        if md5 is not None and self.content_md5 is False:
            return httpx.Response(403, text="<Error><Code>SignatureDoesNotMatch</Code></Error>")
        if md5 is not None and base64.b64encode(digest.digest()).decode() != md5:
            return httpx.Response(400, text="<Error><Message>Bad digest.</Message></Error>")
        etag = digest.hexdigest()
        upload.stored[number] = (size, etag)
        if self.wrong_etags.get(number):
            self.wrong_etags[number] -= 1
            etag = "0" * 32  # as if other bytes had arrived
        return httpx.Response(200, headers={"etag": f'"{etag}"'})

    def complete(self, upload: FakeUpload, parts: list[dict[str, Any]]) -> httpx.Response:
        named = {p["number"]: p["etag"].strip('"') for p in parts}
        missing = [n for n in range(1, upload.parts + 1) if n not in upload.stored]
        if missing:
            return answer(409, {"detail": f"Parts {missing} are missing."})
        if any(named.get(n) != etag for n, (_s, etag) in upload.stored.items()):
            return answer(409, {"detail": "An ETag is not the stored one."})
        del self.uploads[upload.id]
        self.images[upload.id] = image(upload.id, "queued")
        return answer(202, self.images[upload.id])


class StreamingTransport(httpx.BaseTransport):
    """Hands requests over unread (httpx.MockTransport reads each body into memory first)."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.server.handle(request)


def image(image_id: str, status: str) -> dict[str, Any]:
    return {"id": image_id, "status": status, "stage": "", "progress": 0.0, "error": None,
            "links": {"viewer": f"http://api.test/view.html?id={image_id}"}}  # fmt: skip


def answer(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=body)
