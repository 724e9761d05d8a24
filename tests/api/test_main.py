"""The one-origin app: docs and viewer served locally, tiles routed to the tile service."""

import re
from html.parser import HTMLParser

import pytest

from plexzoom.core.storage import Storage
from tests.api.conftest import REAL_VIEWER, Api, MakeApi

pytestmark = pytest.mark.anyio


class AssetLinks(HTMLParser):
    """Collects every src and href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.fixture
async def site(make_api: MakeApi, local_storage: Storage) -> Api:
    """The app with the real viewer folder (and its npm packages) mounted."""
    if not (REAL_VIEWER / "node_modules" / "swagger-ui-dist").is_dir():
        pytest.fail("viewer/node_modules is not installed: make install")
    return await make_api(local_storage, viewer_dir=REAL_VIEWER)


async def test_docs_load_only_our_own_assets(site: Api) -> None:
    """/docs references Swagger UI under /vendor/swagger-ui/ and nothing from a CDN."""
    answer = await site.client.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    parser = AssetLinks()
    parser.feed(page)
    assert parser.links, "the docs page loads no assets at all"
    assert all(link.startswith("/vendor/swagger-ui/") for link in parser.links), parser.links
    assert not re.search(r"https?://", page), "the docs page names an external URL"
    assert "cdn" not in page.lower()
    for link in parser.links:
        asset = await site.client.get(link)
        assert asset.status_code == 200, link
    assert (await site.client.get("/openapi.json")).json()["info"]["title"] == "plexzoom"


async def test_the_openapi_schema_documents_the_upload(site: Api) -> None:
    """The upload is described as multipart with a required binary 'file'."""
    schema = (await site.client.get("/openapi.json")).json()
    upload = schema["paths"]["/v1/images"]["post"]["requestBody"]
    form = upload["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"]
    assert form["properties"]["file"]["format"] == "binary"


async def test_the_viewer_is_served_from_the_root(site: Api) -> None:
    """The viewer's pages come from the same origin as the API."""
    for path in ("/", "/view.html"):
        answer = await site.client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html")


async def test_unknown_paths_are_404_not_500(site: Api) -> None:
    """Unknown paths, including traversal attempts, are plain 404s."""
    for path in ("/nothing-here", "/vendor/swagger-ui/%2e%2e/%2e%2e/package.json", "/v2/images"):
        answer = await site.client.get(path)
        assert answer.status_code == 404, path


async def test_tiles_are_answered_by_the_tile_service(api: Api) -> None:
    """/tiles/ goes to the bare tile service (plain text 404), not to FastAPI (JSON 404)."""
    answer = await api.client.get("/tiles/nothing")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "text/plain"
    assert (await api.client.get("/v1/nothing")).headers["content-type"] == "application/json"
