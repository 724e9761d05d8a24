"""S3 errors and the streaming (multipart) writer of the S3 backend."""

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from plexzoom.core.errors import BadRequest, Conflict, NotFound, PlexzoomError, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PART_SIZE = (
    16 * 1024 * 1024
)  # S3 parts must be >= 5 MiB; 10,000 parts x 16 MiB = 160 GiB per object
MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}
# Sent when the caller names no type: S3 itself defaults to binary/octet-stream, but some servers
# (SeaweedFS) sniff the bytes and would serve an HTML-looking object as text/html.
BYTES = "application/octet-stream"
# Refusals of multipart uploads: what each means to whoever drives the upload.
_UPLOAD_REFUSALS: dict[str, tuple[type[PlexzoomError], str]] = {
    "NoSuchUpload": (
        NotFound,
        "No such upload: it was completed or aborted, or never started; start a new one.",
    ),
    "InvalidPart": (
        Conflict,
        "A part named to complete the upload is not stored with that ETag; "
        "list the parts and complete with those.",
    ),
    "InvalidPartOrder": (Conflict, "The parts named to complete the upload are out of order."),
    "EntityTooSmall": (
        BadRequest,
        "Every part but the last must have at least 5 MiB; upload those parts again larger.",
    ),
}


def error_code(exc: ClientError) -> str:
    """The S3 error code of a refused request."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, what: str) -> Exception:
    """Turn a boto3 error into NotFound, a refused upload's error, or StorageError."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in _UPLOAD_REFUSALS:
            kind, message = _UPLOAD_REFUSALS[code]
            return kind(message)
        if code in MISSING:
            return NotFound("No such object.")
        return StorageError(f"Object storage refused to {what} ({code}).")
    return StorageError(f"Object storage did not answer while trying to {what}.")


class S3Writer:
    """A multipart upload, buffered into PART_SIZE parts; aborted uploads leave nothing."""

    def __init__(self, client: "S3Client", bucket: str, key: str) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= PART_SIZE:
            self._send_part(bytes(self._buffer[:PART_SIZE]))
            del self._buffer[:PART_SIZE]

    def _send_part(self, data: bytes) -> None:
        try:
            if self._upload_id is None:
                created = self._client.create_multipart_upload(
                    Bucket=self._bucket, Key=self._key, ContentType=BYTES
                )
                self._upload_id = created["UploadId"]
            number = len(self._parts) + 1
            sent = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            )
            self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "store an upload part") from exc

    def commit(self) -> None:
        try:
            if self._upload_id is None:
                self._client.put_object(
                    Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer), ContentType=BYTES
                )
                return
            if self._buffer:
                self._send_part(bytes(self._buffer))
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
            )
            self._upload_id = None  # completed: nothing is left to abort
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "finish an upload") from exc
        finally:
            self._buffer.clear()

    def abort(self) -> None:
        self._buffer.clear()
        if self._upload_id is not None:
            abort_upload(self._client, self._bucket, self._key, self._upload_id)
            self._upload_id = None


def abort_upload(client: "S3Client", bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload; one already aborted (S3 says 404 NoSuchUpload) is fine."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except ClientError as exc:
        if error_code(exc) != "NoSuchUpload":
            raise translate(exc, "abort an upload") from exc
    except BotoCoreError as exc:
        raise translate(exc, "abort an upload") from exc
