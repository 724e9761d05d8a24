"""The tile service's own Prometheus metrics (the request counts and times are
plexzoom.core.metrics'): its tile cache and the bytes it serves.

Plain counters created at import (multiprocess-safe: each process writes its own file under
PROMETHEUS_MULTIPROC_DIR). In multiprocess mode every ``inc`` takes a lock and writes a memory
map, which the tile path cannot spare per request: the counts are tallied in plain integers and
added to the counters at most every FLUSH_EVERY_S (and when a process answers /metrics or ends),
so /metrics shows them within about that delay.
"""

import time

from prometheus_client import Counter

from plexzoom.core.metrics import HTTP_REQUESTS

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
    "Cached image records dropped because an event said the image changed (or all, after a gap).",
)


class Tally:
    """This process's counts not yet added to the counters (used from the event loop only)."""

    def __init__(self) -> None:
        self.hits = self.misses = self.bytes_served = 0
        self.requests: dict[tuple[str, str, str, int], int] = {}  # (service, route, method, status)
        self.due = time.monotonic() + FLUSH_EVERY_S

    def flush(self) -> None:
        """Add the counts to the Prometheus counters."""
        self.due = time.monotonic() + FLUSH_EVERY_S
        hits, misses, served = self.hits, self.misses, self.bytes_served
        self.hits = self.misses = self.bytes_served = 0
        requests, self.requests = self.requests, {}
        if hits:
            TILE_CACHE_HITS.inc(hits)
        if misses:
            TILE_CACHE_MISSES.inc(misses)
        if served:
            TILE_BYTES_SERVED.inc(served)
        for (service, route, method, status), count in requests.items():
            HTTP_REQUESTS.labels(service, route, method, str(status)).inc(count)


TALLY = Tally()
