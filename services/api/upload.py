"""Streaming multipart upload: the request body goes into storage as it arrives.

Nothing is buffered beyond one network chunk plus one storage part; the size cap is checked
on every chunk; a client that disconnects leaves no object, multipart upload or temp file.
"""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

from anyio import CancelScope, to_thread
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from plexzoom.core import keys
from plexzoom.core.errors import BadUpload, ImageTooLarge, UnsupportedFormat
from plexzoom.core.formats import SNIFF_BYTES, SUPPORTED_NAMES, Format, check_stored, sniff_format
from plexzoom.core.images import Enqueue, discard_image, start_image, submit_image, touch_upload
from plexzoom.core.manifest import Manifest
from plexzoom.core.privacy import PRIVACY_HEAD_BYTES, record_names
from plexzoom.core.storage import ObjectWriter, Storage

FIELD = b"file"
# A streaming upload touches its manifest this often; the reconciler removes `uploading` images
# untouched for PLEXZOOM_UPLOAD_STALE_S (a web process that died mid-upload).
TOUCH_S = 60.0
_NO_FILE = "Send the image as multipart/form-data with a field named 'file'."


@dataclass
class _Part:
    """Multipart parser state, filled in by its callbacks."""

    headers: dict[bytes, bytes] = field(default_factory=dict)
    field_name: bytes = b""
    header_field: bytes = b""
    header_value: bytes = b""
    in_file: bool = False
    file_done: bool = False
    filename: str | None = None
    pending: bytearray = field(default_factory=bytearray)


def _callbacks(part: _Part) -> dict[str, object]:
    """Callbacks that route the 'file' field's bytes into ``part.pending``."""

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.header_value += data[start:end]

    def on_header_end() -> None:
        part.headers[part.header_field.lower()] = part.header_value
        part.header_field, part.header_value = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.in_file = options.get(b"name") == FIELD and not part.file_done
        if part.in_file:
            raw_name = options.get(b"filename")
            part.filename = raw_name.decode("utf-8", "replace")[:255] if raw_name else None
        part.headers = {}

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.in_file:
            part.pending += data[start:end]

    def on_part_end() -> None:
        if part.in_file:
            part.in_file, part.file_done = False, True

    return {
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }


def boundary_of(request: Request) -> bytes:
    """The multipart boundary of the request, or BadUpload."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise BadUpload(_NO_FILE)
    return options[b"boundary"]


def check_declared_size(request: Request, cap: int) -> None:
    """Refuse at once a body whose declared length already exceeds the cap (plus form overhead)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap + 64 * 1024:
        raise ImageTooLarge(_too_large(cap))


def _too_large(cap: int) -> str:
    return f"The file is larger than this server's upload limit of {cap} bytes."


class UploadSink:
    """Moves the file's bytes from the parser into one storage object."""

    def __init__(
        self, storage: Storage, cap: int, variable: str | None = None, show_slides: bool = False
    ) -> None:
        self.storage, self.cap, self.variable = storage, cap, variable
        self.show_slides = show_slides
        self.manifest: Manifest | None = None
        self.format: Format | None = None
        self.writer: ObjectWriter | None = None
        self.size = 0
        self.touched = time.monotonic()

    async def drain(self, part: _Part, final: bool) -> None:
        """Write what the parser collected; open the object once the format is known."""
        if self.writer is None:
            if len(part.pending) < PRIVACY_HEAD_BYTES and not (final or part.file_done):
                return
            if not part.pending:
                return
            head = bytes(part.pending[:PRIVACY_HEAD_BYTES])
            self.format = sniff_format(head[:SNIFF_BYTES])
            # A slide's file name often names the patient: withheld unless labels are shown.
            name, pending = record_names(part.filename, head, self.show_slides)
            self.manifest = await to_thread.run_sync(
                partial(start_image, filename_pending=pending),
                self.storage, name, self.variable,
            )  # fmt: skip
            key = keys.original_key(self.manifest.id)
            self.writer = await to_thread.run_sync(self.storage.open_writer, key)
        self.size += len(part.pending)
        if self.size > self.cap:
            raise ImageTooLarge(_too_large(self.cap))
        data = bytes(part.pending)
        part.pending.clear()
        await to_thread.run_sync(self.writer.write, data)
        if time.monotonic() - self.touched > TOUCH_S and self.manifest is not None:
            await to_thread.run_sync(touch_upload, self.storage, self.manifest.id)
            self.touched = time.monotonic()

    async def abort(self) -> None:
        """Leave nothing behind: no object, no multipart upload, no manifest."""
        try:
            if self.writer is not None:
                await to_thread.run_sync(self.writer.abort)
        finally:
            if self.manifest is not None:
                await to_thread.run_sync(discard_image, self.storage, self.manifest.id)


async def receive_upload(
    request: Request,
    storage: Storage,
    enqueue: Enqueue,
    cap: int,
    variable: str | None = None,
    show_slides: bool = False,
) -> Manifest:
    """Stream the request's 'file' field into storage and queue its conversion."""
    check_declared_size(request, cap)
    part = _Part()
    parser = MultipartParser(boundary_of(request), _callbacks(part))  # type: ignore[arg-type]
    sink = UploadSink(storage, cap, variable, show_slides)
    try:
        await _pump(request.stream(), parser, part, sink)
        if not part.file_done and sink.writer is None:
            raise BadUpload(_NO_FILE)
        if sink.writer is None or sink.manifest is None or sink.format is None:
            raise UnsupportedFormat(
                f"The uploaded file is empty. Supported formats: {SUPPORTED_NAMES}."
            )
        await to_thread.run_sync(sink.writer.commit)
        key = keys.original_key(sink.manifest.id)
        await to_thread.run_sync(check_stored, storage, key, sink.format, sink.size)
        return await to_thread.run_sync(
            submit_image, storage, sink.manifest, sink.format, sink.size, enqueue
        )
    except BaseException:
        with CancelScope(shield=True):  # a disconnect cancels the request; cleanup must still run
            await sink.abort()
        raise


async def _pump(
    chunks: AsyncIterator[bytes], parser: MultipartParser, part: _Part, sink: UploadSink
) -> None:
    """Feed request chunks through the parser into the sink until the file field ends."""
    async for chunk in chunks:
        parser.write(chunk)
        await sink.drain(part, final=False)
        if part.file_done:
            break
    parser.finalize()
    await sink.drain(part, final=True)
    if sink.writer is not None and not part.file_done:
        raise BadUpload("The upload ended before the file was complete; send it again.")
