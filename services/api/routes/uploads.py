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
from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from typing import IO, Annotated, cast

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


class UploadLinks(BaseModel):
    """Where to go next."""

    self: str
    image: str


class StoredPart(BaseModel):
    """One part the storage holds."""

    number: int
    size: int
    etag: str


class UploadState(BaseModel):
    """POST /v1/uploads and GET /v1/uploads/{id}: the upload's layout (and stored parts)."""

    id: str
    image_id: str
    size: int
    part_size: int
    parts: int
    expires: datetime
    links: UploadLinks


class UploadParts(UploadState):
    """GET /v1/uploads/{id}: the layout and the parts stored so far."""

    stored: list[StoredPart]


class PartNumbers(BaseModel):
    """POST /v1/uploads/{id}/parts."""

    numbers: list[int] = Field(min_length=1, max_length=SIGN_BATCH)


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
    """A part as its PUT answered: number and ETag."""

    number: int
    etag: str = Field(max_length=200)


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
    for number in wanted.numbers:
        uploads.check_number(upload, number)
    ttl = settings.upload_part_url_ttl_s
    key = keys.original_key(manifest.id)
    signer: PartUrls = request.app.state.part_urls
    base = str(request.base_url).rstrip("/")
    parts = []
    for number in wanted.numbers:
        url = storage.presign_part(key, upload.upload_id, number, ttl)
        if url is None:
            query = signer.query(manifest.id, number, ttl)
            url = f"{base}/uploads/{manifest.id}/parts/{number}?{query}"
        size = uploads.expected_part_size(upload, number)
        parts.append(PartUrl(number=number, url=url, size=size, headers={}))
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
        stored=[StoredPart(number=p.number, size=p.size, etag=p.etag) for p in stored],
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
    manifest = uploads.complete_upload(
        storage, manifest, upload, parts, enqueue, settings.show_slide_labels
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
    content_md5: Annotated[str | None, Header(max_length=64)] = None,
) -> Response:
    """Store one part sent to a part URL of the local backend; answers its ETag."""
    signer: PartUrls = request.app.state.part_urls
    signer.check(upload_id, number, expires, signature)
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
    body = PartBody(request.stream(), number, expected, _md5_of(content_md5))
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


class PartBody(io.RawIOBase):
    """A request body read from a worker thread, checked as it goes: never more than the part's
    size, and at the end exactly its size and (when given) its MD5."""

    def __init__(
        self, chunks: AsyncIterator[bytes], number: int, expected: int, md5: bytes | None
    ) -> None:
        self.chunks, self.number, self.expected, self.md5 = chunks, number, expected, md5
        self.received = 0
        self.digest = hashlib.md5(usedforsecurity=False)
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
        self.digest.update(chunk)

    def _check_end(self) -> None:
        if self.received != self.expected:
            raise BadRequest(
                f"Part {self.number} ended after {self.received} of its {self.expected} bytes; "
                "send it again."
            )
        if self.md5 is not None and self.digest.digest() != self.md5:
            raise BadRequest(f"Part {self.number} does not match its Content-MD5; send it again.")
