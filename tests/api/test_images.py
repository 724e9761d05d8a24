"""/v1/images over ASGI: upload, status, listing, deletion, re-conversion, odd ids."""

import asyncio
from pathlib import Path
from urllib.parse import quote

import pytest

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.ids import is_generation, is_image_id, new_image_id
from plexzoom.core.manifest import read_manifest
from plexzoom.core.pyramid import level_sizes
from plexzoom.core.storage import Storage
from tests.api.conftest import Api, MakeApi
from tests.conftest import decode, quadrant_bytes

pytestmark = pytest.mark.anyio

ODD_IDS = [
    quote("../etc", safe=""),
    quote("../../etc/passwd", safe=""),
    "%00",
    "%0a",
    "x" * 5000,
    "0" * 26,  # the right shape, but no such image
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "%C3%BC" * 10,
    "manifest.json",
    "images",
    "%2e%2e",
]


async def test_upload_answers_202_with_the_record_and_links(api: Api) -> None:
    """A PNG upload is stored, queued and described with self, dzi and viewer links."""
    data = quadrant_bytes("png")
    answer = await api.upload(data, "slide.png")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    image_id = body["id"]
    assert is_image_id(image_id)
    assert body["status"] == "queued"
    assert body["filename"] == "slide.png"
    assert (body["format"], body["size"]) == ("png", len(data))
    generation = read_manifest(api.storage, image_id).generation
    assert is_generation(generation)
    assert body["links"]["self"] == f"http://testserver/v1/images/{image_id}"
    assert body["links"]["dzi"] == f"http://testserver/tiles/{image_id}/{generation}/image.dzi"
    assert body["links"]["viewer"] == f"http://testserver/view.html?id={image_id}"
    assert body["links"]["thumbnail"] is None
    assert api.enqueue.ids == [image_id]
    assert api.storage.get_bytes(keys.original_key(image_id)) == data
    assert read_manifest(api.storage, image_id).status == "queued"


async def test_status_of_an_image(api: Api) -> None:
    """GET /v1/images/{id} describes the image as stored."""
    image_id = (await api.upload(quadrant_bytes("jpeg"), "a.jpg")).json()["id"]
    answer = await api.client.get(f"/v1/images/{image_id}")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["id"], body["status"], body["format"], body["filename"]) == (
        image_id,
        "queued",
        "jpeg",
        "a.jpg",
    )
    assert body["progress"] == 0.0
    assert body["channels"] == []


async def test_listing_is_newest_first_in_pages(api: Api) -> None:
    """?limit pages through every upload once, newest first, ending with next_cursor null."""
    uploaded = []
    for _ in range(5):
        uploaded.append((await api.upload(quadrant_bytes("png", 32, 32))).json()["id"])
        await asyncio.sleep(0.003)  # ids order by millisecond
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/v1/images", params=params)).json()
        assert len(page["images"]) <= 2
        seen += [image["id"] for image in page["images"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(uploaded))
    everything = (await api.client.get("/v1/images")).json()
    assert [i["id"] for i in everything["images"]] == list(reversed(uploaded))
    assert everything["next_cursor"] is None


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 201}, {"limit": "x"}, {"cursor": "c" * 65}]
)
async def test_bad_listing_parameters_are_4xx(api: Api, params: dict[str, object]) -> None:
    """Out-of-range limits and overlong cursors are refused, never a 500."""
    answer = await api.client.get("/v1/images", params=params)
    assert answer.status_code == 422


async def test_delete_then_the_image_is_gone(api: Api) -> None:
    """DELETE answers 204, then the image is 404 everywhere and nothing of it is stored."""
    image_id = (await api.upload(quadrant_bytes())).json()["id"]
    assert (await api.client.delete(f"/v1/images/{image_id}")).status_code == 204
    assert (await api.client.get(f"/v1/images/{image_id}")).status_code == 404
    assert (await api.client.delete(f"/v1/images/{image_id}")).status_code == 404
    assert (await api.client.get("/v1/images")).json()["images"] == []
    assert api.storage.list_keys("") == []


async def test_unknown_images_are_404(api: Api) -> None:
    """An id of the right shape that nobody uploaded is 404 for every verb."""
    image_id = new_image_id()
    assert (await api.client.get(f"/v1/images/{image_id}")).status_code == 404
    assert (await api.client.delete(f"/v1/images/{image_id}")).status_code == 404
    assert (await api.client.post(f"/v1/images/{image_id}/reconvert")).status_code == 404


@pytest.mark.parametrize("odd", ODD_IDS)
async def test_odd_ids_are_never_a_server_error(api: Api, odd: str) -> None:
    """Traversal attempts, NUL bytes and huge strings get a 4xx, and touch no storage."""
    await api.upload(quadrant_bytes("png", 16, 16))
    before = api.storage.list_keys("")
    for method, path in (
        ("GET", f"/v1/images/{odd}"),
        ("DELETE", f"/v1/images/{odd}"),
        ("POST", f"/v1/images/{odd}/reconvert"),
        ("GET", f"/tiles/{odd}/{odd}/image.dzi"),
        ("GET", f"/tiles/{odd}"),
    ):
        answer = await api.client.request(method, path)
        assert 400 <= answer.status_code < 500, (method, path, answer.status_code)
        assert "Traceback" not in answer.text
    assert api.storage.list_keys("") == before


async def test_the_file_name_is_metadata_only(api: Api) -> None:
    """The original name is shown in the record but is never part of a storage key."""
    name = "../../etc/passwd; rm -rf ~ Schnitt ü.png"
    answer = await api.upload(quadrant_bytes(), name)
    assert answer.status_code == 202
    image_id = answer.json()["id"]
    assert answer.json()["filename"] == name
    assert read_manifest(api.storage, image_id).filename == name
    stored = api.storage.list_keys("")
    assert stored == [keys.manifest_key(image_id), keys.original_key(image_id)]
    assert not any("passwd" in key or "Schnitt" in key for key in stored)


async def test_reconvert_after_conversion(api: Api, tmp_path: Path) -> None:
    """A ready image re-converts under a new generation; while queued it is a 409 Conflict."""
    image_id = (await api.upload(quadrant_bytes("png", 300, 200))).json()["id"]
    busy = await api.client.post(f"/v1/images/{image_id}/reconvert")
    assert busy.status_code == 409
    assert "try again" in busy.json()["detail"]
    first = convert_image(api.storage, image_id, ConvertOptions(scratch_dir=tmp_path))
    assert (await api.client.get(f"/v1/images/{image_id}")).json()["attempts"] == 1
    answer = await api.client.post(f"/v1/images/{image_id}/reconvert")
    assert answer.status_code == 202
    generation = read_manifest(api.storage, image_id).generation
    assert generation != first.generation
    assert answer.json()["status"] == "queued"
    assert api.enqueue.ids == [image_id, image_id]
    assert answer.json()["attempts"] == 0  # a new conversion is counted anew


@pytest.mark.parametrize(("width", "height"), [(1000, 600), (254, 254), (509, 100), (100, 2000)])
async def test_a_ready_image_links_a_working_thumbnail(
    api: Api, tmp_path: Path, width: int, height: int
) -> None:
    """The thumbnail link is the largest level that fits one tile, and the tile service has it."""
    image_id = (await api.upload(quadrant_bytes("png", width, height))).json()["id"]
    convert_image(api.storage, image_id, ConvertOptions(scratch_dir=tmp_path))
    body = (await api.client.get(f"/v1/images/{image_id}")).json()
    assert body["status"] == "ready"
    assert (body["width"], body["height"]) == (width, height)
    assert [c["name"] for c in body["channels"]] == ["Red", "Green", "Blue"]
    thumbnail = body["links"]["thumbnail"]
    prefix = body["links"]["dzi"].removesuffix(".dzi") + "_files/"
    assert thumbnail.startswith(prefix) and thumbnail.endswith("/0_0.jpeg")
    level = int(thumbnail.removeprefix(prefix).split("/")[0])
    sizes = level_sizes(width, height)
    assert max(sizes[level]) <= 254
    assert level == len(sizes) - 1 or max(sizes[level + 1]) > 254
    tile = await api.client.get(thumbnail.removeprefix("http://testserver"))
    assert tile.status_code == 200
    assert tile.headers["content-type"] == "image/jpeg"
    assert decode(tile.content).shape[:2] == (sizes[level][1], sizes[level][0])


@pytest.mark.parametrize("server", ["s3_storage", "seaweed_storage"], ids=["moto", "seaweedfs"])
async def test_presigned_mode_links_readable_pyramid_objects(
    make_api: MakeApi, server: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """In presigned mode a ready image links its archive and index; both are readable as-is.

    The range read is the one a browser makes: a signed URL, no credentials, exactly the tile's
    bytes back. SeaweedFS checks signatures (moto does not), so there a forged URL is refused.
    """
    import httpx

    from plexzoom.core.storage import S3Storage

    storage: S3Storage = request.getfixturevalue(server)
    api = await make_api(storage, tile_mode="presigned")
    storage.set_cors(list(api.settings.s3_cors_origins))  # as the app does at start-up
    image_id = (await api.upload(quadrant_bytes("png", 600, 400))).json()["id"]
    convert_image(storage, image_id, ConvertOptions(scratch_dir=tmp_path))
    links = (await api.client.get(f"/v1/images/{image_id}")).json()["links"]
    index = httpx.get(links["pyramid"]["index"]).json()
    top = index["levels"][-1]
    offset, length = top["offsets"][0], top["lengths"][0]
    archive_key = keys.pyramid_key(image_id, read_manifest(storage, image_id).generation, "image")
    expected = storage.get_bytes(archive_key)[offset : offset + length]
    origin = api.settings.s3_cors_origins[0]
    tile = httpx.get(
        links["pyramid"]["archive"],
        headers={"Range": f"bytes={offset}-{offset + length - 1}", "Origin": origin},
    )
    assert tile.status_code == 206
    assert tile.content == expected
    assert tile.headers["content-range"].startswith(f"bytes {offset}-{offset + length - 1}/")
    assert tile.headers["access-control-allow-origin"] == origin
    assert decode(tile.content).shape[2] == 3
    if server == "seaweed_storage":
        forged = links["pyramid"]["archive"].replace("Signature=", "Signature=0")
        assert httpx.get(forged, headers={"Range": "bytes=0-0"}).status_code == 403


async def test_proxy_mode_links_no_presigned_urls(
    make_api: MakeApi, s3_storage: Storage, tmp_path: Path
) -> None:
    """In the default proxy mode the API hands out no storage URLs."""
    api = await make_api(s3_storage)
    image_id = (await api.upload(quadrant_bytes("png", 300, 200))).json()["id"]
    convert_image(s3_storage, image_id, ConvertOptions(scratch_dir=tmp_path))
    links = (await api.client.get(f"/v1/images/{image_id}")).json()["links"]
    assert links["pyramid"] is None
    assert links["thumbnail"] is not None


async def test_a_deleted_image_is_gone_from_the_tile_urls_too(api: Api, tmp_path: Path) -> None:
    """Once DELETE answers 204, the image's descriptor and tiles are 404 as well."""
    image_id = (await api.upload(quadrant_bytes("png", 300, 200))).json()["id"]
    convert_image(api.storage, image_id, ConvertOptions(scratch_dir=tmp_path))
    links = (await api.client.get(f"/v1/images/{image_id}")).json()["links"]
    urls = [links[name].removeprefix("http://testserver") for name in ("dzi", "thumbnail")]
    assert [(await api.client.get(url)).status_code for url in urls] == [200, 200]
    assert (await api.client.delete(f"/v1/images/{image_id}")).status_code == 204
    assert [(await api.client.get(url)).status_code for url in urls] == [404, 404]


async def test_an_unreadable_manifest_is_not_a_server_error(api: Api) -> None:
    """A damaged record (or one from a newer version) is a 4xx and does not break the listing."""
    good = (await api.upload(quadrant_bytes())).json()["id"]
    await asyncio.sleep(0.003)
    bad = (await api.upload(quadrant_bytes())).json()["id"]
    api.storage.put_bytes(keys.manifest_key(bad), b'{"id": "' + bad.encode() + b'", "status": "')
    assert (await api.client.get(f"/v1/images/{bad}")).status_code < 500
    listing = await api.client.get("/v1/images")
    assert listing.status_code == 200
    assert good in [image["id"] for image in listing.json()["images"]]


async def test_tile_links_name_the_tile_services_own_origin(
    make_api: MakeApi, local_storage: Storage
) -> None:
    """With PLEXZOOM_TILES_URL, every tile link (picture, channels, thumbnail) goes there; the
    api's own links stay on the api's origin."""
    api = await make_api(local_storage, tiles_url="https://tiles.lab.example")
    image_id = (await api.upload(quadrant_bytes("png"), "a.png")).json()["id"]
    convert_image(local_storage, image_id, ConvertOptions())
    body = (await api.client.get(f"/v1/images/{image_id}")).json()
    generation = read_manifest(local_storage, image_id).generation
    tiles = f"https://tiles.lab.example/tiles/{image_id}/{generation}"
    assert body["links"]["dzi"] == f"{tiles}/image.dzi"
    assert body["links"]["thumbnail"].startswith(f"{tiles}/image_files/")
    assert all(c["dzi"].startswith(tiles) for c in body["channels"] if c["dzi"])
    assert body["links"]["self"] == f"http://testserver/v1/images/{image_id}"


@pytest.mark.parametrize(
    "url", ["tiles.lab.example", "https://tiles.lab.example/x?y=1", "javascript://x", ""]
)
def test_a_tiles_url_that_is_not_an_origin_is_refused(url: str) -> None:
    from pydantic import ValidationError

    from plexzoom.api.config import ApiSettings

    with pytest.raises(ValidationError, match="tiles_url"):
        ApiSettings(tiles_url=url)
    assert ApiSettings(tiles_url="http://127.0.0.1:8001").tiles_url == "http://127.0.0.1:8001"
