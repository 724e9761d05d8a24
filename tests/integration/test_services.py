"""The api started alone (``python -m plexzoom.api``) in several processes, and make run's one
origin: metrics from every process, a metrics port of its own, JSON log lines."""

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import quadrant_bytes
from tests.servers import Stack, free_port, require_redis, start_module, stop, wait_http

pytestmark = pytest.mark.slow
KEY = "services-key-8e21"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> Samples:
    """Prometheus text as {(sample name, sorted labels): value}."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **want: str
) -> float:
    return sum(
        value
        for (sample, labels), value in samples.items()
        if sample == name and all((k, v) in labels for k, v in want.items())
    )


@pytest.fixture
def api_alone(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """The api alone: 2 processes, API keys, a metrics port, JSON logs (stderr to a file)."""
    port, metrics_port = free_port(), free_port()
    log = tmp_path / "api.log"
    env = {
        "PLEXZOOM_DATA_DIR": str(tmp_path / "data"),
        "PLEXZOOM_REDIS_URL": require_redis(3),
        "PLEXZOOM_PORT": str(port),
        "PLEXZOOM_PROCESSES": "2",
        "PLEXZOOM_API_KEYS": KEY,
        "PLEXZOOM_METRICS_PORT": str(metrics_port),
        "PLEXZOOM_LOG_FORMAT": "json",
    }
    proc = start_module("plexzoom.api", env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout_s=60)
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}", log
    finally:
        stop(proc, signal.SIGTERM)


def test_the_api_alone_counts_requests_of_every_process(
    api_alone: tuple[str, str, Path],
) -> None:
    url, metrics_url, _log = api_alone
    for _ in range(30):  # a new connection each: both processes take some
        assert httpx.get(f"{url}/healthz", headers={"connection": "close"}).status_code == 200
    listing = httpx.get(f"{url}/v1/images", headers={"authorization": f"Bearer {KEY}"})
    assert listing.status_code == 200
    # Tiles are the tile service's: the api alone has none.
    assert (
        httpx.get(f"{url}/tiles/01jaaaaaaaaaaaaaaaaaaaaaaa/abcdefghijkl/image.dzi").status_code
        == 404
    )
    # With keys set, /metrics on the service's port needs one; the metrics port does not.
    assert httpx.get(f"{url}/metrics").status_code == 401
    keyed = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {KEY}"})
    side = httpx.get(f"{metrics_url}/metrics")
    assert keyed.status_code == 200 and side.status_code == 200
    for text in (keyed.text, side.text):
        samples = scrape(text)
        assert total(samples, "plexzoom_http_requests_total", route="/healthz", status="200") >= 30
        assert total(samples, "plexzoom_http_requests_total", route="/v1/images", method="GET") == 1
        assert total(samples, "plexzoom_queue_messages", state="waiting") == 0


def test_json_logs_are_one_object_per_line(api_alone: tuple[str, str, Path]) -> None:
    url, _metrics_url, log = api_alone
    httpx.get(f"{url}/v1/images", headers={"authorization": f"Bearer {KEY}"})
    httpx.get(f"{url}/v1/images")  # 401: logged too
    seen: list[dict[str, object]] = []
    for _ in range(100):  # the access log is written in batches (every 0.2 s)
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        seen = [json.loads(line) for line in lines]  # every line parses
        if sum(1 for line in seen if line.get("path") == "/v1/images") >= 2:
            break
        httpx.get(f"{url}/healthz")
    access = [line for line in seen if line.get("path") == "/v1/images"]
    assert {line["status"] for line in access} == {200, 401}
    assert all(line["logger"] == "plexzoom.access" and line["time"] for line in access)
    assert any(line.get("logger", "").startswith("uvicorn") for line in seen)
    assert KEY not in log.read_text()  # keys by fingerprint only


def test_text_logs_do_not_pass_for_json(tmp_path: Path) -> None:
    """The JSON check can fail: text lines do not parse."""
    from plexzoom.core.accesslog import AccessFormatter, describe_request

    scope = {"method": "GET", "path": "/v1/images", "headers": []}
    record = __import__("logging").makeLogRecord({"msg": describe_request(scope, 200, 0.001)})
    with pytest.raises(json.JSONDecodeError):
        json.loads(AccessFormatter().format(record))


def test_make_run_shows_the_workers_figures_on_its_origin(tmp_path: Path) -> None:
    """Under make run, web and worker share one metrics folder: the origin's /metrics has the
    conversions the worker ran and the requests the web process answered; so does its metrics
    port (served by make run itself: the worker does not bind it too)."""
    metrics_port = free_port()
    env = {"PLEXZOOM_REDIS_URL": require_redis(3), "PLEXZOOM_METRICS_PORT": str(metrics_port)}
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        files = {"file": ("q.png", quadrant_bytes("png"), "image/png")}
        image = httpx.post(f"{stack.url}/v1/images", files=files).json()
        assert stack.wait_status(image["id"])["status"] == "ready"
        answers = [
            httpx.get(f"{stack.url}/metrics").text,
            httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text,
        ]
    finally:
        stack.stop()
    for text in answers:
        samples = scrape(text)
        assert total(samples, "plexzoom_conversions_total", outcome="ready") == 1
        assert total(samples, "dramatiq_messages_total", actor_name="convert") == 1
        posts = total(samples, "plexzoom_http_requests_total", route="/v1/images", method="POST")
        assert posts == 1
        assert total(samples, "plexzoom_conversion_stage_seconds_count") >= 1
    assert b"Address already in use" not in (tmp_path / "stack.log").read_bytes()
