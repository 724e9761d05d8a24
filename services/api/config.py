"""API settings."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from plexzoom.settings import WebSettings, long_enough

REPO_ROOT = Path(__file__).resolve().parents[2]


class ApiSettings(WebSettings):
    """PLEXZOOM_* variables read by the api (and the viewer it serves)."""

    max_upload_bytes: int = 100 * 1024**3
    # Resumable uploads (POST /v1/uploads): the part size they start from (it grows with the
    # file so no upload needs more than 10,000 parts), and how long a part URL stays valid.
    upload_part_bytes: int = Field(16 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    upload_part_url_ttl_s: int = Field(3600, ge=60, le=7 * 24 * 3600)
    # proxy: tiles through /tiles; presigned: the browser reads the pyramid from S3 with Range.
    tile_mode: Literal["proxy", "presigned"] = "proxy"
    presign_expires_s: int = 3600
    # Origins allowed to read the bucket in presigned mode (the viewer's origin).
    s3_cors_origins: tuple[str, ...] = ("http://127.0.0.1:8000", "http://localhost:8000")
    # Where browsers reach the tile service when it has an origin of its own
    # ("https://tiles.lab.example"); unset: /tiles/ on the api's origin (make run, or a proxy
    # that sends /tiles/ to the tile service).
    tiles_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+/?$")
    viewer_dir: Path = REPO_ROOT / "viewer"
    # S3 event notifications (POST /hooks/s3): the route exists only while a token is set.
    s3_hook_token: SecretStr | None = None

    _hook_token_long = field_validator("s3_hook_token")(long_enough)
