"""The api's /metrics: requests and latency by route template, uploads in flight, the queue's
depth, and a key when keys are set (in-process: this process's default registry)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from plexzoom.core.metrics import RequestMetrics
from plexzoom.core.queue import QueueDepth
from plexzoom.core.storage import LocalStorage
from plexzoom.web import _route
from tests.api.conftest import FORM_TAIL, MULTIPART, Api, MakeApi, form_head
from tests.conftest import quadrant_bytes
from tests.servers import _redis_base

pytestmark = pytest.mark.anyio
KEY = "metrics-key-5d1c"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def measured(api: Api) -> httpx.AsyncClient:
    """A client of the app behind the request metrics, as the service runs it."""
    app = RequestMetrics(api.app, "api", _route)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_requests_are_counted_and_timed_by_route_template(api: Api) -> None:
    route = {"service": "api", "route": "/v1/images/{image_id}", "method": "GET"}
    before = sample("plexzoom_http_requests_total", **route, status="404")
    timed = sample(
        "plexzoom_http_request_duration_seconds_count", service="api", route=route["route"]
    )
    async with measured(api) as client:
        for _ in range(7):
            answer = await client.get(f"/v1/images/{uuid.uuid4().hex[:26]}")
            assert answer.status_code == 404
        metrics = await client.get("/metrics")
    assert sample("plexzoom_http_requests_total", **route, status="404") == before + 7
    assert (
        sample("plexzoom_http_request_duration_seconds_count", service="api", route=route["route"])
        == timed + 7
    )
    # The answer is Prometheus text with the same figures (never a path with an id in it).
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    routes = {s.labels.get("route") for s in families["plexzoom_http_requests"].samples}
    assert "/v1/images/{image_id}" in routes
    assert not any(r and "01" in r for r in routes)


async def test_uploads_in_flight_rise_while_bytes_arrive(api: Api) -> None:
    """The gauge is 1 while a request's body is still coming (held by the test), 0 after."""
    release = asyncio.Event()
    at_start = sample("plexzoom_uploads_in_flight")

    async def body() -> AsyncIterator[bytes]:
        yield form_head("q.png")
        await release.wait()
        yield quadrant_bytes("png") + FORM_TAIL

    async with measured(api) as client:
        upload = asyncio.create_task(
            client.post("/v1/images", content=body(), headers={"content-type": MULTIPART})
        )
        for _ in range(1000):  # bounded: the upload reaches the route within a few loop turns
            if sample("plexzoom_uploads_in_flight") == at_start + 1:
                break
            await asyncio.sleep(0.005)
        assert sample("plexzoom_uploads_in_flight") == at_start + 1
        release.set()
        answer = await upload
    assert answer.status_code == 202
    assert sample("plexzoom_uploads_in_flight") == at_start


async def test_metrics_need_a_key_when_keys_are_set(make_api: MakeApi, tmp_path: Path) -> None:
    keyed = await make_api(LocalStorage(tmp_path / "s"), api_keys=KEY)
    async with measured(keyed) as client:
        refused = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
        allowed = await client.get("/metrics", headers={"authorization": f"Bearer {KEY}"})
    assert refused.status_code == 401 and wrong.status_code == 401
    assert "plexzoom_http_requests_total" not in refused.text
    assert allowed.status_code == 200
    assert "plexzoom_http_requests_total" in allowed.text


async def test_open_server_serves_metrics_without_a_key(api: Api) -> None:
    async with measured(api) as client:
        assert (await client.get("/metrics")).status_code == 200


def test_queue_depth_is_read_from_redis_at_scrape_time() -> None:
    client: redis.Redis[bytes] = redis.Redis.from_url(f"{_redis_base()}/0")  # own key names
    namespace = f"plexzoom-test-{uuid.uuid4().hex[:8]}"
    depth = QueueDepth(client, namespace)
    try:
        client.rpush(f"{namespace}:conversions", *[f"m{i}" for i in range(5)])
        client.rpush(f"{namespace}:conversions.DQ", "d1", "d2")
        client.zadd(f"{namespace}:conversions.XQ", {"x": 1})
        (family,) = list(depth.collect())
        states = {s.labels["state"]: s.value for s in family.samples}
        assert states == {"waiting": 5.0, "delayed": 2.0, "dead": 1.0}
        client.lpop(f"{namespace}:conversions")
        (family,) = list(depth.collect())
        assert {s.labels["state"]: s.value for s in family.samples}["waiting"] == 4.0
    finally:
        client.delete(*[f"{namespace}:conversions{s}" for s in ("", ".DQ", ".XQ")])


def test_queue_depth_is_silent_when_redis_does_not_answer() -> None:
    """A scrape still shows the service's other figures when Redis is away."""
    gone: redis.Redis[bytes] = redis.Redis(port=1, socket_connect_timeout=0.5)
    assert list(QueueDepth(gone).collect()) == []
