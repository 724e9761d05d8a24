"""/v1/uploads: resumable uploads in parts (the protocol of S3 multipart uploads).

Create, sign part URLs, list the stored parts, complete, abort. On S3 the client PUTs parts
straight to the bucket with presigned URLs; on the local backend it PUTs them to this api at
URLs signed by plexzoom.core.uploads.PartUrls (``PUT /uploads/{id}/parts/{number}``, which
needs no API key: its signature is the permission).
"""

import base64
import binascii
import hashlib
import io
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import IO, Annotated, Literal, cast

from anyio import from_thread, to_thread
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, Field

from plexzoom.api.deps import EnqueueDep, SettingsDep, StorageDep
from plexzoom.api.routes.images import link_context
from plexzoom.api.schemas import ImageStatus, to_status
from plexzoom.api.security import KEY_RESPONSES, require_key
from plexzoom.core import keys, uploads
from plexzoom.core.access import AccessPolicy, bearer_key, key_owner
from plexzoom.core.errors import BadRequest, NotFound
from plexzoom.core.manifest import Manifest, ResumableUpload, read_manifest
from plexzoom.core.uploads import PartUrls

router = APIRouter(
    prefix="/v1/uploads",
    tags=["uploads"],
    dependencies=[Depends(require_key)],
    responses=KEY_RESPONSES,
)
# Part URLs of the local backend: signed, so no API key (a browser PUTs them like S3's); like
# presigned storage URLs they live outside /v1, where every call needs a key.
part_router = APIRouter(prefix="/uploads", tags=["uploads"])
VARIABLE = r"^[A-Za-z][A-Za-z0-9_]{0,62}$"
SIGN_BATCH = 1000


class NewUpload(BaseModel):
    """POST /v1/uploads."""

    size: int = Field(ge=1, description="The file's exact size in bytes.")
    name: str | None = Field(None, max_length=255, description="The file name (metadata only).")
    type: str | None = Field(None, max_length=255, description="Its content type (not trusted).")
    variable: str | None = Field(None, pattern=VARIABLE, description="MATLAB/HDF5 variable.")
    checksum: Literal["crc32"] | None = Field(
        None, description="'crc32': every part is signed and completed with its CRC-32."
    )


class UploadLinks(BaseModel):
    """Where to go next."""

    self: str
    image: str


class StoredPart(BaseModel):
    """One part the storage holds (``crc32``: its checksum, where the server lists one)."""

    number: int
    size: int
    etag: str
    crc32: str | None = None


class UploadState(BaseModel):
    """POST /v1/uploads and GET /v1/uploads/{id}: the upload's layout (and stored parts)."""

    id: str
    image_id: str
    size: int
    part_size: int
    parts: int
    checksum: Literal["crc32"] | None
    expires: datetime
    links: UploadLinks


class UploadParts(UploadState):
    """GET /v1/uploads/{id}: the layout and the parts stored so far."""

    stored: list[StoredPart]


class PartToSign(BaseModel):
    """A part to sign a URL for, with the base64 of its big-endian CRC-32 (zlib.crc32)."""

    number: int
    crc32: str | None = Field(None, max_length=12)


class PartNumbers(BaseModel):
    """POST /v1/uploads/{id}/parts: ``parts`` with their CRC-32s (the URLs then take only those
    bytes), or plain ``numbers``."""

    numbers: list[int] = Field(default_factory=list, max_length=SIGN_BATCH)
    parts: list[PartToSign] = Field(default_factory=list, max_length=SIGN_BATCH)

    def wanted(self) -> list[PartToSign]:
        """Every part to sign; BadRequest when none or both lists are given."""
        if bool(self.numbers) == bool(self.parts):
            raise BadRequest("Name the parts to sign: 'parts' (with their crc32) or 'numbers'.")
        return self.parts or [PartToSign(number=number) for number in self.numbers]


class PartUrl(BaseModel):
    """Where to PUT one part, with exactly ``size`` bytes and the ``headers`` given."""

    number: int
    url: str
    size: int
    headers: dict[str, str]


class SignedParts(BaseModel):
    """The signed part URLs, valid for ``expires_in`` seconds."""

    parts: list[PartUrl]
    expires_in: int
    # True: send a Content-MD5 header with each part; the server refuses a part that does not
    # match it (the api's own URLs, and S3 with SigV4 URLs, which leave it unsigned). A server
    # that would refuse the header gets false. Either way a part's ETag is its MD5 in hex.
    content_md5: bool = True


class PartRef(BaseModel):
    """A part as its PUT answered: number and ETag (and the CRC-32 it was signed with)."""

    number: int
    etag: str = Field(max_length=200)
    crc32: str | None = Field(None, max_length=12)


class Completion(BaseModel):
    """POST /v1/uploads/{id}/complete."""

    parts: list[PartRef] = Field(min_length=1, max_length=10_000)


def _owner(request: Request) -> str:
    """The owner of what this request starts: its API key's hash ("" on an open api)."""
    access: AccessPolicy = request.app.state.access
    if access.is_open:
        return ""
    return key_owner(bearer_key(request.headers.get("authorization")))


def _state(
    request: Request, manifest: Manifest, upload: ResumableUpload, settings: SettingsDep
) -> UploadState:
    base = str(request.base_url).rstrip("/")
    return UploadState(
        id=manifest.id,
        image_id=manifest.id,
        size=upload.size,
        part_size=upload.part_size,
        parts=uploads.part_count(upload),
        checksum=upload.checksum,
        expires=uploads.expires_at(manifest, settings.resumable_upload_ttl_s),
        links=UploadLinks(
            self=f"{base}/v1/uploads/{manifest.id}", image=f"{base}/v1/images/{manifest.id}"
        ),
    )


def _opened(
    request: Request, storage: StorageDep, upload_id: str
) -> tuple[Manifest, ResumableUpload]:
    manifest, upload = uploads.open_upload(storage, upload_id, _owner(request))
    return uploads.touch(storage, manifest), upload


@router.post("", status_code=201, response_model=UploadState)
def create(
    new: NewUpload, request: Request, storage: StorageDep, settings: SettingsDep
) -> UploadState:
    """Start a resumable upload of a file of `size` bytes; the answer gives its part layout."""
    manifest = uploads.create_upload(
        storage,
        new.size,
        _owner(request),
        settings.max_upload_bytes,
        name=new.name,
        variable=new.variable,
        preferred_part_size=settings.upload_part_bytes,
        crc32=new.checksum == "crc32",
    )
    assert manifest.upload is not None
    return _state(request, manifest, manifest.upload, settings)


@router.post("/{upload_id}/parts", response_model=SignedParts)
def sign_parts(
    upload_id: str,
    wanted: PartNumbers,
    request: Request,
    storage: StorageDep,
    settings: SettingsDep,
) -> SignedParts:
    """URLs to PUT parts to (each with exactly its `size` bytes); keep each PUT's ETag."""
    manifest, upload = _opened(request, storage, upload_id)
    wanted_parts = wanted.wanted()
    for part in wanted_parts:
        uploads.check_number(upload, part.number)
        if part.crc32 is not None:
            uploads.check_crc32(part.crc32)
        elif upload.checksum == "crc32":
            raise BadRequest(
                f"This upload checks CRC-32s: give part {part.number}'s crc32 to sign it."
            )
    ttl = settings.upload_part_url_ttl_s
    key = keys.original_key(manifest.id)
    signer: PartUrls = request.app.state.part_urls
    base = str(request.base_url).rstrip("/")
    parts = []
    for part in wanted_parts:
        number, crc32 = part.number, part.crc32
        url = storage.presign_part(key, upload.upload_id, number, ttl, crc32)
        if url is None:
            query = signer.query(manifest.id, number, ttl, crc32)
            url = f"{base}/uploads/{manifest.id}/parts/{number}?{query}"
        size = uploads.expected_part_size(upload, number)
        headers = {"x-amz-checksum-crc32": crc32} if crc32 else {}
        parts.append(PartUrl(number=number, url=url, size=size, headers=headers))
    return SignedParts(parts=parts, expires_in=ttl)


@router.get("/{upload_id}", response_model=UploadParts)
def get_upload(
    upload_id: str, request: Request, storage: StorageDep, settings: SettingsDep
) -> UploadParts:
    """The upload's layout and the parts stored so far (to resume: send the others)."""
    manifest, upload = _opened(request, storage, upload_id)
    stored = uploads.stored_parts(storage, manifest.id, upload)
    return UploadParts(
        **_state(request, manifest, upload, settings).model_dump(),
        stored=[
            StoredPart(number=p.number, size=p.size, etag=p.etag, crc32=p.crc32) for p in stored
        ],
    )


@router.post("/{upload_id}/complete", status_code=202, response_model=ImageStatus)
def complete(
    upload_id: str,
    completion: Completion,
    request: Request,
    storage: StorageDep,
    enqueue: EnqueueDep,
    settings: SettingsDep,
) -> ImageStatus:
    """Join the parts (each named with the ETag its PUT answered) and convert the image."""
    manifest, upload = uploads.open_upload(storage, upload_id, _owner(request))
    parts = [(part.number, part.etag) for part in completion.parts]
    checksums = {p.number: uploads.check_crc32(p.crc32) for p in completion.parts if p.crc32}
    manifest = uploads.complete_upload(
        storage, manifest, upload, parts, enqueue, settings.show_slide_labels, checksums
    )
    return to_status(manifest, link_context(request, settings), storage)


@router.delete("/{upload_id}", status_code=204)
def abort(upload_id: str, request: Request, storage: StorageDep) -> Response:
    """Abort the upload: its parts and its image record are deleted."""
    manifest, upload = uploads.open_upload(storage, upload_id, _owner(request))
    uploads.abort_upload(storage, manifest, upload)
    return Response(status_code=204)


_PART_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@part_router.put(
    "/{upload_id}/parts/{number}",
    status_code=200,
    openapi_extra=_PART_BODY,
    responses={403: {"description": "A part URL that is not valid or has expired."}},
)
async def put_part(
    upload_id: str,
    number: int,
    request: Request,
    storage: StorageDep,
    expires: Annotated[int, Query(ge=0, le=2**40)],
    signature: Annotated[str, Query(max_length=64)],
    crc32: Annotated[str | None, Query(max_length=12)] = None,
    content_md5: Annotated[str | None, Header(max_length=64)] = None,
) -> Response:
    """Store one part sent to a part URL of the local backend; answers its ETag."""
    signer: PartUrls = request.app.state.part_urls
    signer.check(upload_id, number, expires, signature, crc32 or "")
    manifest = await to_thread.run_sync(_uploading, storage, upload_id)
    upload = manifest.upload
    assert upload is not None
    uploads.check_number(upload, number)
    expected = uploads.expected_part_size(upload, number)
    declared = request.headers.get("content-length")
    if declared is not None and declared != str(expected):
        raise BadRequest(
            f"Part {number} must have exactly {expected} bytes; this one has {declared}."
        )
    checks = Checks(md5=_md5_of(content_md5), crc32=_crc32_of(crc32))
    body = PartBody(request.stream(), number, expected, checks)
    key = keys.original_key(manifest.id)
    put = partial(storage.put_part, key, upload.upload_id, number, cast(IO[bytes], body))
    etag = await to_thread.run_sync(put)
    await to_thread.run_sync(uploads.touch, storage, manifest)
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


def _uploading(storage: StorageDep, image_id: str) -> Manifest:
    """The record of an open upload (the URL's signature stands for its owner)."""
    try:
        manifest = read_manifest(storage, image_id)
    except NotFound as exc:
        raise NotFound(uploads.NO_UPLOAD) from exc
    if manifest.upload is None:
        raise NotFound(uploads.NO_UPLOAD)
    return manifest


def _crc32_of(value: str | None) -> int | None:
    """The CRC-32 a signed part URL names, as a number."""
    if value is None:
        return None
    return int.from_bytes(base64.b64decode(uploads.check_crc32(value)), "big")


def _md5_of(header: str | None) -> bytes | None:
    """The digest a Content-MD5 header names (base64 of 16 bytes), or BadRequest."""
    if header is None:
        return None
    try:
        digest = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise BadRequest("Content-MD5 must be the base64 of the part's 16-byte MD5 digest.")
    return digest


@dataclass(frozen=True)
class Checks:
    """What a part's bytes must match: a Content-MD5 digest, the CRC-32 its URL was signed for."""

    md5: bytes | None = None
    crc32: int | None = None


class PartBody(io.RawIOBase):
    """A request body read from a worker thread, checked as it goes: never more than the part's
    size, and at the end exactly its size and (when given) its MD5 and CRC-32."""

    def __init__(
        self, chunks: AsyncIterator[bytes], number: int, expected: int, checks: Checks
    ) -> None:
        self.chunks, self.number, self.expected, self.checks = chunks, number, expected, checks
        self.received = 0
        self.digest = hashlib.md5(usedforsecurity=False) if checks.md5 is not None else None
        self.crc32 = 0
        self.buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """The next bytes of the body (at most ``size``, fewer when fewer arrived); b"" at the
        end, once the part checked out."""
        if not self.buffer:
            self.buffer = from_thread.run(self._next)
            if not self.buffer:
                self._check_end()
                return b""
            self._take(self.buffer)
        if size is None or size < 0:
            size = len(self.buffer)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    async def _next(self) -> bytes:
        try:
            return await anext(aiter(self.chunks))
        except StopAsyncIteration:
            return b""

    def _take(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.expected:
            raise BadRequest(f"Part {self.number} must have exactly {self.expected} bytes.")
        if self.digest is not None:
            self.digest.update(chunk)
        if self.checks.crc32 is not None:
            self.crc32 = zlib.crc32(chunk, self.crc32)

    def _check_end(self) -> None:
        if self.received != self.expected:
            raise BadRequest(
                f"Part {self.number} ended after {self.received} of its {self.expected} bytes; "
                "send it again."
            )
        if self.digest is not None and self.digest.digest() != self.checks.md5:
            raise BadRequest(f"Part {self.number} does not match its Content-MD5; send it again.")
        if self.checks.crc32 is not None and self.crc32 != self.checks.crc32:
            raise BadRequest(
                f"Part {self.number} does not match the CRC-32 it was signed for; send it again."
            )
