"""API settings."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from plexzoom.settings import CommonSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


class ApiSettings(CommonSettings):
    """PLEXZOOM_* variables read by the API, tile service and viewer host."""

    max_upload_bytes: int = 100 * 1024**3
    # proxy: tiles through /tiles; presigned: the browser reads the pyramid from S3 with Range.
    tile_mode: Literal["proxy", "presigned"] = "proxy"
    presign_expires_s: int = 3600
    # Origins allowed to read the bucket in presigned mode (the viewer's origin).
    s3_cors_origins: tuple[str, ...] = ("http://127.0.0.1:8000", "http://localhost:8000")
    tile_cache_bytes: int = 256 * 1024**2
    # Where browsers reach the tile service when it has an origin of its own
    # ("https://tiles.lab.example"); unset: /tiles/ on the api's origin (make run, or a proxy
    # that sends /tiles/ to the tile service).
    tiles_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+/?$")
    viewer_dir: Path = REPO_ROOT / "viewer"
    # Tile tokens (only when API keys are set): lifetime, and the HMAC secret shared by every
    # web process; unset, it is kept in {data_dir}/secrets/token-secret (created once, 0600).
    token_ttl_s: int = Field(3600, ge=1, le=7 * 24 * 3600)
    token_secret: SecretStr | None = None
    # Origins that may call the API and tiles from other sites; empty: no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    # One log line per request (plexzoom.access logger).
    access_log: bool = True
    # S3 event notifications (POST /hooks/s3): the route exists only while a token is set.
    s3_hook_token: SecretStr | None = None

    @field_validator("token_secret", "s3_hook_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            name = f"PLEXZOOM_{str(info.field_name).upper()}"
            raise ValueError(f"{name} must be at least 16 characters long")
        return value
