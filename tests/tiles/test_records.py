"""The tile service's cached records: dropped on events, never refilled by a read that an event
overtook, and trusted for the long TTL only while events are followed."""

import asyncio
from pathlib import Path

import pytest

from plexzoom.core.storage import LocalStorage
from plexzoom.tiles.app import TileService
from plexzoom.tiles.cache import SingleFlight

pytestmark = pytest.mark.anyio


async def test_a_read_overtaken_by_a_change_is_not_kept() -> None:
    """forget() while a read is under way: its callers get its value, the cache does not."""
    flight: SingleFlight[str, str] = SingleFlight()
    kept: list[str] = []
    release = asyncio.Event()

    async def slow_read() -> str:
        await release.wait()
        return "before the change"

    first = asyncio.create_task(flight.run("id", slow_read, kept.append))
    await asyncio.sleep(0)
    flight.forget("id")
    second = asyncio.create_task(flight.run("id", lambda: _value("after"), kept.append))
    assert await second == "after"
    release.set()
    assert await first == "before the change"
    assert kept == ["after"]


async def _value(value: str) -> str:
    return value


def test_the_long_ttl_holds_only_while_following(tmp_path: Path) -> None:
    """follow(True) lengthens the record TTL; follow(False) shortens it again."""
    tiles = TileService(LocalStorage(tmp_path), manifest_ttl_s=2, followed_manifest_ttl_s=300)
    assert tiles.manifest_ttl_s == 2
    tiles.follow(True)
    assert tiles.manifest_ttl_s == 300
    tiles.follow(False)
    assert tiles.manifest_ttl_s == 2
