"""A small LRU cache bounded by total bytes, and shared reads (single-threaded: used from the
event loop only)."""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """Least-recently-used cache whose entries carry a size; evicts past ``max_size``."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The cached value, or None."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Cache ``value``; values larger than the whole cache are not kept."""
        if size > self.max_size:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._items[key] = (value, size)
        self.size += size
        while self.size > self.max_size:
            _, (_, dropped) = self._items.popitem(last=False)
            self.size -= dropped

    def discard(self, key: K) -> None:
        """Drop one entry, if cached."""
        item = self._items.pop(key, None)
        if item is not None:
            self.size -= item[1]

    def clear(self) -> None:
        """Drop every entry."""
        self._items.clear()
        self.size = 0

    def discard_where(self, doomed: Callable[[K], bool]) -> None:
        """Drop every entry whose key ``doomed`` accepts (a scan: for rare events like deletes)."""
        for key in [k for k in self._items if doomed(k)]:
            _, size = self._items.pop(key)
            self.size -= size


class SingleFlight(Generic[K, V]):
    """Concurrent requests for one key share one read (a burst of misses costs one GET)."""

    def __init__(self) -> None:
        self._pending: dict[K, asyncio.Future[V]] = {}

    async def run(
        self,
        key: K,
        read: Callable[[], Awaitable[V]],
        keep: Callable[[V], None] | None = None,
    ) -> V:
        """The result of ``read()``, or of the read already under way for ``key``; ``keep``
        gets the value unless ``forget(key)`` was called while the read was under way."""
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await read()
            future.set_result(value)
            if keep is not None and self._pending.get(key) is future:
                keep(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marked as retrieved: waiters, if any, get it raised
            raise
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]

    def forget(self, key: K) -> None:
        """Let the next request for ``key`` start a read of its own: the one under way may
        have read what has changed since (its callers still get its value)."""
        self._pending.pop(key, None)

    def forget_all(self) -> None:
        """``forget`` every key."""
        self._pending.clear()
