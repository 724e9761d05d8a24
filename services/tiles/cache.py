"""A small LRU cache bounded by total bytes (single-threaded: used from the event loop only)."""

from collections import OrderedDict
from collections.abc import Callable
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

    def discard_where(self, doomed: Callable[[K], bool]) -> None:
        """Drop every entry whose key ``doomed`` accepts (a scan: for rare events like deletes)."""
        for key in [k for k in self._items if doomed(k)]:
            _, size = self._items.pop(key)
            self.size -= size
