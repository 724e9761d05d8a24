"""Settings shared by every service (each service's own Settings class extends this one)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from plexzoom.core.access import AccessPolicy, TokenSigner, load_or_create_secret
from plexzoom.core.inbox import CLAIMS
from plexzoom.core.keys import IMAGES
from plexzoom.core.storage import LocalStorage, S3Config, S3Storage, Storage


class CommonSettings(BaseSettings):
    """Storage and broker: PLEXZOOM_* environment variables."""

    # A refused setting is named, never echoed: keys and secrets are settings too.
    model_config = SettingsConfigDict(
        env_prefix="PLEXZOOM_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Path("./data")
    s3_endpoint_url: str | None = None
    # Where browsers reach the S3 server when the endpoint above is an internal name (presigned
    # mode signs its URLs for this one).
    s3_public_endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+/?$")
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_max_attempts: int = 8  # botocore's retries of timeouts, resets and 503 SlowDown
    s3_connect_timeout_s: float = 5
    s3_read_timeout_s: float = 30
    redis_url: str | None = None
    # Image events kept in Redis for streams that resume (Last-Event-ID) and for webhooks.
    events_history: int = Field(default=10_000, ge=100, le=10_000_000)
    # Comma-separated; when set, every /v1 call needs `Authorization: Bearer <one of them>`.
    api_keys: SecretStr = SecretStr("")
    # The inbox (README, "Storage-triggered processing"): a prefix of the bucket, or the
    # folder of that name under the data folder.
    inbox_prefix: str = "inbox/"
    # Whole-slide scans: store and serve their label and macro images and show their file
    # names (README, "Private by default"). Off: a slide's label often shows a patient's name.
    show_slide_labels: bool = False
    # A resumable upload nobody touched this long is aborted by the reconciler (its parts go).
    resumable_upload_ttl_s: int = Field(7 * 24 * 3600, ge=600)
    # Log lines as text, or as one JSON object per line (plexzoom.core.logs).
    log_format: Literal["text", "json"] = "text"

    @field_validator("inbox_prefix")
    @classmethod
    def _inbox_apart(cls, prefix: str) -> str:
        """The inbox is a folder of its own: never where plexzoom writes (its writes would be
        taken as new files)."""
        if not prefix.endswith("/") or prefix.startswith(("/", IMAGES, CLAIMS)) or prefix == "/":
            raise ValueError(
                "PLEXZOOM_INBOX_PREFIX must be a folder such as 'inbox/' (ending in '/'), "
                f"outside '{IMAGES}' and '{CLAIMS}'."
            )
        return prefix

    @property
    def api_key_list(self) -> tuple[str, ...]:
        """The configured API keys (none: the API is open, and only served on loopback)."""
        return tuple(k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip())

    @property
    def uses_s3(self) -> bool:
        """True when storage is an S3 bucket rather than the local folder."""
        return bool(self.s3_bucket)


def build_storage(
    settings: CommonSettings, bucket: str | None = None, agent: str = "plexzoom"
) -> Storage:
    """The storage backend the settings name (built at start-up, never at import); ``bucket``:
    another bucket of the same S3 server (a watched source); ``agent``: the service, named in
    every S3 request's User-Agent."""
    if settings.s3_bucket:
        config = S3Config(
            bucket=bucket or settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            max_attempts=settings.s3_max_attempts,
            connect_timeout_s=settings.s3_connect_timeout_s,
            read_timeout_s=settings.s3_read_timeout_s,
            agent=agent,
            public_endpoint_url=settings.s3_public_endpoint_url,
        )
        return S3Storage(config)
    return LocalStorage(settings.data_dir)


def long_enough(value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
    """A secret setting of at least 16 characters (named, never echoed, when refused)."""
    if value is not None and len(value.get_secret_value()) < 16:
        raise ValueError(
            f"PLEXZOOM_{str(info.field_name).upper()} must be at least 16 characters long"
        )
    return value


class WebSettings(CommonSettings):
    """What every web service reads besides storage and Redis: tile tokens, CORS, the access
    log, the tile cache (the api's and the tile service's settings extend it)."""

    # Tile tokens (only when API keys are set): lifetime, and the HMAC secret shared by every
    # web process; unset, it is kept in {data_dir}/secrets/token-secret (created once, 0600).
    token_ttl_s: int = Field(3600, ge=1, le=7 * 24 * 3600)
    token_secret: SecretStr | None = None
    # Origins that may call the API and tiles from other sites; empty: no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    # One log line per request (plexzoom.access logger).
    access_log: bool = True
    # In-memory tile cache of each process that serves tiles.
    tile_cache_bytes: int = 256 * 1024**2

    _token_secret_long = field_validator("token_secret")(long_enough)


def build_access(settings: WebSettings) -> AccessPolicy:
    """The access policy of the settings (reads or creates the token secret when keys are set)."""
    keys = settings.api_key_list
    if not keys:
        return AccessPolicy()
    return AccessPolicy(keys, TokenSigner(token_secret(settings), settings.token_ttl_s))


def token_secret(settings: WebSettings) -> bytes:
    """The secret that signs tile tokens and local part URLs: PLEXZOOM_TOKEN_SECRET, else the
    one kept in {data_dir}/secrets/token-secret (created once)."""
    if settings.token_secret is not None:
        return settings.token_secret.get_secret_value().encode()
    return load_or_create_secret(settings.data_dir / "secrets" / "token-secret")
