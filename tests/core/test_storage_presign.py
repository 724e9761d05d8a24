"""Presigned URLs for browsers that reach the S3 server by another name than the services do
(PLEXZOOM_S3_PUBLIC_ENDPOINT_URL): signed for that host, against a server that checks
signatures (SeaweedFS with credentials)."""

import dataclasses
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from plexzoom.core.storage import S3Storage
from plexzoom.settings import CommonSettings, build_storage


def test_presigned_urls_are_signed_for_the_public_endpoint(seaweed_storage: S3Storage) -> None:
    seaweed_storage.put_bytes("images/x/original", b"pixels of a slide")
    inside = urlsplit(seaweed_storage.config.endpoint_url or "")
    public = f"http://localhost:{inside.port}"  # the same server under another host name
    config = dataclasses.replace(seaweed_storage.config, public_endpoint_url=public)
    url = S3Storage(config).presign_get("images/x/original", 60)
    assert url is not None and url.startswith(f"{public}/")
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.content == b"pixels of a slide"
    # The check can fail: the same URL sent to the inside name does not match its signature.
    moved = urlunsplit(urlsplit(url)._replace(netloc=inside.netloc))
    assert httpx.get(moved).status_code == 403
    # Without the setting, URLs name the services' endpoint, as before.
    plain = seaweed_storage.presign_get("images/x/original", 60)
    assert plain is not None and plain.startswith(seaweed_storage.config.endpoint_url or "-")


@pytest.mark.parametrize("url", ["s3.example", "http://s3.example/path", "ftp://s3.example"])
def test_a_public_endpoint_must_be_an_origin(url: str) -> None:
    with pytest.raises(ValueError, match="s3_public_endpoint_url"):
        CommonSettings(s3_public_endpoint_url=url)


def test_the_setting_reaches_the_storage() -> None:
    settings = CommonSettings(
        s3_bucket="b", s3_endpoint_url="http://s3:8333", s3_public_endpoint_url="https://s3.lab"
    )
    storage = build_storage(settings)
    assert isinstance(storage, S3Storage)
    assert storage.config.public_endpoint_url == "https://s3.lab"
