"""The tile service over ASGI: standard DZI URLs answered from zip pyramids by ranged reads."""

import http.client
import threading
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.errors import StorageError
from plexzoom.core.formats import PNG
from plexzoom.core.ids import new_generation, new_image_id
from plexzoom.core.images import start_image, submit_image
from plexzoom.core.manifest import Manifest, write_manifest
from plexzoom.core.pyramid import TileIndex
from plexzoom.core.storage import LocalStorage, S3Config, S3Storage, Storage
from plexzoom.tiles.app import TileService
from tests.conftest import encode, noise_image

pytestmark = pytest.mark.anyio

DZI_NS = "{http://schemas.microsoft.com/deepzoom/2008}"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass
class Pyramid:
    """A converted image in storage, with its archive's members for comparison."""

    storage: Storage
    manifest: Manifest
    index: TileIndex
    members: dict[str, bytes]

    @property
    def base(self) -> str:
        return f"/tiles/{self.manifest.id}/{self.manifest.generation}/image"

    def tile_url(self, level: int, col: int, row: int, ext: str = "jpeg") -> str:
        return f"{self.base}_files/{level}/{col}_{row}.{ext}"

    def all_tiles(self) -> Iterator[tuple[int, int, int]]:
        for level, entry in enumerate(self.index.levels):
            for row in range(entry["rows"]):
                for col in range(entry["cols"]):
                    yield level, col, row


def convert_into(storage: Storage, scratch: Path, width: int = 700, height: int = 500) -> Pyramid:
    """Store a noise PNG as an original and convert it (every tile differs from the others)."""
    data = encode(noise_image(width, height), "png")
    manifest = start_image(storage, "noise.png")
    storage.put_bytes(keys.original_key(manifest.id), data)
    submit_image(storage, manifest, PNG, len(data), lambda _id: None)
    manifest = convert_image(storage, manifest.id, ConvertOptions(scratch_dir=scratch))
    assert manifest.status == "ready"
    gen = manifest.generation
    index = TileIndex.from_json(storage.get_bytes(keys.index_key(manifest.id, gen, "image")))
    scratch_zip = scratch / "copy.zip"
    storage.download_file(keys.pyramid_key(manifest.id, gen, "image"), scratch_zip)
    with zipfile.ZipFile(scratch_zip) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    return Pyramid(storage, manifest, index, members)


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory: pytest.TempPathFactory) -> Pyramid:
    """One converted image in local storage, shared by the module's read-only tests."""
    root = tmp_path_factory.mktemp("tiles")
    return convert_into(LocalStorage(root / "data"), root)


@pytest.fixture
async def client(pyramid: Pyramid) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh tile service (empty caches) over the pyramid's storage."""
    service = TileService(pyramid.storage)
    transport = httpx.ASGITransport(app=service, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None):
    """Call an ASGI app by hand; returns (status, headers, body) exactly as sent."""
    scope = {"type": "http", "method": method, "path": path, "headers": headers or []}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


async def test_the_dzi_descriptor(client: httpx.AsyncClient, pyramid: Pyramid) -> None:
    """{name}.dzi is the Deep Zoom XML of the committed pyramid, cached like a tile."""
    answer = await client.get(f"{pyramid.base}.dzi")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/xml"
    assert answer.headers["cache-control"] == IMMUTABLE
    etag = answer.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and pyramid.manifest.generation in etag
    root = ET.fromstring(answer.content)
    assert root.tag == f"{DZI_NS}Image"
    assert root.attrib == {"Format": "jpeg", "Overlap": "1", "TileSize": "254"}
    size = root.find(f"{DZI_NS}Size")
    assert size is not None
    assert size.attrib == {"Width": "700", "Height": "500"}
    assert ET.fromstring(pyramid.members["image.dzi"]).attrib == root.attrib


async def test_every_tile_is_the_archive_member(
    client: httpx.AsyncClient, pyramid: Pyramid
) -> None:
    """Each tile URL answers exactly the bytes of the matching zip member."""
    count = 0
    for level, col, row in pyramid.all_tiles():
        answer = await client.get(pyramid.tile_url(level, col, row))
        assert answer.status_code == 200, (level, col, row)
        assert answer.content == pyramid.members[f"image_files/{level}/{col}_{row}.jpeg"]
        assert answer.headers["content-type"] == "image/jpeg"
        assert answer.headers["content-length"] == str(len(answer.content))
        count += 1
    assert count == sum(1 for name in pyramid.members if name.endswith(".jpeg"))


async def test_tiles_have_strong_etags_and_long_caching(
    client: httpx.AsyncClient, pyramid: Pyramid
) -> None:
    """Every tile has its own strong ETag and is cacheable for a year, immutably."""
    etags = set()
    for level, col, row in pyramid.all_tiles():
        answer = await client.get(pyramid.tile_url(level, col, row))
        etag = answer.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
        assert pyramid.manifest.generation in etag
        assert answer.headers["cache-control"] == IMMUTABLE
        etags.add(etag)
    assert len(etags) == len(list(pyramid.all_tiles()))


async def test_if_none_match_gives_304(client: httpx.AsyncClient, pyramid: Pyramid) -> None:
    """A matching If-None-Match (alone or in a list) is 304 with no body; others get the tile."""
    url = pyramid.tile_url(pyramid.index.max_level, 1, 1)
    first = await client.get(url)
    etag = first.headers["etag"]
    for header in (etag, f'"other", {etag}', f"W/{etag}"):
        again = await client.get(url, headers={"if-none-match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == IMMUTABLE
    other = pyramid.tile_url(pyramid.index.max_level, 0, 1)
    assert (await client.get(other, headers={"if-none-match": etag})).status_code == 200
    assert (await client.get(url, headers={"if-none-match": '"nope"'})).status_code == 200
    dzi = await client.get(f"{pyramid.base}.dzi")
    cached = await client.get(f"{pyramid.base}.dzi", headers={"if-none-match": dzi.headers["etag"]})
    assert cached.status_code == 304


async def test_head_answers_headers_without_a_body(pyramid: Pyramid) -> None:
    """HEAD gives the GET's status, type and length, and sends no body."""
    service = TileService(pyramid.storage)
    url = pyramid.tile_url(pyramid.index.max_level, 2, 1)
    get_status, get_headers, get_body = await call(service, "GET", url)
    status, headers, body = await call(service, "HEAD", url)
    assert (status, body) == (200, b"")
    assert get_status == 200 and len(get_body) > 0
    assert headers[b"content-length"] == str(len(get_body)).encode()
    assert headers[b"content-type"] == b"image/jpeg"
    assert headers[b"etag"] == get_headers[b"etag"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_405(
    client: httpx.AsyncClient, pyramid: Pyramid, method: str
) -> None:
    """Only GET and HEAD are allowed, and the answer says so."""
    answer = await client.request(method, pyramid.tile_url(0, 0, 0))
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"


def _not_found_paths(pyramid: Pyramid) -> list[str]:
    top = pyramid.index.max_level
    entry = pyramid.index.levels[top]
    image_id, gen = pyramid.manifest.id, pyramid.manifest.generation
    return [
        pyramid.tile_url(top + 1, 0, 0),
        pyramid.tile_url(99, 0, 0),
        pyramid.tile_url(top, entry["cols"], 0),
        pyramid.tile_url(top, 0, entry["rows"]),
        pyramid.tile_url(0, 1, 0),
        pyramid.tile_url(top, 0, 0, "png"),
        pyramid.tile_url(top, 0, 0, "webp"),
        pyramid.tile_url(top, 0, 0, "JPEG"),
        pyramid.tile_url(top, 0, 0, "gif"),
        pyramid.tile_url(top, 0, 0, "jpg"),
        f"{pyramid.base}_files/{top}/a_b.jpeg",
        f"{pyramid.base}_files/{top}/1.5_0.jpeg",
        f"{pyramid.base}_files/{top}/-1_0.jpeg",
        f"{pyramid.base}_files/x/0_0.jpeg",
        f"{pyramid.base}_files/{top}/0_0",
        f"{pyramid.base}_files/{top}/00000001_0.jpeg",
        f"{pyramid.base}_files/{top}/01_0.jpeg",  # one URL per tile: no leading zeros
        f"{pyramid.base}_files/{top}/0_00.jpeg",
        f"{pyramid.base}_files/0{top}/0_0.jpeg",
        f"{pyramid.base}.dzi\n",
        f"{pyramid.base}_files/{top}/0_0.jpeg\n",
        f"{pyramid.base}_files/{top}/\u0660_0.jpeg",  # ARABIC-INDIC DIGIT ZERO: not an integer here
        f"{pyramid.base}_files/\uff11/0_0.jpeg",  # FULLWIDTH DIGIT ONE
        f"/tiles/{new_image_id()}/{gen}/image.dzi",
        f"/tiles/{image_id}/{new_generation()}/image.dzi",
        f"/tiles/{image_id}/{new_generation()}/image_files/0/0_0.jpeg",
        f"/tiles/{image_id}/{gen}/thumb.dzi",
        f"/tiles/{image_id}/{gen}/image.xml",
        f"/tiles/{image_id}/{gen}/../{gen}/image.dzi",
        f"/tiles/{image_id.upper()}/{gen}/image.dzi",
        f"/tiles/{image_id}/image.dzi",
        f"/tiles/{image_id}",
        "/tiles/",
        "/tiles/" + "a" * 5000,
    ]


async def test_anything_outside_the_pyramid_is_404(pyramid: Pyramid) -> None:
    """Coordinates beyond the pyramid, other formats, non-integers and unknown ids are 404."""
    service = TileService(pyramid.storage)
    for path in _not_found_paths(pyramid):
        status, headers, _ = await call(service, "GET", path)
        assert status == 404, path
        assert headers[b"content-type"] == b"text/plain"
        assert b"cache-control" not in headers, path  # a 404 must not be cached for a year


class FlakyStorage:
    """Storage whose ranged reads fail until ``healthy`` is set."""

    def __init__(self, inner: Storage) -> None:
        self.inner, self.healthy = inner, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if not self.healthy:
            raise StorageError("Object storage did not answer while trying to read.")
        return self.inner.get_range(key, start, length)


async def test_storage_trouble_is_503_and_not_cached(pyramid: Pyramid) -> None:
    """A failed read is a 503 (try again), and the next request after recovery succeeds."""
    storage = FlakyStorage(pyramid.storage)
    service = TileService(storage)  # type: ignore[arg-type]
    url = pyramid.tile_url(pyramid.index.max_level, 0, 0)
    status, headers, _ = await call(service, "GET", url)
    assert status == 503
    assert b"cache-control" not in headers
    storage.healthy = True
    status, _, body = await call(service, "GET", url)
    assert status == 200
    assert body == pyramid.members[f"image_files/{pyramid.index.max_level}/0_0.jpeg"]


async def test_a_tiny_cache_still_serves_correct_tiles(pyramid: Pyramid) -> None:
    """With a cache smaller than most tiles, tiles are read afresh and still right."""
    service = TileService(pyramid.storage, cache_bytes=1000)
    for _ in range(2):
        for level, col, row in pyramid.all_tiles():
            status, _, body = await call(service, "GET", pyramid.tile_url(level, col, row))
            assert status == 200
            assert body == pyramid.members[f"image_files/{level}/{col}_{row}.jpeg"]
    assert service.tiles.size <= 1000


class CountingProxy:
    """An HTTP proxy on loopback in front of an S3 endpoint that records every request."""

    def __init__(self, upstream: str) -> None:
        self.requests: list[tuple[str, str, str | None]] = []
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.requests.append((self.command, self.path, self.headers.get("range")))
                upstream_conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                skip = {"connection", "keep-alive", "transfer-encoding", "content-length"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                upstream_conn.request(self.command, self.path, body=body, headers=headers)
                answer = upstream_conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in skip:
                        self.send_header(name, value)
                length_header = answer.getheader("content-length")
                sent_length = length_header if self.command == "HEAD" else None
                self.send_header("Content-Length", sent_length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream_conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def gets(self, key: str) -> list[str | None]:
        """The Range headers of GETs of ``key`` (None for whole-object reads)."""
        return [r for m, p, r in self.requests if m == "GET" and p.split("?")[0].endswith(key)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[CountingProxy]:
    """A counting proxy in front of the moto server."""
    running = CountingProxy(moto_endpoint)
    yield running
    running.close()


async def test_one_ranged_get_per_uncached_tile_and_one_index_read(
    s3_storage: S3Storage, proxy: CountingProxy, tmp_path: Path
) -> None:
    """Over S3: the index is read once, each new tile costs one ranged GET, cached ones none."""
    pyramid = convert_into(s3_storage, tmp_path, 1100, 700)
    through_proxy = S3Storage(
        S3Config(bucket=s3_storage.bucket, endpoint_url=proxy.url, region="us-east-1")
    )
    service = TileService(through_proxy, manifest_ttl_s=3600)  # manifest reads not counted here
    gen, image_id = pyramid.manifest.generation, pyramid.manifest.id
    index_key = keys.index_key(image_id, gen, "image")
    zip_key = keys.pyramid_key(image_id, gen, "image")

    status, _, _ = await call(service, "GET", f"{pyramid.base}.dzi")
    assert status == 200
    assert proxy.gets(index_key) == [None]

    tiles = list(pyramid.all_tiles())[-8:]
    for level, col, row in tiles:
        status, _, body = await call(service, "GET", pyramid.tile_url(level, col, row))
        assert status == 200
        assert body == pyramid.members[f"image_files/{level}/{col}_{row}.jpeg"]
    expected_ranges = []
    for level, col, row in tiles:
        offset, length = pyramid.index.tile_range(level, col, row) or (0, 0)
        expected_ranges.append(f"bytes={offset}-{offset + length - 1}")
    assert proxy.gets(zip_key) == expected_ranges

    before = len(proxy.requests)
    for level, col, row in tiles:
        status, headers, _ = await call(service, "GET", pyramid.tile_url(level, col, row))
        assert status == 200
        status, _, _ = await call(
            service,
            "GET",
            pyramid.tile_url(level, col, row),
            [(b"if-none-match", headers[b"etag"])],
        )
        assert status == 304
    await call(service, "GET", f"{pyramid.base}.dzi")
    assert proxy.requests[before:] == [], "cached tiles and the cached index cost no requests"
    assert proxy.gets(index_key) == [None]
    assert all(method == "GET" for method, _, _ in proxy.requests)


class SlowCountingStorage:
    """Passes reads through after a pause, counting ranged reads (so merged misses show)."""

    def __init__(self, inner: Storage) -> None:
        self.inner, self.ranged = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self.ranged += 1
        threading.Event().wait(0.2)
        return self.inner.get_range(key, start, length)


async def test_concurrent_misses_of_one_tile_share_one_read(pyramid: Pyramid) -> None:
    """Twenty clients asking for the same uncached tile at once cost one storage read."""
    import anyio

    slow = SlowCountingStorage(pyramid.storage)
    app = TileService(slow)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def fetch() -> None:
            answers.append(await client.get(pyramid.tile_url(pyramid.index.max_level, 0, 0)))

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(fetch)
    assert [a.status_code for a in answers] == [200] * 20
    assert len({a.content for a in answers}) == 1
    assert slow.ranged == 1


def test_local_reads_from_the_page_cache_do_not_wait(tmp_path: Path) -> None:
    """A just-written object is in the page cache: the non-blocking read returns it."""
    storage = LocalStorage(tmp_path)
    storage.put_bytes("images/x/blob", bytes(range(256)) * 64)
    assert storage.get_range_cached("images/x/blob", 100, 50) == (bytes(range(256)) * 64)[100:150]


async def test_only_the_pyramid_the_manifest_commits_is_served(
    tmp_path: Path,
) -> None:
    """A re-conversion builds under a new generation: until its commit the old pyramid is
    served and the new one is 404; after it, the old one is 404 even from the tile cache."""
    pyramid = convert_into(LocalStorage(tmp_path / "data"), tmp_path)
    service = TileService(pyramid.storage, manifest_ttl_s=0)
    url = pyramid.tile_url(pyramid.index.max_level, 0, 0)
    assert (await call(service, "GET", url))[0] == 200  # now in the tile cache
    newer = new_generation()
    new_url = url.replace(pyramid.manifest.generation, newer)
    # The new generation's archive is being written (copied here: same keys, other generation).
    old_prefix = keys.generation_prefix(pyramid.manifest.id, pyramid.manifest.generation)
    for key in pyramid.storage.list_keys(old_prefix):
        pyramid.storage.put_bytes(
            key.replace(pyramid.manifest.generation, newer), pyramid.storage.get_bytes(key)
        )
    manifest = pyramid.manifest.model_copy(deep=True)
    manifest.generation = newer
    for status in ("queued", "processing", "failed"):
        manifest.status = status  # type: ignore[assignment]
        write_manifest(pyramid.storage, manifest)
        assert (await call(service, "GET", url))[0] == 200, status
        assert (await call(service, "GET", f"{pyramid.base}.dzi"))[0] == 200, status
        assert (await call(service, "GET", new_url))[0] == 404, status
    manifest.status = "ready"
    manifest.pyramids = {
        name: p.model_copy(update={"generation": newer}) for name, p in manifest.pyramids.items()
    }
    write_manifest(pyramid.storage, manifest)
    assert (await call(service, "GET", url))[0] == 404, "a replaced generation is never served"
    assert (await call(service, "GET", new_url))[0] == 200


async def test_a_just_committed_pyramid_shows_without_waiting_for_the_manifest_cache(
    tmp_path: Path,
) -> None:
    """A manifest cached while converting does not hide the pyramid for the cache's 2 s."""
    pyramid = convert_into(LocalStorage(tmp_path / "data"), tmp_path)
    service = TileService(pyramid.storage)
    converting = pyramid.manifest.model_copy(update={"status": "processing", "pyramids": {}})
    write_manifest(pyramid.storage, converting)
    assert (await call(service, "GET", f"{pyramid.base}.dzi"))[0] == 404
    write_manifest(pyramid.storage, pyramid.manifest)
    await anyio.sleep(0.3)
    assert (await call(service, "GET", f"{pyramid.base}.dzi"))[0] == 200
    # A bogus generation of an existing image costs at most one manifest read per 0.2 s.
    reads = 0
    real_read = pyramid.storage.get_bytes

    def counting(key: str) -> bytes:
        nonlocal reads
        reads += key.endswith("manifest.json")
        return real_read(key)

    pyramid.storage.get_bytes = counting  # type: ignore[method-assign]
    bogus = f"/tiles/{pyramid.manifest.id}/{new_generation()}/image.dzi"
    for _ in range(20):
        assert (await call(service, "GET", bogus))[0] == 404
    assert reads <= 1
