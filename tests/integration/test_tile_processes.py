"""The tile service as processes of its own (``python -m plexzoom.tiles``): tiles, /healthz and
/metrics of one, and two on one storage folder and one Redis following image changes at once.

The record TTL is an hour here, so only the image events can explain a change the processes show.
"""

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.eventlog import EventingStorage, EventLog
from plexzoom.core.images import delete_image, reconvert_image, set_public
from plexzoom.core.storage import LocalStorage
from tests.servers import free_port, shared_redis, start_module, stop, wait_http
from tests.tiles.test_tiles import convert_into

KEY = "tile-processes-test-key"
TILE_ROUTE = "/tiles/{id}/{gen}/{name}_files/{level}/{col}_{row}.{format}"
SECRET = "tile-processes-test-secret-0123456789"


class TileProcess:
    """``python -m plexzoom.tiles`` on a free port, its log in a file."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"tiles-{self.port}.log"
        env = {"PLEXZOOM_PORT": str(self.port)} | env
        self.proc = start_module("plexzoom.tiles", env, self.log_path, inherit_plexzoom=False)
        try:
            wait_http(f"{self.url}/healthz", self.proc, timeout_s=60)
        except BaseException:
            self.stop()
            raise

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        """GET a path of this process."""
        return httpx.get(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stop it as Ctrl-C would."""
        stop(self.proc)


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
    """Poll ``check`` every 50 ms until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.05)


def samples(process: TileProcess, headers: dict[str, str] | None = None) -> dict[str, float]:
    """Every sample of /metrics by name and labels, e.g. 'plexzoom_tile_cache_hits_total'."""
    text = process.get("/metrics", headers=headers).raise_for_status().text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def tile_requests(sample: dict[str, float]) -> float:
    """Tile requests answered 200 with GET, from a /metrics sample."""
    labels = f"method=GET,route={TILE_ROUTE},service=tiles,status=200"
    return sample.get(f"plexzoom_http_requests_total{{{labels}}}", 0.0)


@pytest.fixture
def redis_url() -> str:
    """Redis database 3 of the machine's Redis (never flushed: the test's stream is its own)."""
    return shared_redis(3)


@pytest.fixture
def stream(redis_url: str) -> Iterator[str]:
    """A stream name of this test's own, deleted afterwards."""
    name = f"plexzoom:test-events:{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(redis_url).delete(name)


def test_alone_serves_tiles_health_and_metrics(tmp_path: Path) -> None:
    """One tile service (two processes): a DZI and tiles of a pyramid made here; /metrics
    moves with a known load and needs a key when keys are set."""
    pyramid = convert_into(LocalStorage(tmp_path / "data"), tmp_path)
    env = {
        "PLEXZOOM_DATA_DIR": str(tmp_path / "data"),
        "PLEXZOOM_PROCESSES": "2",
        "PLEXZOOM_API_KEYS": KEY,
        "PLEXZOOM_TOKEN_SECRET": SECRET,
    }
    set_public(pyramid.storage, pyramid.manifest.id, True)
    tiles = TileProcess(tmp_path, env)
    auth = {"Authorization": f"Bearer {KEY}"}
    try:
        assert tiles.get("/healthz").json() == {"status": "ok", "storage": "ok"}
        assert tiles.get("/metrics").status_code == 401
        assert tiles.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        before = samples(tiles, auth)
        dzi = tiles.get(pyramid.base + ".dzi")
        assert dzi.status_code == 200 and b"<Image" in dzi.content
        spots = list(pyramid.all_tiles())[:6]
        sent = len(dzi.content)
        for _ in range(2):  # each tile twice: a miss, then a hit in the process that read it
            for level, col, row in spots:
                answer = tiles.get(pyramid.tile_url(level, col, row))
                assert answer.status_code == 200
                assert answer.content == pyramid.members[f"image_files/{level}/{col}_{row}.jpeg"]
                sent += len(answer.content)
        count = 2 * len(spots)

        def moved() -> bool:
            return tile_requests(samples(tiles, auth)) - tile_requests(before) == count

        wait_until(moved, f"{count} tile requests counted")
        after = samples(tiles, auth)
        hits = after["plexzoom_tile_cache_hits_total"] - before["plexzoom_tile_cache_hits_total"]
        misses = after["plexzoom_tile_cache_misses_total"] - before.get(
            "plexzoom_tile_cache_misses_total", 0
        )
        assert hits + misses == count
        assert len(spots) <= misses <= count  # a tile misses once in each process that serves it
        served = "plexzoom_tile_bytes_served_total"
        assert after[served] - before[served] == sent
        timed = f"plexzoom_http_request_duration_seconds_count{{route={TILE_ROUTE},service=tiles}}"
        assert after[timed] - before.get(timed, 0) == count
    finally:
        tiles.stop()
    log = tiles.log_path.read_text()
    assert f"GET '{pyramid.tile_url(*spots[0])}' 200 key=- image={pyramid.manifest.id}" in log


def test_two_processes_follow_image_changes(tmp_path: Path, redis_url: str, stream: str) -> None:
    """Deleting, making private and re-converting an image show in two warm tile processes at
    once (the record TTL is an hour: only the image events can explain it)."""
    client = redis.Redis.from_url(redis_url)
    storage = EventingStorage(LocalStorage(tmp_path / "data"), EventLog(client, stream=stream))
    pyramid = convert_into(storage, tmp_path)
    image_id = pyramid.manifest.id
    set_public(storage, image_id, True)
    env = {
        "PLEXZOOM_DATA_DIR": str(tmp_path / "data"),
        "PLEXZOOM_REDIS_URL": redis_url,
        "PLEXZOOM_EVENTS_STREAM": stream,
        "PLEXZOOM_TILE_MANIFEST_TTL_S": "3600",
        "PLEXZOOM_TILE_FOLLOWED_MANIFEST_TTL_S": "3600",
        "PLEXZOOM_API_KEYS": KEY,
        "PLEXZOOM_TOKEN_SECRET": SECRET,
    }
    processes = [TileProcess(tmp_path, env), TileProcess(tmp_path, env)]
    try:
        for process in processes:
            wait_until(lambda p=process: p.get("/healthz").json()["events"] == "following", "on")
        tile = pyramid.tile_url(*next(pyramid.all_tiles()))
        expect_everywhere(processes, tile, 200)  # warm: record, index and tile cached

        set_public(storage, image_id, False)
        expect_everywhere(processes, tile, 401)  # private: a token or key is needed now
        set_public(storage, image_id, True)
        expect_everywhere(processes, tile, 200)

        reconvert_image(storage, image_id, lambda _id: None)
        renewed = convert_image(storage, image_id, ConvertOptions(scratch_dir=tmp_path))
        assert renewed.generation != pyramid.manifest.generation
        new_tile = tile.replace(pyramid.manifest.generation, renewed.generation)
        expect_everywhere(processes, new_tile, 200)
        expect_everywhere(processes, tile, 404)  # the old generation is no longer committed

        delete_image(storage, image_id)
        expect_everywhere(processes, new_tile, 404)
    finally:
        for process in processes:
            process.stop()


def expect_everywhere(processes: list[TileProcess], path: str, status: int) -> None:
    """Wait (bounded) until every process answers ``path`` with ``status``."""
    for process in processes:
        wait_until(lambda p=process: p.get(path).status_code == status, f"{path} -> {status}")


def test_json_log_lines(tmp_path: Path) -> None:
    """PLEXZOOM_LOG_FORMAT=json: uvicorn's lines and the access lines are JSON objects, the
    access line with its fields (a token in the query is never one of them)."""
    pyramid = convert_into(LocalStorage(tmp_path / "data"), tmp_path)
    env = {"PLEXZOOM_DATA_DIR": str(tmp_path / "data"), "PLEXZOOM_LOG_FORMAT": "json"}
    process = TileProcess(tmp_path, env)
    try:
        assert process.get(f"{pyramid.base}.dzi?t=secret-token-value").status_code == 200
        assert process.get("/tiles/nothing-here").status_code == 404

        def access_lines() -> list[dict[str, object]]:
            lines = process.log_path.read_text().splitlines()
            parsed = [json.loads(line) for line in lines if line.strip()]  # every line parses
            return [line for line in parsed if line.get("logger") == "plexzoom.access"]

        wait_until(lambda: len(access_lines()) >= 3, "three access lines")  # /healthz too
    finally:
        process.stop()
    paths = {line["path"]: line for line in access_lines()}
    assert paths[f"{pyramid.base}.dzi"]["status"] == 200
    assert paths["/tiles/nothing-here"]["status"] == 404
    assert "secret-token-value" not in process.log_path.read_text()
    assert any("uvicorn" in line for line in process.log_path.read_text().splitlines())
