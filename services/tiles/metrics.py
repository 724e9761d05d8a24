"""The tile service's own Prometheus metrics (the request counts and times are
plexzoom.core.metrics'): its tile cache and the bytes it serves.

Plain counters without labels, created at import: multiprocess-safe (each process writes its own
file under PROMETHEUS_MULTIPROC_DIR) and one ``inc`` each on the hot path.
"""

from prometheus_client import Counter

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
