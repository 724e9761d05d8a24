"""The resumable upload protocol as an in-memory server behind an httpx transport.

It checks what a real server and S3 check (exact Content-Length, the CRC-32 a part URL signed
sent as ``x-amz-checksum-crc32`` and matching the bytes, no Authorization on part URLs) and
keeps only each part's size, ETag and CRC-32, never its bytes, so a test can push a large file
through it. ``faults`` makes a part's next PUTs answer a status or drop; ``spoiled`` changes a
part's bytes on the way; ``gate`` holds PUTs until several uploads send at once; ``refused``
names files it will not take.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

PART_HOST = "parts.test"
DROP = 0  # a fault that drops the connection instead of answering
GUARD_S = 60.0  # how long a gate holds a PUT when the other uploads never come: a failure


class PartGate:
    """Holds each upload's PUT of part ``number`` until ``uploads`` uploads have theirs in
    flight, then runs ``then`` once and lets them all go on. A PUT held GUARD_S without the
    others is an AssertionError: the uploads did not run at once."""

    def __init__(
        self, uploads: int, number: int = 1, then: Callable[[], object] | None = None
    ) -> None:
        self.uploads, self.number, self.then = uploads, number, then
        self.held: set[str] = set()
        self.full = threading.Event()  # every upload's PUT arrived
        self.opened = threading.Event()  # ``then`` ran: the PUTs go on
        self._lock = threading.Lock()

    def enter(self, upload_id: str, number: int) -> None:
        if number != self.number or self.opened.is_set():
            return
        with self._lock:
            self.held.add(upload_id)
            if len(self.held) == self.uploads:
                self.full.set()
                if self.then is not None:
                    self.then()
                self.opened.set()
        # The guard counts only until the others arrive: ``then`` may take its time (a test
        # that signals the process waits in it), which is no failure of running at once.
        if not self.full.wait(GUARD_S):
            raise AssertionError(f"part {number} of {sorted(self.held)} held alone")
        if not self.opened.wait(GUARD_S):
            raise AssertionError(f"the gate of part {number} never opened")


@dataclass
class FakeUpload:
    id: str
    size: int
    part_size: int
    parts: int
    crc32: bool = False  # created with "checksum": "crc32": completion names every CRC-32
    # number -> (size, etag, crc32)
    stored: dict[int, tuple[int, str, str]] = field(default_factory=dict)


@dataclass
class FakeServer:
    part_size: int = 5 * 1024 * 1024
    key: str | None = None
    uploads: dict[str, FakeUpload] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: dict[int, list[int]] = field(default_factory=dict)
    spoiled: dict[int, int] = field(default_factory=dict)  # number -> PUTs whose bytes change
    lists_crc32: bool = True  # False: stored parts are listed with crc32 null (SeaweedFS, moto)
    gate: PartGate | None = None
    refused: set[str] = field(default_factory=set)  # names whose upload is refused (415)
    signed: list[list[int]] = field(default_factory=list)
    completions: list[list[dict[str, Any]]] = field(default_factory=list)
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
            return self.sign(upload, json.loads(request.content))
        if route == ("POST", "uploads", "complete"):
            return self.complete(upload, json.loads(request.content)["parts"])
        return answer(405, {"detail": "Not here."})

    def create(self, body: dict[str, Any]) -> httpx.Response:
        if body["name"] in self.refused:
            return answer(415, {"detail": "This file is not an image plexzoom can read."})
        self.creates += 1
        upload_id = f"{next(self._ids):026d}"
        size = body["size"]
        parts = math.ceil(size / self.part_size)
        upload = FakeUpload(upload_id, size, self.part_size, parts, body.get("checksum") == "crc32")
        self.uploads[upload_id] = upload
        self.images[upload_id] = image(upload_id, "uploading")
        return answer(201, self.describe(upload))

    def describe(self, upload: FakeUpload) -> dict[str, Any]:
        held = sorted(upload.stored.items())
        stored = [
            {"number": n, "size": s, "etag": e, "crc32": c if self.lists_crc32 else None}
            for n, (s, e, c) in held
        ]
        return {"id": upload.id, "image_id": upload.id, "size": upload.size,
                "part_size": upload.part_size, "parts": upload.parts, "stored": stored}  # fmt: skip

    def sign(self, upload: FakeUpload, body: dict[str, Any]) -> httpx.Response:
        """Both forms: ``{"parts": [{"number", "crc32"}]}`` signs each CRC-32 into its URL (the
        fake's stand-in for a signature), the older ``{"numbers": [...]}`` signs none."""
        crc32s = {p["number"]: p["crc32"] for p in body["parts"]} if "parts" in body else {}
        numbers = sorted(crc32s) or body["numbers"]
        self.signed.append(numbers)
        last = upload.size - (upload.parts - 1) * upload.part_size
        parts = [
            {
                "number": n,
                "url": f"http://{PART_HOST}/{upload.id}?partNumber={n}"
                + (f"&crc32={quote(crc32s[n], safe='')}" if n in crc32s else ""),
                "size": last if n == upload.parts else upload.part_size,
                "headers": {"x-amz-checksum-crc32": crc32s[n]} if n in crc32s else {},
            }
            for n in numbers
        ]
        return answer(200, {"parts": parts, "expires_in": 3600, "content_md5": True})

    def put_part(self, request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers, "a part URL got the API key"
        upload = self.uploads[request.url.path.strip("/")]
        number = int(request.url.params["partNumber"])
        self.puts.append(number)
        if self.gate is not None:
            self.gate.enter(upload.id, number)
        digest, crc, size = hashlib.md5(), 0, 0
        for chunk in request.stream:  # type: ignore[union-attr]
            self.largest_chunk = max(self.largest_chunk, len(chunk))
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
        pending = self.faults.get(number)
        if pending:
            status = pending.pop(0)
            if status == DROP:
                raise httpx.ConnectError("connection reset by the test", request=request)
            return httpx.Response(status, text="<Error><Message>Faulty.</Message></Error>")
        assert int(request.headers["content-length"]) == size
        sent = request.headers.get("x-amz-checksum-crc32")
        if sent != request.url.params.get("crc32"):  # S3: the header is signed into the URL
            return httpx.Response(403, text="<Error><Code>SignatureDoesNotMatch</Code></Error>")
        if self.spoiled.get(number):
            self.spoiled[number] -= 1
            crc ^= 1  # as if another bit had arrived
        crc32 = base64.b64encode(crc.to_bytes(4, "big")).decode()
        if sent is not None and sent != crc32:
            return httpx.Response(400, text="<Error><Message>Bad CRC-32.</Message></Error>")
        upload.stored[number] = (size, digest.hexdigest(), crc32)
        return httpx.Response(200, headers={"etag": f'"{digest.hexdigest()}"'})

    def complete(self, upload: FakeUpload, parts: list[dict[str, Any]]) -> httpx.Response:
        self.completions.append(parts)
        named = {p["number"]: p["etag"].strip('"') for p in parts}
        missing = [n for n in range(1, upload.parts + 1) if n not in upload.stored]
        if missing:
            return answer(409, {"detail": f"Parts {missing} are missing."})
        if any(named.get(n) != etag for n, (_s, etag, _c) in upload.stored.items()):
            return answer(409, {"detail": "An ETag is not the stored one."})
        crc32s = {p["number"]: p["crc32"] for p in parts if p.get("crc32")}
        if upload.crc32 and len(crc32s) < len(parts):
            return answer(400, {"detail": "This upload checks CRC-32s: name each part's crc32."})
        if any(crc32s.get(n, crc) != crc for n, (_s, _e, crc) in upload.stored.items()):
            return answer(400, {"detail": "A part's CRC-32 is not the stored one."})
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
