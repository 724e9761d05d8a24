"""The one error tree and its HTTP table: every error class answers its status, on the api and on
the tile service, through the services' own error paths."""

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from plexzoom.api.errors import install_error_handlers
from plexzoom.core import errors
from plexzoom.core.errors import HTTP_STATUS, PlexzoomError, answer_for
from plexzoom.core.storage import LocalStorage
from plexzoom.tiles.app import TileService

pytestmark = pytest.mark.anyio
TILE = "/tiles/01jaaaaaaaaaaaaaaaaaaaaaaa/abcdefghijkl/image_files/0/0_0.jpeg"


def every_error() -> list[type[PlexzoomError]]:
    """PlexzoomError's subclasses, all the way down."""
    found, todo = [], list(PlexzoomError.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def unlisted(classes: list[type[PlexzoomError]]) -> list[str]:
    """Classes with no entry of their own or of an ancestor below PlexzoomError."""
    return [
        cls.__name__
        for cls in classes
        if not any(base in HTTP_STATUS for base in cls.__mro__ if base is not PlexzoomError)
    ]


def plexzoom_errors() -> list[type[PlexzoomError]]:
    return [cls for cls in every_error() if cls.__module__.startswith("plexzoom.")]


def test_every_error_class_lives_in_the_tree_and_has_an_answer() -> None:
    classes = plexzoom_errors()
    assert {cls.__module__ for cls in classes} == {"plexzoom.core.errors"}
    assert len(classes) >= 15
    assert unlisted(classes) == []


def test_an_error_left_out_of_the_table_is_found() -> None:
    """The check above can fail: a new error with no row is reported."""

    class Stray(PlexzoomError):
        pass

    class Covered(errors.NotFound):
        pass

    assert unlisted([Stray, Covered]) == ["Stray"]


def _raise(exc: PlexzoomError) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return app


@pytest.mark.parametrize("cls", plexzoom_errors(), ids=lambda cls: cls.__name__)
async def test_the_api_answers_each_error_with_its_status(cls: type[PlexzoomError]) -> None:
    exc = cls("A sentence a person can act on.")
    transport = httpx.ASGITransport(app=_raise(exc))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/boom")
    assert answer.status_code == answer_for(exc).api
    assert answer.json() == {"detail": "A sentence a person can act on."}


@pytest.mark.parametrize("cls", plexzoom_errors(), ids=lambda cls: cls.__name__)
async def test_the_tile_service_answers_each_error_with_its_column(
    cls: type[PlexzoomError], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exc = cls("A sentence a person can act on.")
    tiles = TileService(LocalStorage(tmp_path))

    async def failing(*_args: object, **_kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(tiles, "_manifest", failing)
    transport = httpx.ASGITransport(app=tiles)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get(TILE)
    status = answer_for(exc).tiles
    assert answer.status_code == status
    assert answer.text == ("No such tile." if status == 404 else exc.message)
    assert "cache-control" not in answer.headers


def test_the_tile_services_differences_are_the_written_ones() -> None:
    """Only an image's state (Conflict) or an unreadable record differ: both read as an absent
    tile on the tile service, and as a 409 that explains itself on the api."""
    differ = {cls.__name__ for cls, answer in HTTP_STATUS.items() if answer.api != answer.tiles}
    assert differ == {"Conflict", "DamagedRecord"}
    assert answer_for(errors.WriteConflict()).tiles == 404
    assert answer_for(errors.BadUpload("x")).api == 400
