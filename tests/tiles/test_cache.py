"""The tile service's byte-bounded LRU cache."""

from plexzoom.tiles.cache import LruCache


def test_least_recently_used_entries_go_first() -> None:
    """Past the byte limit, the entry used longest ago is evicted."""
    cache: LruCache[str, bytes] = LruCache(max_size=10)
    cache.put("a", b"aaaa", 4)
    cache.put("b", b"bbbb", 4)
    assert cache.get("a") == b"aaaa"  # a is now the most recently used
    cache.put("c", b"cccc", 4)
    assert cache.get("b") is None
    assert cache.get("a") == b"aaaa"
    assert cache.get("c") == b"cccc"
    assert cache.size == 8


def test_replacing_an_entry_keeps_the_size_right() -> None:
    """Putting a key again replaces its value and its size."""
    cache: LruCache[str, bytes] = LruCache(max_size=10)
    cache.put("a", b"a" * 6, 6)
    cache.put("a", b"a" * 2, 2)
    assert cache.size == 2
    cache.put("b", b"b" * 8, 8)
    assert cache.get("a") == b"aa"
    assert cache.size == 10


def test_values_larger_than_the_cache_are_not_kept() -> None:
    """An oversize value is not cached and does not flush everything else."""
    cache: LruCache[str, bytes] = LruCache(max_size=10)
    cache.put("a", b"a", 1)
    cache.put("huge", b"x" * 11, 11)
    assert cache.get("huge") is None
    assert cache.get("a") == b"a"
    assert cache.size == 1


def test_many_entries_never_exceed_the_limit() -> None:
    """However many entries go in, the total stays within the limit."""
    cache: LruCache[int, bytes] = LruCache(max_size=1000)
    for i in range(500):
        cache.put(i, bytes(i % 37), i % 37)
        assert cache.size <= 1000
    assert cache.get(499) == bytes(499 % 37)
