"""The tile service's tallied metrics: once flushed, the same figures as one call per request."""

import uuid

from prometheus_client import REGISTRY

from plexzoom.core.metrics import HTTP_SECONDS
from plexzoom.tiles.metrics import SERVICE, Tally

TIMES = [0.0, 0.0004, 0.0005, 0.00051, 0.003, 0.01, 0.9, 10.0, 75.0]  # bounds, between, past


def value(name: str, **labels: str) -> float:
    """A sample of the default registry (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_flushed_times_match_observing_each_request() -> None:
    """Bucket counts, sum and count are those observe() would give, request by request."""
    route = f"/test/{uuid.uuid4().hex}"
    tally = Tally()
    for seconds in TIMES:
        tally.request(route, "GET", 200, seconds)
    tally.flush()
    name = "plexzoom_http_request_duration_seconds"
    labels = {"service": SERVICE, "route": route}
    for bound in HTTP_SECONDS._upper_bounds:
        le = "+Inf" if bound == float("inf") else repr(bound)
        expected = sum(1 for t in TIMES if t <= bound)  # cumulative, as Prometheus shows them
        assert value(f"{name}_bucket", **labels, le=le) == expected, le
    assert value(f"{name}_sum", **labels) == sum(TIMES)
    assert value(f"{name}_count", **labels) == len(TIMES)


def test_flushed_counts() -> None:
    """Requests by route, method and status; hits, misses and bytes; a flush empties the tally."""
    route = f"/test/{uuid.uuid4().hex}"
    before = {n: value(n) for n in ("plexzoom_tile_cache_hits_total",)}
    tally = Tally()
    for status in (200, 200, 304):
        tally.request(route, "GET", status, 0.001)
    tally.hits += 2
    tally.flush()
    tally.flush()  # nothing twice
    requests = "plexzoom_http_requests_total"
    labels = {"service": SERVICE, "route": route, "method": "GET"}
    assert value(requests, **labels, status="200") == 2
    assert value(requests, **labels, status="304") == 1
    hits = "plexzoom_tile_cache_hits_total"
    assert value(hits) - before[hits] == 2
