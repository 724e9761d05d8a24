"""Multipart uploads of the S3 backend, driven by a client part by part (resumable)."""

from datetime import datetime
from typing import IO, TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from plexzoom.core.storage.base import Part, UploadInfo
from plexzoom.core.storage.parts import check_part_number, check_parts, ordered_parts
from plexzoom.core.storage.s3_writer import BYTES, abort_upload, translate

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class S3Uploads:
    """The multipart uploads of one bucket; ``signer`` signs URLs for the public endpoint."""

    def __init__(self, client: "S3Client", signer: "S3Client", bucket: str) -> None:
        self._client, self._signer, self._bucket = client, signer, bucket

    def create(self, key: str, content_type: str, crc32: bool = False) -> str:
        """CreateMultipartUpload (``crc32``: with CRC-32 part checksums, which the server checks
        on each part and wants named at completion); returns the upload id."""
        checksum = {"ChecksumAlgorithm": "CRC32"} if crc32 else {}
        try:
            created = self._client.create_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                ContentType=content_type or BYTES,
                **checksum,  # type: ignore[arg-type]
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "start an upload") from exc
        return created["UploadId"]

    def presign(
        self, key: str, upload_id: str, number: int, expires_s: int, crc32: str | None = None
    ) -> str:
        """A presigned UploadPart URL (signed offline: the upload is not looked up); with
        ``crc32``, its x-amz-checksum-crc32 header is signed in."""
        check_part_number(number)
        params: dict[str, object] = {
            "Bucket": self._bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": number,
        }
        if crc32 is not None:
            params["ChecksumCRC32"] = crc32
        return self._signer.generate_presigned_url(
            "upload_part", Params=params, ExpiresIn=expires_s
        )

    def put(self, key: str, upload_id: str, number: int, data: bytes | IO[bytes]) -> str:
        """UploadPart; returns the part's ETag without quotes."""
        check_part_number(number)
        try:
            sent = self._client.upload_part(
                Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "store an upload part") from exc
        return sent["ETag"].strip('"')

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """ListParts, every page, ascending by number (then by time stored).

        SeaweedFS keeps every upload of a part number until completion, lists each of them and
        completes with the one whose ETag is named; its LastModified, in whole seconds, cannot
        tell which is newest, so all are given.
        """
        found = sorted(self._stored_parts(key, upload_id), key=lambda f: (f[0].number, f[1]))
        return [part for part, _ in found]

    def _stored_parts(self, key: str, upload_id: str) -> list[tuple[Part, datetime]]:
        """Every part ListParts names and when it was stored, every page (1,000 parts each)."""
        found: list[tuple[Part, datetime]] = []
        try:
            pages = self._client.get_paginator("list_parts").paginate(
                Bucket=self._bucket, Key=key, UploadId=upload_id
            )
            for page in pages:
                found.extend(
                    (
                        Part(
                            p["PartNumber"], p["Size"], p["ETag"].strip('"'), p.get("ChecksumCRC32")
                        ),
                        p["LastModified"],
                    )
                    for p in page.get("Parts", [])
                )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "list the parts of an upload") from exc
        return found

    def complete(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        checksums: dict[int, str] | None = None,
    ) -> None:
        """CompleteMultipartUpload with the parts in ascending order (as S3 requires).

        The parts are checked against ListParts first, as the local backend checks them, so
        every server refuses alike (they differ in which refusal comes first). SeaweedFS still
        accepts the ETag of a part since uploaded again, where S3 refuses it.
        """
        wanted = ordered_parts(parts)
        stored = [part for part, _ in self._stored_parts(key, upload_id)]
        check_parts(wanted, stored)
        # S3 wants each part's checksum named when the upload has them: the client's, else the
        # one the listing gives (servers that list none check none).
        listed = {(part.number, part.etag): part.crc32 for part in stored}
        named = []
        for n, etag in wanted:
            entry = {"PartNumber": n, "ETag": f'"{etag}"'}
            crc32 = (checksums or {}).get(n) or listed.get((n, etag))
            if crc32:
                entry["ChecksumCRC32"] = crc32
            named.append(entry)
        try:
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": named},  # type: ignore[typeddict-item]
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "finish an upload") from exc

    def abort(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload; an unknown upload is fine."""
        abort_upload(self._client, self._bucket, key, upload_id)

    def list_uploads(self, prefix: str) -> list[UploadInfo]:
        """ListMultipartUploads, every page, by key then start time."""
        found: list[UploadInfo] = []
        try:
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self._bucket, Prefix=prefix
            )
            for page in pages:
                found.extend(
                    UploadInfo(u["Key"], u["UploadId"], u["Initiated"])
                    for u in page.get("Uploads", [])
                )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "list uploads") from exc
        return sorted(found, key=lambda u: (u.key, u.initiated))
