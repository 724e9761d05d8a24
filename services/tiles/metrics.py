"""The tile service's own Prometheus metrics (the request counts and times are
plexzoom.core.metrics'): its tile cache and the bytes it serves.

Plain counters created at import (multiprocess-safe: each process writes its own file under
PROMETHEUS_MULTIPROC_DIR). In multiprocess mode every ``inc`` takes a lock and writes a memory
map, which the tile path cannot spare per request: the counts (and the request times, by
bucket) are tallied in plain numbers and added to the metrics at most every FLUSH_EVERY_S (and
when a process answers /metrics or ends), so /metrics shows them within about that delay.
"""

import time
from bisect import bisect_left

from prometheus_client import Counter, Histogram

from plexzoom.core.metrics import HTTP_REQUESTS, HTTP_SECONDS

FLUSH_EVERY_S = 0.5
TILE_CACHE_HITS = Counter(
    "plexzoom_tile_cache_hits",
    "Tile reads answered from the tile service's memory cache.",
)
TILE_CACHE_MISSES = Counter(
    "plexzoom_tile_cache_misses",
    "Tile reads that went to storage (concurrent misses of one tile share one read).",
)
TILE_BYTES_SERVED = Counter(
    "plexzoom_tile_bytes_served",
    "Body bytes of the descriptors and tiles the tile service answered with 200.",
)
MANIFEST_DROPS = Counter(
    "plexzoom_tile_manifest_drops",
    "Drops of cached image records on image events (of all of them, after a gap in the events).",
)


_BOUNDS = HTTP_SECONDS._upper_bounds  # ends with +Inf
SERVICE = "tiles"


class Tally:
    """This process's counts not yet added to the metrics (used from the event loop only)."""

    def __init__(self) -> None:
        self.hits = self.misses = self.bytes_served = 0
        self.requests: dict[tuple[str, str, int], int] = {}  # (route, method, status)
        self.times: dict[str, list[float]] = {}  # route: [count in each bucket..., sum]
        self.due = time.monotonic() + FLUSH_EVERY_S

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Tally one answered request of the tile process and how long it took."""
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        times = self.times.get(route)
        if times is None:
            times = self.times[route] = [0.0] * (len(_BOUNDS) + 1)
        times[bisect_left(_BOUNDS, seconds)] += 1  # the first bucket whose bound >= seconds
        times[-1] += seconds

    def flush(self) -> None:
        """Add the counts to the Prometheus counters."""
        self.due = time.monotonic() + FLUSH_EVERY_S
        hits, misses, served = self.hits, self.misses, self.bytes_served
        self.hits = self.misses = self.bytes_served = 0
        requests, self.requests = self.requests, {}
        times, self.times = self.times, {}
        if hits:
            TILE_CACHE_HITS.inc(hits)
        if misses:
            TILE_CACHE_MISSES.inc(misses)
        if served:
            TILE_BYTES_SERVED.inc(served)
        for (route, method, status), count in requests.items():
            HTTP_REQUESTS.labels(SERVICE, route, method, str(status)).inc(count)
        for route, counts in times.items():
            _add_times(HTTP_SECONDS.labels(SERVICE, route), counts)


def _add_times(histogram: Histogram, counts: list[float]) -> None:
    """Add tallied observations to a histogram child: what ``observe`` does one at a time,
    through its per-bucket values (prometheus_client has no public call for many at once)."""
    histogram._sum.inc(counts[-1])
    for bucket, count in zip(histogram._buckets, counts[:-1], strict=True):
        if count:
            bucket.inc(count)


TALLY = Tally()
