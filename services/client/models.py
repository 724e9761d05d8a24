"""What the server answers, as small typed records (each keeps the whole JSON in ``raw``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = ("ready", "failed")  # statuses an image keeps until it is reconverted or deleted


@dataclass(frozen=True)
class Image:
    """An image's status (GET /v1/images/{id})."""

    id: str
    status: str
    stage: str = ""
    progress: float = 0.0
    error: str | None = None
    filename: str | None = None
    size: int | None = None
    links: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Image:
        """An image from the API's JSON (an event's data has a subset of the fields)."""
        return cls(
            id=str(body["id"]),
            status=str(body.get("status", "")),
            stage=str(body.get("stage") or ""),
            progress=float(body.get("progress") or 0.0),
            error=body.get("error"),
            filename=body.get("filename"),
            size=body.get("size"),
            links=dict(body.get("links") or {}),
            raw=body,
        )

    @property
    def finished(self) -> bool:
        """True once the conversion ended (ready or failed)."""
        return self.status in TERMINAL


@dataclass(frozen=True)
class ImagePage:
    """One page of GET /v1/images, newest first."""

    images: list[Image]
    next_cursor: str | None


@dataclass(frozen=True)
class StoredPart:
    """A part the storage holds: its size, the ETag completion names, and its CRC-32 (base64)
    where it is known (the server lists none on SeaweedFS and moto)."""

    size: int
    etag: str
    crc32: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StoredPart:
        """A stored part from GET /v1/uploads/{id}."""
        crc32 = body.get("crc32")
        return cls(int(body["size"]), str(body["etag"]), str(crc32) if crc32 else None)


@dataclass(frozen=True)
class Upload:
    """A resumable upload (POST or GET /v1/uploads/{id})."""

    id: str
    size: int
    part_size: int
    parts: int
    stored: dict[int, StoredPart]  # by number: the parts the server holds

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Upload:
        """An upload from the API's JSON."""
        stored = {int(p["number"]): StoredPart.from_json(p) for p in body.get("stored") or []}
        return cls(str(body["id"]), int(body["size"]), int(body["part_size"]),
                   int(body["parts"]), stored)  # fmt: skip

    def part_bytes(self, number: int) -> int:
        """Part ``number``'s size: part_size, but the last one holds the remainder."""
        return min(self.part_size, self.size - (number - 1) * self.part_size)

    def missing(self) -> list[int]:
        """The numbers the server does not hold with the expected size."""
        return [
            n
            for n in range(1, self.parts + 1)
            if n not in self.stored or self.stored[n].size != self.part_bytes(n)
        ]


@dataclass(frozen=True)
class SignedPart:
    """Where to PUT one part: a presigned URL, its exact size and the headers to send."""

    number: int
    url: str
    size: int
    headers: dict[str, str]  # x-amz-checksum-crc32: signed into the URL, so it must be sent


@dataclass(frozen=True)
class UploadProgress:
    """Where an upload stands (handed to a progress callback, from the upload's threads)."""

    path: Path
    bytes_done: int  # sent now or in an earlier run (a resumed upload starts above zero)
    bytes_total: int
    parts_done: int
    parts_total: int


@dataclass(frozen=True)
class UploadResult:
    """One finished upload: the image it became and what was sent this time."""

    path: Path
    image: Image
    size: int
    parts: int
    parts_sent: int
    parts_reused: int
    bytes_sent: int

    def as_json(self) -> dict[str, Any]:
        """The result as the CLI's --json prints it."""
        return {
            "path": str(self.path),
            "image_id": self.image.id,
            "status": self.image.status,
            "size": self.size,
            "parts": self.parts,
            "parts_sent": self.parts_sent,
            "parts_reused": self.parts_reused,
            "bytes_sent": self.bytes_sent,
            "viewer": self.image.links.get("viewer"),
        }
