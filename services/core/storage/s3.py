"""S3 storage over boto3, for any S3-compatible endpoint (AWS, SeaweedFS, MinIO, Ceph, moto).

Where servers differ, this follows the S3 specification and accepts each documented answer.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from plexzoom.core.errors import NotFound, StorageError, WriteConflict
from plexzoom.core.storage.base import ObjectInfo, Part, UploadInfo
from plexzoom.core.storage.s3_uploads import S3Uploads
from plexzoom.core.storage.s3_writer import (
    BYTES,
    MISSING,
    PART_SIZE,
    S3Writer,
    error_code,
    translate,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CORSRuleTypeDef

# A conditional write lost: 412 on a changed ETag, 409 when another conditional write to the
# key is in flight, 404 when If-Match names an object that was deleted meanwhile.
# The bucket's CORS rule for plexzoom's browsers (set_cors): ranged reads of pyramids and PUTs
# of upload parts, with the headers browsers and S3 clients send for them.
CORS_RULE_ID = "plexzoom"
CORS_ALLOWED_HEADERS = (
    "Range",
    "If-None-Match",
    "Content-Type",
    "Content-MD5",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-sdk-checksum-algorithm",
)
_LOST_RACE = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409", *MISSING}


@dataclass(frozen=True)
class S3Config:
    """Where the bucket is; credentials come from boto3's usual chain (AWS_* variables)."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    max_pool_connections: int = 32
    # Transient errors (timeouts, connection resets, 500/503 SlowDown) are retried by
    # botocore's "standard" mode with exponential backoff and jitter (at most 20 s apart).
    retry_mode: Literal["legacy", "standard", "adaptive"] = "standard"
    max_attempts: int = 8  # tries of one request, the first included
    connect_timeout_s: float = 5
    read_timeout_s: float = 30
    agent: str = "plexzoom"  # added to the User-Agent: server logs tell the services apart
    # Where browsers reach the S3 server, when not at endpoint_url (an in-cluster name):
    # presigned URLs are signed for this host (SigV4 signs the host), never sent to it here.
    public_endpoint_url: str | None = None


class S3Storage:
    """One bucket; thread-safe (boto3 clients are)."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.bucket = config.bucket
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            config=Config(
                max_pool_connections=config.max_pool_connections,
                retries={"total_max_attempts": config.max_attempts, "mode": config.retry_mode},
                connect_timeout=config.connect_timeout_s,
                read_timeout=config.read_timeout_s,
                s3={"addressing_style": "path"},
                user_agent_extra=config.agent,
            ),
        )
        self._transfer = TransferConfig(multipart_chunksize=PART_SIZE, max_concurrency=4)
        # Presigned URLs: always SigV4 (botocore may choose V2, which signs Content-MD5 and
        # other headers a browser sends), for the host browsers reach the server by.
        self._signer: S3Client = boto3.client(
            "s3",
            endpoint_url=config.public_endpoint_url or config.endpoint_url,
            region_name=config.region,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )
        self._uploads = S3Uploads(self.client, self._signer, self.bucket)

    def __reduce__(self) -> tuple[type["S3Storage"], tuple[S3Config]]:
        """Pickle as the configuration (a boto3 client cannot cross into a child process)."""
        return (S3Storage, (self.config,))

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type or BYTES
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "write an object") from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "read an object") from exc

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            return answer["Body"].read(), answer["ETag"]
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "read an object") from exc

    def put_if_match(self, key: str, data: bytes, etag: str | None, content_type: str = "") -> str:
        extra = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            answer = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type or BYTES,
                **extra,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            # If-Match on a missing key: AWS answers 404 NoSuchKey, SeaweedFS 412 (as RFC 9110).
            if error_code(exc) in _LOST_RACE:
                raise WriteConflict() from exc
            raise translate(exc, "write an object") from exc
        except BotoCoreError as exc:
            raise translate(exc, "write an object") from exc
        return answer["ETag"]

    def get_range(self, key: str, start: int, length: int) -> bytes:
        byte_range = f"bytes={start}-{start + length - 1}"
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=byte_range)
            return answer["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "read part of an object") from exc

    def open_writer(self, key: str) -> S3Writer:
        return S3Writer(self.client, self.bucket, key)

    def upload_file(self, key: str, path: Path) -> None:
        try:
            self.client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": BYTES},
                Config=self._transfer,
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "upload a file") from exc
        except boto3.exceptions.S3UploadFailedError as exc:
            raise StorageError("Object storage refused to upload a file.") from exc

    def download_file(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.bucket, key, str(path), Config=self._transfer)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "download a file") from exc

    def size(self, key: str) -> int:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "look up an object") from exc

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "delete an object") from exc

    def delete_prefix(self, prefix: str) -> None:
        keys = self.list_keys(prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": batch, "Quiet": True},  # type: ignore[typeddict-item]
                )
            except (BotoCoreError, ClientError) as exc:
                raise translate(exc, "delete objects") from exc
            # DeleteObjects answers 200 even when some keys failed; they are listed in Errors.
            failed = {e.get("Code", "") for e in answer.get("Errors", [])}
            if failed:
                raise StorageError(f"Object storage refused to delete objects ({min(failed)}).")
        self._abort_uploads(prefix)

    def _abort_uploads(self, prefix: str) -> None:
        """Abort unfinished multipart uploads under ``prefix`` (they hold storage invisibly)."""
        for upload in self._uploads.list_uploads(prefix):
            self._uploads.abort(upload.key, upload.upload_id)

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "list objects") from exc
        return sorted(keys)

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for found in page.get("Contents", []):
                    yield ObjectInfo(
                        key=found["Key"],
                        etag=found["ETag"].strip('"'),
                        size=found["Size"],
                        modified=found["LastModified"],
                    )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "list objects") from exc

    def stat(self, key: str) -> ObjectInfo:
        try:
            found = self.client.head_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "look up an object") from exc
        return ObjectInfo(
            key=key,
            etag=found["ETag"].strip('"'),
            size=found["ContentLength"],
            modified=found["LastModified"],
            version_id=found.get("VersionId"),
        )

    def move_if_match(self, key: str, to: str, etag: str) -> None:
        self.copy_if_match(self.bucket, key, to, etag)
        try:
            current = self.client.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
        except ClientError as exc:
            if error_code(exc) in MISSING:
                return
            raise translate(exc, "look up an object") from exc
        if current == etag:  # a newer version written meanwhile stays, to be taken in turn
            self.delete(key)

    def copy_if_match(self, bucket: str, key: str, to: str, etag: str) -> None:
        source = {"Bucket": bucket, "Key": key}
        try:
            # A managed copy: one CopyObject, or UploadPartCopy parts past the threshold (a
            # single CopyObject stops at 5 GiB); each request carries the condition.
            self.client.copy(
                source,  # type: ignore[arg-type]
                self.bucket,
                to,
                ExtraArgs={"CopySourceIfMatch": f'"{etag}"', "ContentType": BYTES},
                Config=self._transfer,
            )
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "412"):
                raise WriteConflict() from exc
            raise translate(exc, "copy an object") from exc
        except BotoCoreError as exc:
            raise translate(exc, "copy an object") from exc

    def list_children(self, prefix: str, start_after: str, limit: int) -> list[str]:
        extra = {"StartAfter": f"{prefix}{start_after}/~"} if start_after else {}
        try:
            answer = self.client.list_objects_v2(
                Bucket=self.bucket,
                Prefix=prefix,
                Delimiter="/",
                MaxKeys=limit,
                **extra,  # type: ignore[arg-type]
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "list objects") from exc
        names = [p["Prefix"][len(prefix) :].rstrip("/") for p in answer.get("CommonPrefixes", [])]
        return sorted(names)[:limit]

    def presign_get(self, key: str, expires_s: int) -> str | None:
        return self._signer.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
        )

    def create_multipart(self, key: str, content_type: str = "", crc32: bool = False) -> str:
        return self._uploads.create(key, content_type, crc32)

    def presign_part(
        self, key: str, upload_id: str, number: int, expires_s: int, crc32: str | None = None
    ) -> str | None:
        return self._uploads.presign(key, upload_id, number, expires_s, crc32)

    def put_part(self, key: str, upload_id: str, number: int, data: bytes | IO[bytes]) -> str:
        return self._uploads.put(key, upload_id, number, data)

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        return self._uploads.list_parts(key, upload_id)

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        checksums: dict[int, str] | None = None,
    ) -> None:
        self._uploads.complete(key, upload_id, parts, checksums)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._uploads.abort(key, upload_id)

    def list_multipart_uploads(self, prefix: str) -> list[UploadInfo]:
        return self._uploads.list_uploads(prefix)

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "answer") from exc

    def ensure_bucket(self, cors_origins: list[str] | None = None) -> None:
        """Create the bucket if missing; set its CORS rules explicitly when origins are given."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._create_bucket()
        if cors_origins:
            self.set_cors(cors_origins)

    def _create_bucket(self) -> None:
        """Create the bucket; another process creating it first is fine.

        S3 answers a repeated create of one's own bucket with 409 BucketAlreadyOwnedByYou, but
        200 in us-east-1 for legacy reasons (moto answers 200, SeaweedFS 409).
        """
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise translate(exc, "create the bucket") from exc
        except BotoCoreError as exc:
            raise translate(exc, "create the bucket") from exc

    def set_cors(self, origins: list[str]) -> None:
        """Let these origins read objects with Range requests (presigned tile mode) and PUT the
        parts of resumable uploads to presigned URLs, reading each part's ETag.

        One rule, ``CORS_RULE_ID``, replaces the one written before; rules an operator added
        for other uses are kept.
        """
        rule: CORSRuleTypeDef = {
            "ID": CORS_RULE_ID,
            "AllowedOrigins": origins,
            "AllowedMethods": ["GET", "HEAD", "PUT"],
            "AllowedHeaders": list(CORS_ALLOWED_HEADERS),
            "ExposeHeaders": ["ETag", "Content-Range", "Content-Length", "Accept-Ranges"],
            "MaxAgeSeconds": 3600,
        }
        try:
            kept = [r for r in self.cors_rules() if r.get("ID") != CORS_RULE_ID]
            self.client.put_bucket_cors(
                Bucket=self.bucket, CORSConfiguration={"CORSRules": [*kept, rule]}
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "set CORS rules") from exc

    def cors_rules(self) -> list["CORSRuleTypeDef"]:
        """The bucket's CORS rules (none set: an empty list)."""
        try:
            found = self.client.get_bucket_cors(Bucket=self.bucket)
        except ClientError as exc:
            if error_code(exc) == "NoSuchCORSConfiguration":
                return []
            raise
        return list(found.get("CORSRules", []))  # type: ignore[arg-type]
