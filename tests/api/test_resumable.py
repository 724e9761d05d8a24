"""Resumable uploads (/v1/uploads) over the local folder, SeaweedFS and moto's S3 server.

On S3 the parts go to the bucket at presigned URLs over real HTTP; on the local backend to the
api's own signed part URLs. Every refusal is checked to leave the upload (or nothing) behind as
the protocol says, and each guard is also shown passing a good request, so it can fail.
"""

import base64
import hashlib
import io
import random
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile

from plexzoom.core import keys
from plexzoom.core.errors import NotFound
from plexzoom.core.manifest import read_manifest
from plexzoom.core.storage import S3Storage, Storage
from plexzoom.core.storage.parts import MIN_PART_SIZE
from plexzoom.core.uploads import PartUrls
from tests.api.conftest import Api, MakeApi

pytestmark = pytest.mark.anyio
PART = MIN_PART_SIZE
KEY_A, KEY_B = "key-of-lab-a-0123456789", "key-of-lab-b-0123456789"
BACKENDS = ("local", "s3-seaweed", "s3-server")


def tiff_bytes(size_mib: float = 11, seed: int = 0) -> bytes:
    """An uncompressed RGB TIFF of about ``size_mib`` MiB (three 5 MiB parts for 11)."""
    side = int((size_mib * 1024 * 1024 / 3) ** 0.5)
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    tifffile.imwrite(out, pixels, photometric="rgb")
    return out.getvalue()


@pytest.fixture(params=BACKENDS)
def any_storage(request: pytest.FixtureRequest) -> Storage:
    fixture = {"local": "local_storage", "s3-seaweed": "seaweed_storage",
               "s3-server": "s3_storage"}[request.param]  # fmt: skip
    found: Storage = request.getfixturevalue(fixture)
    return found


@dataclass
class Uploader:
    """A client of the protocol: the api over ASGI, part URLs over ASGI or real HTTP."""

    api: Api
    key: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    async def create(
        self, size: int, name: str | None = "cells.tif", **extra: Any
    ) -> httpx.Response:
        body = {"size": size, "name": name, **extra}
        return await self.api.client.post("/v1/uploads", json=body, headers=self.headers)

    async def sign(self, upload_id: str, numbers: list[int]) -> httpx.Response:
        return await self.api.client.post(
            f"/v1/uploads/{upload_id}/parts", json={"numbers": numbers}, headers=self.headers
        )

    async def put(
        self, url: str, data: bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """PUT to a part URL: the api's own (ASGI), else the S3 server over HTTP; no API key."""
        if url.startswith(("http://testserver/", "/")):
            return await self.api.client.put(url, content=data, headers=headers)
        async with httpx.AsyncClient() as http:
            return await http.put(url, content=data, headers=headers)

    async def send(
        self, upload_id: str, data: bytes, numbers: list[int], part: int
    ) -> dict[int, str]:
        """PUT the given parts of ``data``; their ETags by number."""
        signed = (await self.sign(upload_id, numbers)).json()["parts"]
        etags = {}
        for item in signed:
            n = item["number"]
            chunk = data[(n - 1) * part : n * part]
            assert item["size"] == len(chunk)
            answer = await self.put(item["url"], chunk)
            assert answer.status_code == 200, answer.text
            etags[n] = answer.headers["etag"]
        return etags

    async def state(self, upload_id: str) -> httpx.Response:
        return await self.api.client.get(f"/v1/uploads/{upload_id}", headers=self.headers)

    async def complete(self, upload_id: str, etags: dict[int, str]) -> httpx.Response:
        parts = [{"number": n, "etag": e} for n, e in etags.items()]
        return await self.api.client.post(
            f"/v1/uploads/{upload_id}/complete", json={"parts": parts}, headers=self.headers
        )

    async def abort(self, upload_id: str) -> httpx.Response:
        return await self.api.client.delete(f"/v1/uploads/{upload_id}", headers=self.headers)


async def _api(make_api: MakeApi, storage: Storage, **overrides: Any) -> Api:
    return await make_api(storage, upload_part_bytes=PART, **overrides)


def _open_uploads(storage: Storage) -> list[str]:
    return [u.key for u in storage.list_multipart_uploads("")]


async def test_a_file_in_parts_becomes_an_image(make_api: MakeApi, any_storage: Storage) -> None:
    """Create, sign, PUT three parts out of order, complete: the original is the file, the
    image is queued once, its name kept, and no multipart upload remains."""
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    data = tiff_bytes()
    created = await up.create(len(data))
    assert created.status_code == 201, created.text
    body = created.json()
    upload_id = body["id"]
    assert body["image_id"] == upload_id
    assert (body["part_size"], body["parts"]) == (PART, 3)
    listed = (await api.client.get(f"/v1/images/{upload_id}")).json()
    assert listed["status"] == "uploading"
    etags = await up.send(upload_id, data, [3, 1, 2], PART)
    assert sorted(etags) == [1, 2, 3]
    stored = (await up.state(upload_id)).json()["stored"]
    assert [(p["number"], p["size"]) for p in stored] == [
        (1, PART),
        (2, PART),
        (3, len(data) - 2 * PART),
    ]
    done = await up.complete(upload_id, etags)
    assert done.status_code == 202, done.text
    assert done.json()["status"] == "queued"
    assert done.json()["filename"] == "cells.tif"
    assert api.enqueue.ids == [upload_id]
    assert any_storage.get_bytes(keys.original_key(upload_id)) == data
    assert read_manifest(any_storage, upload_id).upload is None
    assert _open_uploads(any_storage) == []


async def test_a_resumed_upload_sends_only_the_missing_parts(
    make_api: MakeApi, any_storage: Storage
) -> None:
    """Parts 1 and 3 are stored, the listing says so with their ETags; the client sends part 2
    alone and completes with the listed ETags."""
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    data = tiff_bytes(seed=1)
    upload_id = (await up.create(len(data))).json()["id"]
    first = await up.send(upload_id, data, [1, 3], PART)
    listed = (await up.state(upload_id)).json()["stored"]
    assert [p["number"] for p in listed] == [1, 3]
    assert {p["number"]: p["etag"] for p in listed} == {n: e.strip('"') for n, e in first.items()}
    rest = await up.send(upload_id, data, [2], PART)
    etags = {p["number"]: p["etag"] for p in listed} | rest
    assert (await up.complete(upload_id, etags)).status_code == 202
    assert any_storage.get_bytes(keys.original_key(upload_id)) == data


async def test_completing_with_parts_missing_is_refused_and_the_upload_kept(
    make_api: MakeApi, any_storage: Storage
) -> None:
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    data = tiff_bytes(seed=2)
    upload_id = (await up.create(len(data))).json()["id"]
    etags = await up.send(upload_id, data, [1], PART)
    refused = await up.complete(upload_id, etags)
    assert refused.status_code == 409
    assert "Parts 2-3 of 3 are missing" in refused.json()["detail"]
    assert (await up.state(upload_id)).status_code == 200
    assert api.enqueue.ids == []
    etags |= await up.send(upload_id, data, [2, 3], PART)
    assert (await up.complete(upload_id, etags)).status_code == 202


async def test_completing_twice_or_after_an_abort_is_refused(
    make_api: MakeApi, any_storage: Storage
) -> None:
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    data = tiff_bytes(size_mib=4, seed=3)
    upload_id = (await up.create(len(data))).json()["id"]
    etags = await up.send(upload_id, data, [1], PART)
    assert (await up.complete(upload_id, etags)).status_code == 202
    again = await up.complete(upload_id, etags)
    assert again.status_code == 409
    assert "complete" in again.json()["detail"]
    assert api.enqueue.ids == [upload_id]

    other = (await up.create(len(data))).json()["id"]
    etags = await up.send(other, data, [1], PART)
    assert (await up.abort(other)).status_code == 204
    assert (await up.complete(other, etags)).status_code == 404
    assert (await up.abort(other)).status_code == 404
    assert (await api.client.get(f"/v1/images/{other}")).status_code == 404
    assert _open_uploads(any_storage) == []


async def test_part_numbers_outside_the_layout_are_refused(
    make_api: MakeApi, any_storage: Storage
) -> None:
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    upload_id = (await up.create(3 * PART)).json()["id"]
    for number in (0, 4, -1, 10_001):
        refused = await up.sign(upload_id, [1, number])
        assert refused.status_code == 400, number
        assert "parts 1 to 3" in refused.json()["detail"]
    assert (await up.sign(upload_id, [1, 2, 3])).status_code == 200
    assert (await up.complete(upload_id, {4: "abc"})).status_code == 400


async def test_parts_of_the_wrong_size_are_refused(make_api: MakeApi, any_storage: Storage) -> None:
    """A part shorter than the layout says (too small to be a middle part on S3, or a last part
    that does not add up to the declared size) is refused, on the local backend at once."""
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    data = tiff_bytes(seed=4)
    upload_id = (await up.create(len(data))).json()["id"]
    signed = {p["number"]: p for p in (await up.sign(upload_id, [1, 2, 3])).json()["parts"]}
    etags = {}
    for n in (1, 3):
        etags[n] = (await up.put(signed[n]["url"], data[(n - 1) * PART : n * PART])).headers["etag"]
    short = await up.put(signed[2]["url"], data[PART : 2 * PART - 1])
    if isinstance(any_storage, S3Storage):  # the bucket takes it; completion checks sizes
        assert short.status_code == 200
        etags[2] = short.headers["etag"]
        refused = await up.complete(upload_id, etags)
        assert refused.status_code == 400
        assert f"Part 2 has {PART - 1} bytes; it must have {PART}" in refused.json()["detail"]
    else:
        assert short.status_code == 400
        assert f"exactly {PART} bytes" in short.json()["detail"]
    assert (await up.state(upload_id)).status_code == 200  # kept: send part 2 again
    etags[2] = (await up.put(signed[2]["url"], data[PART : 2 * PART])).headers["etag"]
    done = await up.complete(upload_id, etags)
    assert done.status_code == 202, (await up.state(upload_id)).json()["stored"]


async def test_sizes_over_the_cap_are_refused_and_leave_nothing(
    make_api: MakeApi, any_storage: Storage
) -> None:
    api = await _api(make_api, any_storage, max_upload_bytes=3 * PART)
    up = Uploader(api)
    refused = await up.create(3 * PART + 1)
    assert refused.status_code == 413
    assert "upload limit" in refused.json()["detail"]
    assert (await up.create(3 * PART)).status_code == 201  # the cap itself is fine
    assert len(_open_uploads(any_storage)) == 1
    images = (await api.client.get("/v1/images")).json()["images"]
    assert len(images) == 1


async def test_real_bytes_over_the_declared_size_are_refused(
    make_api: MakeApi, seaweed_storage: Storage
) -> None:
    """S3 takes a last part longer than the layout says; completion refuses the extra bytes."""
    api = await _api(make_api, seaweed_storage)
    up = Uploader(api)
    upload_id = (await up.create(PART + 10)).json()["id"]
    signed = (await up.sign(upload_id, [1, 2])).json()["parts"]
    data = tiff_bytes(size_mib=5.1)
    etags = {1: (await up.put(signed[0]["url"], data[:PART])).headers["etag"]}
    etags[2] = (await up.put(signed[1]["url"], data[PART : PART + 11])).headers["etag"]
    refused = await up.complete(upload_id, etags)
    assert refused.status_code == 413
    assert f"more than the {PART + 10} bytes" in refused.json()["detail"]


async def test_a_file_that_is_no_image_is_refused_and_deleted(
    make_api: MakeApi, any_storage: Storage
) -> None:
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    data = random.Random(5).randbytes(PART + 100)
    upload_id = (await up.create(len(data), name="notes.txt")).json()["id"]
    etags = await up.send(upload_id, data, [1, 2], PART)
    refused = await up.complete(upload_id, etags)
    assert refused.status_code == 415
    assert "Supported formats" in refused.json()["detail"]
    assert any_storage.list_keys(keys.image_prefix(upload_id)) == []
    assert _open_uploads(any_storage) == []
    assert api.enqueue.ids == []


async def test_another_keys_upload_is_not_found(make_api: MakeApi, any_storage: Storage) -> None:
    """Every call on an upload answers 404 to a key other than the one that started it."""
    api = await _api(make_api, any_storage, api_keys=f"{KEY_A},{KEY_B}")
    owner, stranger = Uploader(api, KEY_A), Uploader(api, KEY_B)
    data = tiff_bytes(size_mib=4, seed=6)
    upload_id = (await owner.create(len(data))).json()["id"]
    etags = await owner.send(upload_id, data, [1], PART)
    for call in (
        stranger.state(upload_id),
        stranger.sign(upload_id, [1]),
        stranger.complete(upload_id, etags),
        stranger.abort(upload_id),
    ):
        answer = await call
        assert answer.status_code == 404
        assert "another API key" in answer.json()["detail"]
    assert (await Uploader(api).state(upload_id)).status_code == 401
    assert (await owner.state(upload_id)).status_code == 200  # the same call with the owner's key
    assert (await owner.complete(upload_id, etags)).status_code == 202


async def test_unknown_upload_ids_are_not_found(make_api: MakeApi, local_storage: Storage) -> None:
    api = await _api(make_api, local_storage)
    up = Uploader(api)
    for upload_id in ("01jz0000000000000000000000", "../../etc", "x" * 300):
        assert (await up.state(upload_id)).status_code == 404
        assert (await up.sign(upload_id, [1])).status_code == 404
    # An image sent in one request is no upload.
    sent = await api.upload(tiff_bytes(size_mib=0.1), "one.tif")
    assert (await up.state(sent.json()["id"])).status_code == 409


async def test_local_part_urls_are_signed_and_expire(
    make_api: MakeApi, local_storage: Storage
) -> None:
    """The api's own part URLs: a tampered or expired signature is refused (403) and stores
    nothing; the same URL signed now is taken."""
    api = await _api(make_api, local_storage)
    up = Uploader(api)
    data = tiff_bytes(size_mib=4, seed=7)
    upload_id = (await up.create(len(data))).json()["id"]
    url = (await up.sign(upload_id, [1])).json()["parts"][0]["url"]
    assert url.startswith(f"http://testserver/uploads/{upload_id}/parts/1?")
    signer: PartUrls = api.app.api.state.part_urls
    base = f"/uploads/{upload_id}/parts/1"
    past = 1_000_000
    expired = await up.put(
        f"{base}?expires={past}&signature={signer.sign(upload_id, 1, past)}", data
    )
    assert expired.status_code == 403
    assert "expired" in expired.json()["detail"]
    tampered = url.replace("parts/1?", "parts/1?x=1&").rsplit("signature=", 1)[0] + "signature=AAAA"
    assert (await up.put(tampered, data)).status_code == 403
    other_part = url.replace("/parts/1?", "/parts/2?")
    assert (await up.put(other_part, data)).status_code == 403
    odd = await up.put(f"{base}?expires={past}&signature=%C3%A9t%C3%A9", data)
    assert odd.status_code == 403  # not a 500: signatures are compared as bytes
    assert (await up.state(upload_id)).json()["stored"] == []
    assert (await up.put(url, data)).status_code == 200


@pytest.mark.parametrize("server", ["local_storage", "seaweed_storage"])
async def test_a_part_that_does_not_match_its_md5_is_refused(
    make_api: MakeApi, server: str, request: pytest.FixtureRequest
) -> None:
    """Part URLs take a Content-MD5 (the api's own check it; SeaweedFS checks it on SigV4 URLs,
    which leave it unsigned; moto's server checks none): a part whose bytes do not match is not
    stored."""
    storage: Storage = request.getfixturevalue(server)
    api = await _api(make_api, storage)
    up = Uploader(api)
    data = tiff_bytes(size_mib=4, seed=8)
    upload_id = (await up.create(len(data))).json()["id"]
    signed = (await up.sign(upload_id, [1])).json()
    assert signed["content_md5"] is True
    url = signed["parts"][0]["url"]
    wrong = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    refused = await up.put(url, data, {"Content-MD5": wrong})
    assert refused.status_code == 400
    if server == "local_storage":
        assert "Content-MD5" in refused.json()["detail"]
        assert (await up.put(url, data, {"Content-MD5": "not base64!"})).status_code == 400
    assert (await up.state(upload_id)).json()["stored"] == []
    right = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert (await up.put(url, data, {"Content-MD5": right})).status_code == 200


async def test_every_parts_etag_is_its_md5(make_api: MakeApi, any_storage: Storage) -> None:
    """What a client can check a part by on any server: its ETag is the MD5 of its bytes."""
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    data = tiff_bytes(size_mib=4, seed=8)
    upload_id = (await up.create(len(data))).json()["id"]
    signed = (await up.sign(upload_id, [1])).json()
    answer = await up.put(signed["parts"][0]["url"], data)
    assert answer.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'


async def test_a_slide_name_is_withheld(make_api: MakeApi, local_storage: Storage) -> None:
    """The declared name is kept hidden until the bytes are judged: a slide's name is dropped."""
    api = await _api(make_api, local_storage)
    up = Uploader(api)
    data = tiff_bytes(size_mib=1, seed=9)
    upload_id = (await up.create(len(data), name="Doe-Jane-1970.svs")).json()["id"]
    assert (await api.client.get(f"/v1/images/{upload_id}")).json()["filename"] is None
    done = await up.complete(upload_id, await up.send(upload_id, data, [1], PART))
    assert done.json()["filename"] is None
    assert "Doe" not in local_storage.get_bytes(keys.manifest_key(upload_id)).decode()


async def test_an_abort_removes_parts_and_record(make_api: MakeApi, any_storage: Storage) -> None:
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    data = tiff_bytes(seed=10)
    upload_id = (await up.create(len(data))).json()["id"]
    await up.send(upload_id, data, [1, 2], PART)
    assert (await up.abort(upload_id)).status_code == 204
    assert _open_uploads(any_storage) == []
    with pytest.raises(NotFound):
        read_manifest(any_storage, upload_id)
    assert any_storage.list_keys(keys.image_prefix(upload_id)) == []


async def test_each_call_keeps_an_upload_alive(make_api: MakeApi, local_storage: Storage) -> None:
    """A client coming back after hours moves the upload's expiry (the reconciler's clock);
    calls within a minute of each other write nothing."""
    api = await _api(make_api, local_storage)
    up = Uploader(api)
    upload_id = (await up.create(PART)).json()["id"]
    manifest = read_manifest(local_storage, upload_id)
    manifest.updated -= timedelta(hours=5)
    local_storage.put_bytes(keys.manifest_key(upload_id), manifest.model_dump_json().encode())
    before = datetime.fromisoformat((await up.state(upload_id)).json()["expires"])
    assert read_manifest(local_storage, upload_id).updated > manifest.updated + timedelta(hours=4)
    after = datetime.fromisoformat((await up.state(upload_id)).json()["expires"])
    assert after - before < timedelta(hours=1)  # the second call, within a minute: untouched
    assert before - manifest.updated > timedelta(days=7, hours=4)


def crc32_of(data: bytes) -> str:
    """What a client sends: base64 of the big-endian CRC-32."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


async def _sign_checked(up: Uploader, upload_id: str, chunks: dict[int, bytes]) -> httpx.Response:
    parts = [{"number": n, "crc32": crc32_of(chunk)} for n, chunk in chunks.items()]
    return await up.api.client.post(
        f"/v1/uploads/{upload_id}/parts", json={"parts": parts}, headers=up.headers
    )


async def test_parts_signed_with_their_crc32_become_an_image(
    make_api: MakeApi, any_storage: Storage
) -> None:
    """An upload declared with CRC-32s: each URL is signed for its part's checksum (sent as the
    header the answer names) and the completion names them; the object is the file."""
    api = await _api(make_api, any_storage)
    up = Uploader(api)
    data = tiff_bytes(seed=11)
    created = (await up.create(len(data), checksum="crc32")).json()
    assert created["checksum"] == "crc32"
    upload_id = created["id"]
    chunks = {n: data[(n - 1) * PART : n * PART] for n in (1, 2, 3)}
    signed = (await _sign_checked(up, upload_id, chunks)).json()["parts"]
    parts = []
    for item in signed:
        n = item["number"]
        assert item["headers"] == {"x-amz-checksum-crc32": crc32_of(chunks[n])}
        answer = await up.put(item["url"], chunks[n], item["headers"])
        assert answer.status_code == 200, answer.text
        parts.append({"number": n, "etag": answer.headers["etag"], "crc32": crc32_of(chunks[n])})
    done = await api.client.post(f"/v1/uploads/{upload_id}/complete", json={"parts": parts})
    assert done.status_code == 202, done.text
    assert any_storage.get_bytes(keys.original_key(upload_id)) == data


@pytest.mark.parametrize("server", ["local_storage", "seaweed_storage"])
async def test_a_part_that_does_not_match_its_signed_crc32_is_refused(
    make_api: MakeApi, server: str, request: pytest.FixtureRequest
) -> None:
    """Bytes changed on the way do not match the CRC-32 the URL was signed for: 400, nothing
    stored (moto's server checks no checksum, so it is left out); the right bytes go in."""
    storage: Storage = request.getfixturevalue(server)
    api = await _api(make_api, storage)
    up = Uploader(api)
    data = tiff_bytes(size_mib=4, seed=12)
    upload_id = (await up.create(len(data), checksum="crc32")).json()["id"]
    [item] = (await _sign_checked(up, upload_id, {1: data})).json()["parts"]
    changed = bytes([data[0] ^ 1]) + data[1:]
    assert (await up.put(item["url"], changed, item["headers"])).status_code == 400
    assert (await up.state(upload_id)).json()["stored"] == []
    assert (await up.put(item["url"], data, item["headers"])).status_code == 200


async def test_an_upload_with_crc32s_needs_them_everywhere(
    make_api: MakeApi, local_storage: Storage
) -> None:
    """Declared with CRC-32s, a part cannot be signed or completed without one, and a crc32
    that is not 4 bytes of base64 is refused; an upload declared without them signs numbers."""
    api = await _api(make_api, local_storage)
    up = Uploader(api)
    data = tiff_bytes(size_mib=4, seed=13)
    upload_id = (await up.create(len(data), checksum="crc32")).json()["id"]
    refused = await up.sign(upload_id, [1])
    assert refused.status_code == 400
    assert "crc32" in refused.json()["detail"]
    odd = await up.api.client.post(
        f"/v1/uploads/{upload_id}/parts", json={"parts": [{"number": 1, "crc32": "abc"}]}
    )
    assert odd.status_code == 400
    [item] = (await _sign_checked(up, upload_id, {1: data})).json()["parts"]
    etag = (await up.put(item["url"], data, item["headers"])).headers["etag"]
    unnamed = await up.complete(upload_id, {1: etag})
    assert unnamed.status_code == 400
    assert "crc32" in unnamed.json()["detail"]
    parts = [{"number": 1, "etag": etag, "crc32": crc32_of(data)}]
    done = await api.client.post(f"/v1/uploads/{upload_id}/complete", json={"parts": parts})
    assert done.status_code == 202
    plain = (await up.create(len(data))).json()
    assert plain["checksum"] is None
    assert (await up.sign(plain["id"], [1])).status_code == 200
