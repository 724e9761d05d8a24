"""Access control over ASGI: API keys on /v1, tile tokens, public images, CORS, the access log."""

import hashlib
import logging
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from plexzoom.api.config import ApiSettings
from plexzoom.core.access import TokenSigner
from plexzoom.core.accesslog import AccessFormatter, BatchedHandler
from plexzoom.core.errors import Forbidden
from plexzoom.core.storage import Storage
from plexzoom.settings import build_access
from tests.api.conftest import Api, MakeApi
from tests.conftest import quadrant_bytes
from tests.tiles.test_tiles import Pyramid, convert_into

pytestmark = pytest.mark.anyio
KEY, OTHER_KEY = "key-one-7c1d", "key-two-93ab"
AUTH = {"Authorization": f"Bearer {KEY}"}
A_ID, GEN = "01jaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaa"


@pytest.fixture
async def guarded(make_api: MakeApi, local_storage: Storage) -> Api:
    """The app with two API keys (tile tokens live 60 s)."""
    return await make_api(local_storage, api_keys=f"{KEY}, {OTHER_KEY}", token_ttl_s=60)


@pytest.fixture
def two(guarded: Api, tmp_path: Path) -> tuple[Pyramid, Pyramid]:
    """Two converted images in the guarded app's storage."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return (
        convert_into(guarded.storage, tmp_path / "a", 300, 200),
        convert_into(guarded.storage, tmp_path / "b", 300, 200),
    )


def tile_path(url: str) -> str:
    """The path and query of a link (the client's base URL is the test server)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


async def test_without_keys_the_api_is_open_and_links_carry_no_token(
    api: Api, tmp_path: Path
) -> None:
    pyramid = convert_into(api.storage, tmp_path, 300, 200)
    status = await api.client.get(f"/v1/images/{pyramid.manifest.id}")
    assert status.status_code == 200
    links = status.json()["links"]
    assert links["token"] is None and "?" not in links["dzi"] and "?" not in links["thumbnail"]
    tile = await api.client.get(tile_path(links["thumbnail"]))
    assert tile.status_code == 200
    assert tile.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/images"),
        ("GET", "/v1/images/01jaaaaaaaaaaaaaaaaaaaaaaa"),
        ("POST", "/v1/images"),
        ("DELETE", "/v1/images/01jaaaaaaaaaaaaaaaaaaaaaaa"),
        ("POST", "/v1/images/01jaaaaaaaaaaaaaaaaaaaaaaa/reconvert"),
        ("GET", "/v1/images/01jaaaaaaaaaaaaaaaaaaaaaaa/render"),
        ("PUT", "/v1/images/01jaaaaaaaaaaaaaaaaaaaaaaa/render"),
        ("PUT", "/v1/images/01jaaaaaaaaaaaaaaaaaaaaaaa/public"),
        ("GET", "/v1/formats"),
    ],
)
async def test_every_v1_call_needs_a_key(guarded: Api, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        answer = await guarded.client.request(method, path, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "key" in answer.json()["detail"]
    assert not guarded.enqueue.ids


async def test_a_key_opens_the_api_and_health_and_docs_stay_open(guarded: Api) -> None:
    for key in (KEY, OTHER_KEY):
        listing = await guarded.client.get("/v1/images", headers={"Authorization": f"Bearer {key}"})
        assert listing.status_code == 200
    upload = await guarded.client.post(
        "/v1/images",
        files={"file": ("q.png", quadrant_bytes())},
        headers=AUTH,
    )
    assert upload.status_code == 202, upload.text
    assert (await guarded.client.get("/healthz")).status_code == 200
    assert (await guarded.client.get("/openapi.json")).status_code == 200


async def test_links_of_a_private_image_carry_a_token_that_opens_its_tiles(
    guarded: Api, two: tuple[Pyramid, Pyramid]
) -> None:
    image = two[0].manifest
    status = (await guarded.client.get(f"/v1/images/{image.id}", headers=AUTH)).json()
    links = status["links"]
    assert status["public"] is False
    assert 58 <= links["token_expires_in"] <= 60
    for url in (links["dzi"], links["thumbnail"]):
        assert token_of(url) == links["token"]
        answer = await guarded.client.get(tile_path(url))
        assert answer.status_code == 200, url
        max_age = int(answer.headers["cache-control"].removeprefix("private, max-age="))
        assert 55 <= max_age <= 60, answer.headers["cache-control"]
        bare = await guarded.client.get(urlsplit(url).path)
        assert bare.status_code == 401
        assert "cache-control" not in bare.headers
    # An API key opens tiles too (for curl and scripts), cached privately for a token's life.
    with_key = await guarded.client.get(urlsplit(links["thumbnail"]).path, headers=AUTH)
    assert with_key.status_code == 200
    assert with_key.headers["cache-control"] == "private, max-age=60"


async def test_a_token_for_one_image_is_refused_on_another(
    guarded: Api, two: tuple[Pyramid, Pyramid]
) -> None:
    first, second = (p.manifest for p in two)
    token = (await guarded.client.get(f"/v1/images/{first.id}", headers=AUTH)).json()["links"][
        "token"
    ]
    other = (await guarded.client.get(f"/v1/images/{second.id}", headers=AUTH)).json()["links"]
    wrong = urlsplit(other["thumbnail"]).path + f"?t={token}"
    answer = await guarded.client.get(wrong)
    assert answer.status_code == 403
    descriptor = urlsplit(other["dzi"]).path + f"?t={token}"
    assert (await guarded.client.get(descriptor)).status_code == 403
    doubled = tile_path(other["thumbnail"]) + f"&t={token}"
    assert (await guarded.client.get(doubled)).status_code == 403


async def test_an_expired_token_is_401(guarded: Api, two: tuple[Pyramid, Pyramid]) -> None:
    image = two[0].manifest
    signer: TokenSigner = guarded.app.api.state.access.signer
    old = signer.issue(image.id, image.generation, now=time.time() - 61).value
    answer = await guarded.client.get(f"{two[0].base}.dzi?t={old}")
    assert answer.status_code == 401
    assert "expired" in answer.text


async def test_a_public_image_needs_no_token_and_is_cached_by_anyone(
    guarded: Api, two: tuple[Pyramid, Pyramid]
) -> None:
    image = two[0].manifest
    made = await guarded.client.put(
        f"/v1/images/{image.id}/public", json={"public": True}, headers=AUTH
    )
    assert made.status_code == 200, made.text
    assert made.json()["public"] is True
    links = made.json()["links"]
    assert links["token"] is None and "?" not in links["thumbnail"]
    tile = await guarded.client.get(links["thumbnail"])
    assert tile.status_code == 200
    assert tile.headers["cache-control"] == "public, max-age=31536000, immutable"
    # The other image stays private; making this one private again takes its tokens back.
    assert (await guarded.client.get(f"{two[1].base}.dzi")).status_code == 401
    again = await guarded.client.put(
        f"/v1/images/{image.id}/public", json={"public": False}, headers=AUTH
    )
    assert again.json()["links"]["token"]
    assert (await guarded.client.get(links["thumbnail"])).status_code == 401
    bad = await guarded.client.put(
        f"/v1/images/{image.id}/public", json={"public": "maybe"}, headers=AUTH
    )
    assert bad.status_code == 422


async def test_presigned_urls_live_no_longer_than_a_token(
    make_api: MakeApi, mock_s3_storage: Storage, tmp_path: Path
) -> None:
    app = await make_api(
        mock_s3_storage, api_keys=KEY, token_ttl_s=90, tile_mode="presigned", presign_expires_s=3600
    )
    image = convert_into(mock_s3_storage, tmp_path, 300, 200).manifest
    links = (await app.client.get(f"/v1/images/{image.id}", headers=AUTH)).json()["links"]
    query = parse_qs(urlsplit(links["pyramid"]["archive"]).query)
    if "X-Amz-Expires" in query:  # signature v4: a lifetime
        assert query["X-Amz-Expires"] == ["90"]
    else:  # signature v2: an expiry time
        assert 0 < int(query["Expires"][0]) - time.time() <= 90


async def test_cors_is_closed_by_default(guarded: Api) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    answer = await guarded.client.get("/healthz", headers=origin)
    assert not any(h.startswith("access-control-") for h in answer.headers)
    preflight = await guarded.client.options(
        "/v1/images",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_allows_only_the_configured_origins(
    make_api: MakeApi, local_storage: Storage
) -> None:
    app = await make_api(local_storage, api_keys=KEY, cors_origins=["https://lab.example"])
    preflight = await app.client.options(
        "/v1/images",
        headers={
            "Origin": "https://lab.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://lab.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    listing = await app.client.get("/v1/images", headers={"Origin": "https://lab.example", **AUTH})
    assert listing.headers["access-control-allow-origin"] == "https://lab.example"
    evil = {"Origin": "https://evil.example", **AUTH}
    stranger = await app.client.get("/v1/images", headers=evil)
    assert "access-control-allow-origin" not in stranger.headers


async def test_one_access_log_line_per_request_names_key_and_image_but_never_secrets(
    guarded: Api, two: tuple[Pyramid, Pyramid], caplog: pytest.LogCaptureFixture
) -> None:
    image = two[0].manifest
    caplog.set_level(logging.INFO, logger="plexzoom.access")
    status = (await guarded.client.get(f"/v1/images/{image.id}", headers=AUTH)).json()
    await guarded.client.get(tile_path(status["links"]["thumbnail"]))
    await guarded.client.get("/v1/images", headers={"Authorization": "Bearer wrong"})
    lines = [r.getMessage() for r in caplog.records if r.name == "plexzoom.access"]
    assert len(lines) == 3, lines
    fingerprint = hashlib.sha256(KEY.encode()).hexdigest()[:8]
    expected = f"GET '/v1/images/{image.id}' 200 key={fingerprint} image={image.id}"
    assert lines[0].startswith(expected)
    assert f" 200 key=- image={image.id}" in lines[1] and "/tiles/" in lines[1]
    assert " 401 key=" in lines[2] and "image=-" in lines[2]
    everything = "\n".join(lines)
    assert KEY not in everything and "wrong" not in everything
    assert status["links"]["token"] not in everything and "?" not in everything


async def test_tiles_check_their_own_token_in_a_real_client_flow(guarded: Api) -> None:
    """The whole round: upload with the key, status, then tiles only via the returned links."""
    upload = await guarded.client.post(
        "/v1/images", files={"file": ("q.png", quadrant_bytes())}, headers=AUTH
    )
    body = upload.json()
    assert body["links"]["token"] and token_of(body["links"]["dzi"]) == body["links"]["token"]
    # Not converted yet: even a valid token shows nothing (no committed pyramid).
    pending = await guarded.client.get(tile_path(body["links"]["dzi"]))
    assert pending.status_code == 404


def test_the_access_log_format_puts_a_utc_time_first() -> None:
    line = ("GET '/x' 200",)
    record = logging.LogRecord("plexzoom.access", logging.INFO, "", 0, "%s", line, None)
    record.created = 1795622400.0421  # 2026-11-25T16:00:00.042Z
    formatter = AccessFormatter()
    assert formatter.format(record) == "2026-11-25T16:00:00.042Z access GET '/x' 200"
    record.created += 61
    assert formatter.format(record).startswith("2026-11-25T16:01:01.042Z access ")


def test_web_processes_agree_on_the_token_secret(tmp_path: Path) -> None:
    """Two processes (and a restart) that build their policy from one data folder share it;
    a configured secret wins, and a short one is refused at start."""
    settings = ApiSettings(data_dir=tmp_path, api_keys=KEY)
    first, second = build_access(settings), build_access(settings)
    assert first.signer is not None and second.signer is not None
    token = first.signer.issue(A_ID, GEN)
    assert second.signer.check(token.value, A_ID, GEN) == token.expires
    configured = build_access(ApiSettings(data_dir=tmp_path, api_keys=KEY, token_secret="s" * 32))
    assert configured.signer is not None
    with pytest.raises(Forbidden):
        configured.signer.check(token.value, A_ID, GEN)
    with pytest.raises(ValidationError, match="at least 16"):
        ApiSettings(data_dir=tmp_path, api_keys=KEY, token_secret="short")
    assert build_access(ApiSettings(data_dir=tmp_path / "open")).is_open
    assert not (tmp_path / "open").exists(), "no secret is made without keys"


async def test_visibility_waits_until_the_conversion_is_done(guarded: Api) -> None:
    """The worker rewrites the manifest while converting; a change then would be lost: 409."""
    upload = await guarded.client.post(
        "/v1/images", files={"file": ("q.png", quadrant_bytes())}, headers=AUTH
    )
    image_id = upload.json()["id"]
    answer = await guarded.client.put(
        f"/v1/images/{image_id}/public", json={"public": True}, headers=AUTH
    )
    assert answer.status_code == 409
    assert "try again when it is done" in answer.json()["detail"]
    status = await guarded.client.get(f"/v1/images/{image_id}", headers=AUTH)
    assert status.json()["public"] is False


def test_the_access_log_is_written_in_batches(tmp_path: Path) -> None:
    """Lines wait (no write per request) until the interval passes or 64 KiB gather."""
    logger = logging.getLogger("plexzoom.test-batched")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with (tmp_path / "slow.log").open("wb") as slow, (tmp_path / "fast.log").open("wb") as fast:
        waiting = BatchedHandler(slow.fileno(), interval_s=3600)
        prompt = BatchedHandler(fast.fileno(), interval_s=0.05)
        for handler in (waiting, prompt):
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
        try:
            for n in range(3):
                logger.info("line %d", n)
            assert (tmp_path / "slow.log").read_bytes() == b""
            deadline = time.monotonic() + 5
            while (tmp_path / "fast.log").read_bytes() != b"line 0\nline 1\nline 2\n":
                assert time.monotonic() < deadline, "the background flush did not write"
                time.sleep(0.02)
            logger.info("%s", "x" * 70_000)
            assert (tmp_path / "slow.log").read_bytes().startswith(b"line 0\nline 1\nline 2\nxxx")
        finally:
            for handler in (waiting, prompt):
                logger.removeHandler(handler)
