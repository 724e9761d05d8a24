"""The upload page's resumable uploads on stacks of their own: S3 (SeaweedFS: parts go straight
to the bucket, cross-origin) and a server with API keys. Each stack has a private Redis, so no
other module's stack can take its jobs."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Dialog

from tests.servers import RedisServer, SeaweedServer, Stack, free_port
from tests.viewer.part_traffic import PART, is_part_url, reload_mid_upload, tiff, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_reload_mid_upload_on_seaweedfs(
    context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """The same on S3 (SeaweedFS): parts go straight to the bucket, cross-origin, and the ETags
    its CORS rules expose complete the upload."""
    seaweed = SeaweedServer(tmp_path / "seaweedfs")
    redis = RedisServer()
    port = free_port()
    env = {
        "AWS_ACCESS_KEY_ID": seaweed.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": seaweed.SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PLEXZOOM_REDIS_URL": redis.url,
        "PLEXZOOM_S3_ENDPOINT_URL": seaweed.endpoint,
        "PLEXZOOM_S3_BUCKET": "resumable",
        "PLEXZOOM_S3_CORS_ORIGINS": f'["http://127.0.0.1:{port}"]',
        "PLEXZOOM_UPLOAD_PART_BYTES": str(PART),
    }
    try:
        s3_stack = Stack(tmp_path / "data", env, tmp_path / "stack.log", port=port)
        try:
            reload_mid_upload(s3_stack, context, tmp_path, seaweed.endpoint)
        finally:
            s3_stack.stop()
    finally:
        redis.kill()
        seaweed.stop()


def test_with_api_keys_the_key_goes_to_the_api_and_never_to_part_urls(
    context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """On a server with API keys the page asks once; /v1/uploads calls carry the key, part PUTs
    (presigned URLs) do not."""
    key = "resumable-browser-key-7f3a"
    redis = RedisServer()
    env = {
        "PLEXZOOM_REDIS_URL": redis.url,
        "PLEXZOOM_API_KEYS": key,
        "PLEXZOOM_UPLOAD_PART_BYTES": str(PART),
    }
    try:
        keyed = Stack(tmp_path / "data", env, tmp_path / "stack.log")
        try:
            ctx, blocked = context
            page = ctx.new_page()
            asked: list[str] = []

            def answer(dialog: Dialog) -> None:
                asked.append(dialog.message)
                dialog.accept(key)

            page.on("dialog", answer)
            sent: list[tuple[str, str, str | None]] = []
            page.on(
                "request",
                lambda r: sent.append((r.method, r.url, r.headers.get("authorization"))),
            )
            page.goto(keyed.url)
            source = tiff(tmp_path, "keyed.tif", 2400, 1800)
            page.set_input_files("[data-testid=file-input]", str(source))
            wait_ready(page)
            assert len(asked) == 1
            api = [(m, a) for m, u, a in sent if urlsplit(u).path.startswith("/v1/uploads")]
            assert {m for m, _ in api} >= {"POST", "GET"}
            assert all(a == f"Bearer {key}" for _, a in api), api
            parts = [a for m, u, a in sent if m == "PUT" and is_part_url(u)]
            assert len(parts) == 3 and parts == [None, None, None]
            assert blocked == []
        finally:
            keyed.stop()
    finally:
        redis.kill()
