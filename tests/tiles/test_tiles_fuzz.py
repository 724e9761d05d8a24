"""Fuzzing the tile routes (Hypothesis): no 5xx, no other image's bytes, no tile without a token."""

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexzoom.core.access import AccessPolicy, TokenSigner
from plexzoom.core.storage import LocalStorage
from plexzoom.tiles.app import TileService
from tests.tiles.test_tiles import Pyramid, convert_into

SECRET = b"fuzzing secret, 32 bytes long..."
ALLOWED = {200, 304, 400, 401, 403, 404, 405}
FOREIGN_ID = "01jzzzzzzzzzzzzzzzzzzzzzzz"


class Fixture:
    """Two private images in one store, a tile service that guards them, and their tokens."""

    def __init__(self, root: Path) -> None:
        storage = LocalStorage(root / "data")
        (root / "a").mkdir()
        (root / "b").mkdir()
        self.images = [convert_into(storage, root / "a", 600, 400)]
        self.images.append(convert_into(storage, root / "b", 600, 400))
        signer = TokenSigner(SECRET, 600)
        self.service = TileService(storage, access=AccessPolicy(("k",), signer))
        self.tokens = {
            p.manifest.id: signer.issue(p.manifest.id, p.manifest.generation).value
            for p in self.images
        }
        self.by_id = {p.manifest.id: p for p in self.images}


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return Fixture(tmp_path_factory.mktemp("fuzz"))


def request(service: TileService, method: str, path: str, query: bytes) -> tuple[int, bytes]:
    """One raw ASGI request (the path exactly as given, no client-side normalisation)."""
    scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": []}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(service(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def mostly(usual: Any, *odd: Any) -> st.SearchStrategy[Any]:
    """``usual`` three times in four, else one of ``odd``: most requests get past the route."""
    return st.one_of(st.just(usual), st.just(usual), st.just(usual), st.sampled_from(odd))


numbers = st.one_of(
    st.integers(0, 3).map(str),
    st.integers(0, 12).map(str),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["", "0x1", "1.5", "1e3", "\u0663", "00", "0" * 40, "%31", "+1", " 1"]),
)
names = mostly("image", "c0", "c1", "pca", "render", "IMAGE", "image.zip", "..", "%2e%2e")
exts = mostly("jpeg", "png", "webp", "jpg", "zip", "json", "JPEG", "jpeg/..", "dzi", "")
prefixes = mostly("/tiles/", "/tiles//", "/tiles/../tiles/", "/tiles/%2e%2e/", "/TILES/")


@st.composite
def tile_paths(draw: st.DrawFn, images: list[Pyramid]) -> tuple[str, str]:
    """(image id the path names, path): well-formed or not, near the real pyramids."""
    target = draw(st.sampled_from([*images, *images, None]))
    image_id = target.manifest.id if target else draw(st.sampled_from([FOREIGN_ID, "..", "x" * 26]))
    own = target.manifest.generation if target else "zzzzzzzzzzzz"
    gen = draw(mostly(own, *(p.manifest.generation for p in images), "..", "", "ZZZZZZZZZZZZ"))
    name = draw(names)
    shape = draw(mostly("tile", "dzi", "junk"))
    if shape == "dzi":
        tail = f"{name}.dzi"
    elif shape == "tile":
        tail = f"{name}_files/{draw(numbers)}/{draw(numbers)}_{draw(numbers)}.{draw(exts)}"
    else:
        tail = draw(st.text(max_size=60))
    return image_id, f"{draw(prefixes)}{image_id}/{gen}/{tail}"


def test_no_tile_request_breaks_out(fixture: Fixture) -> None:
    """Odd ids, generations, names, coordinates, formats, traversal, methods and tokens:
    always a 4xx or the requested image's own bytes for its own token, never a 5xx."""
    statuses: Counter[int] = Counter()

    @given(data=st.data())
    @settings(max_examples=800, deadline=None, database=None, derandomize=True)
    def attempt(data: st.DataObject) -> None:
        image_id, path = data.draw(tile_paths(fixture.images))
        token_for = data.draw(mostly(image_id, *fixture.tokens, None, "garbage"))
        token = fixture.tokens.get(token_for or "", "12345.abc" if token_for == "garbage" else None)
        method = data.draw(mostly("GET", "HEAD", "POST", "DELETE", "PUT"))
        query = data.draw(st.sampled_from([b"", b"t=", b"t=1.x"]))
        query = f"t={token}".encode() if token else query
        status, body = request(fixture.service, method, path, query)
        statuses[status] += 1
        assert status in ALLOWED, (status, path, query)
        if status != 200:
            return
        # Served: the path named an image, its token was that image's, the bytes its own.
        assert token_for == image_id, (path, token_for)
        served = fixture.by_id[image_id]
        assert path.startswith(f"{served.base.rsplit('/', 1)[0]}/"), path
        if method == "GET" and "_files/" in path:
            member = path.split(f"/{served.manifest.generation}/", 1)[1]
            assert body == served.members[member], path

    attempt()
    assert {200, 401, 403, 404, 405} <= set(statuses), statuses  # the fuzz reached every answer
