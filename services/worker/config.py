"""Worker settings."""

import base64
import binascii
import functools
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from plexzoom.core.child import ChildLimits
from plexzoom.core.convert import ConvertOptions
from plexzoom.core.inbox import Inbox
from plexzoom.core.pyramid import PyramidOptions
from plexzoom.core.readers import ReadOptions
from plexzoom.core.reconcile import QUEUED_GRACE_S, UPLOAD_STALE_S
from plexzoom.settings import CommonSettings
from plexzoom.worker.process import prepare_decoding_process
from plexzoom.worker.webhooks import WebhookOptions


class WorkerSettings(CommonSettings):
    """PLEXZOOM_* variables read by the worker."""

    # A start-up error must not print the variables it was given: they hold secrets.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    tile_size: int = 254
    tile_overlap: int = 1
    jpeg_quality: int = 85
    scratch_dir: Path | None = None
    # Dramatiq's default of 20 retries loops on bad files; attempts are also counted in the
    # manifest, so redeliveries and the reconciler cannot loop either.
    job_max_retries: int = 3
    max_attempts: int = ConvertOptions.max_attempts
    # The conversion runs in a spawned child: heap cap (RLIMIT_DATA, 0 = none) and wall clock.
    convert_memory_mb: int = 8192
    convert_timeout_s: float = 4 * 3600
    # One child waits ready (about 100 MiB while idle) so a conversion starts at once.
    convert_spare_child: bool = True
    # A job renews its lease while it runs; one silent this long is presumed dead.
    job_lease_s: float = ConvertOptions.lease_s
    reconcile_interval_s: float = 30
    # A queued image untouched this long has probably lost its message (Redis lost its queue).
    queued_grace_s: float = QUEUED_GRACE_S
    # An `uploading` image untouched this long lost its web process mid-upload (uploads touch
    # their manifest every minute while bytes arrive); the reconciler removes it.
    upload_stale_s: float = UPLOAD_STALE_S
    # How often the inbox is scanned (README, "Storage-triggered processing"); 0: never.
    inbox_scan_interval_s: float = 30
    # A local file is taken once unchanged this long (it may still be being written).
    inbox_settle_s: float = 5
    # Watched sources: JSON list of "s3://bucket/prefix/", only read, on the same S3 server;
    # objects last modified before watch_since are passed over (unset: all are imported).
    watch: tuple[str, ...] = ()
    watch_since: datetime | None = None
    # S3 event notifications through SQS: the queue's URL (unset: no consumer).
    sqs_queue_url: str | None = None
    sqs_wait_s: int = 20
    vips_concurrency: int = 0
    # Multi-channel TIFFs: libvips holds two rows of source tiles per page it reads, so memory
    # grows with this count times the image width (see README, "Memory").
    channels_per_pass: int = ConvertOptions.channels_per_pass
    malloc_arenas: int = 2  # glibc malloc arenas (see plexzoom.worker.memory)
    # Limits checked against each file's header before any pixel is decoded (README,
    # "Hostile input"); the defaults are ReadOptions'.
    max_image_width: int = ReadOptions.max_width
    max_image_height: int = ReadOptions.max_height
    max_image_pixels: int = ReadOptions.max_pixels
    max_channels: int = ReadOptions.max_channels
    max_bytes_per_pixel: int = ReadOptions.max_bytes_per_pixel
    max_in_memory_bytes: int = ReadOptions.max_in_memory_bytes
    # Outbound webhooks (README, "Webhooks"): JSON list of http(s) URLs (empty: none), signed
    # with a secret in the Standard Webhooks form "whsec_<base64>".
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: SecretStr = SecretStr("")
    webhook_retry_s: float = Field(3600, ge=0)
    webhook_timeout_s: float = Field(10, gt=0)
    webhook_backoff_s: float = Field(1, gt=0)
    webhook_concurrency: int = Field(4, ge=1, le=64)
    # Prometheus /metrics of every worker process (plexzoom.worker.metrics), served by a process
    # of its own on this port when it is set; the host is loopback unless changed.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    # What this worker does (README, "Running the services apart"): "all" (conversions and the
    # passes: reconciler, inbox scanner, SQS consumer, webhook sender), "convert" (conversions
    # only: workers that scale to zero), "maintain" (the passes only; consumes no queue).
    worker_role: Literal["all", "convert", "maintain"] = "all"

    @property
    def runs_passes(self) -> bool:
        """True when this worker runs the reconciler, scanner, SQS consumer and webhooks."""
        return self.worker_role in ("all", "maintain")

    def convert_options(self) -> ConvertOptions:
        """Conversion options for core."""
        return ConvertOptions(
            pyramid=PyramidOptions(
                tile_size=self.tile_size, overlap=self.tile_overlap, quality=self.jpeg_quality
            ),
            scratch_dir=self.scratch_dir,
            max_attempts=self.max_attempts,
            channels_per_pass=self.channels_per_pass,
            read=self.read_options(),
            lease_s=self.job_lease_s,
            child=ChildLimits(memory_mb=self.convert_memory_mb, timeout_s=self.convert_timeout_s),
            child_setup=functools.partial(
                prepare_decoding_process, self.malloc_arenas, s3=self.uses_s3
            ),
            spare_child=self.convert_spare_child,
            show_slide_labels=self.show_slide_labels,
        )

    @model_validator(mode="after")
    def _watches_readable(self) -> "WorkerSettings":
        """Watches are S3 prefixes of other buckets than plexzoom's own (which it writes)."""
        for url in self.watch:
            bucket, prefix = _split_watch(url)
            if not self.s3_bucket:
                raise ValueError("PLEXZOOM_WATCH needs S3 storage (PLEXZOOM_S3_BUCKET).")
            if bucket == self.s3_bucket or (prefix and not prefix.endswith("/")):
                raise ValueError(
                    f"PLEXZOOM_WATCH: {url!r} must be s3://bucket/prefix/ of a bucket other "
                    "than PLEXZOOM_S3_BUCKET (plexzoom never writes a watched bucket)."
                )
        return self

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_urls_http(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        """Each URL is http:// or https:// with a host (never echoed: it may carry a token)."""
        for number, url in enumerate(urls, 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"PLEXZOOM_WEBHOOK_URLS: entry {number} is not an http:// or https:// URL."
                )
        return urls

    @model_validator(mode="after")
    def _webhook_secret_usable(self) -> "WorkerSettings":
        """URLs need a secret; a secret is "whsec_" and base64 (it is never echoed)."""
        secret = self.webhook_secret.get_secret_value()
        if self.webhook_urls and not secret:
            raise ValueError(
                "PLEXZOOM_WEBHOOK_SECRET is required when PLEXZOOM_WEBHOOK_URLS is set: "
                "'whsec_' and base64, e.g. \"whsec_$(openssl rand -base64 32)\"."
            )
        if secret and not _whsec_key(secret):
            raise ValueError(
                "PLEXZOOM_WEBHOOK_SECRET must be 'whsec_' followed by base64 "
                '(the Standard Webhooks form), e.g. "whsec_$(openssl rand -base64 32)".'
            )
        return self

    def webhook_options(self) -> WebhookOptions | None:
        """The webhook sender's options; None when no URL is set."""
        if not self.webhook_urls:
            return None
        return WebhookOptions(
            urls=self.webhook_urls,
            secret=self.webhook_secret.get_secret_value(),
            retry_s=self.webhook_retry_s,
            timeout_s=self.webhook_timeout_s,
            backoff_s=self.webhook_backoff_s,
            concurrency=self.webhook_concurrency,
        )

    def watches(self) -> list[Inbox]:
        """The watched sources: read, copied from, never moved or written."""
        return [
            Inbox(prefix=prefix, bucket=bucket, grace_s=self.queued_grace_s, moves=False,
                  since=self.watch_since)
            for bucket, prefix in map(_split_watch, self.watch)
        ]  # fmt: skip

    def inbox(self) -> Inbox:
        """The inbox this worker scans."""
        return Inbox(
            prefix=self.inbox_prefix,
            bucket=self.s3_bucket or None,
            settle_s=0 if self.s3_bucket else self.inbox_settle_s,  # S3 objects appear whole
            grace_s=self.queued_grace_s,
        )

    def read_options(self) -> ReadOptions:
        """The header limits every reader checks."""
        return ReadOptions(
            max_width=self.max_image_width,
            max_height=self.max_image_height,
            max_pixels=self.max_image_pixels,
            max_channels=self.max_channels,
            max_bytes_per_pixel=self.max_bytes_per_pixel,
            max_in_memory_bytes=self.max_in_memory_bytes,
        )

    @property
    def job_time_limit_ms(self) -> int:
        """Dramatiq's own time limit: a margin above the child's, which ends the job first."""
        return int((self.convert_timeout_s + 300) * 1000)


def _split_watch(url: str) -> tuple[str, str]:
    """Bucket and prefix of "s3://bucket/prefix/"; ValueError for anything else."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise ValueError(f"PLEXZOOM_WATCH: {url!r} is not an s3://bucket/prefix/ URL.")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix


def _whsec_key(secret: str) -> bytes:
    """The key in "whsec_<base64>" (empty when the secret is not of that form)."""
    if not secret.startswith("whsec_"):
        return b""
    body = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return b""
