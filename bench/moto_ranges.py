"""moto's S3 server, patched so that a ranged GET reads only its range.

Stock moto (5.x) reads the whole object for every ranged GET and then slices it: on a 100 MB
pyramid archive that is ~20 GETs/s, so tile serving through it would measure moto alone.
Run with: python bench/moto_ranges.py -H 127.0.0.1 -p PORT (the arguments of moto.server).
"""

import sys
import threading
from typing import Any

from moto.s3.models import FakeKey
from moto.s3.responses import S3Response
from moto.server import main

_ranged = threading.local()
_stock_value: property = FakeKey.value  # type: ignore[assignment]
_stock_get_object = S3Response.get_object


class Window:
    """Stands in for a key's bytes: its length, and slices read from the key's own buffer."""

    def __init__(self, key: Any) -> None:
        self.key = key

    def __len__(self) -> int:
        return int(self.key.size)

    def __getitem__(self, item: slice) -> bytes:
        start, stop, _step = item.indices(len(self))
        with self.key.lock:
            self.key._value_buffer.seek(start)
            return bytes(self.key._value_buffer.read(max(0, stop - start)))


def _value(key: Any) -> Any:
    """The key's bytes, or a Window on them while a ranged GET is being answered."""
    if getattr(_ranged, "on", False):
        return Window(key)
    return _stock_value.fget(key)  # type: ignore[misc]


def _get_object(self: Any) -> Any:
    """moto's get_object, with key.value lazy when the request has a Range header."""
    _ranged.on = bool(self.headers.get("range"))
    try:
        return _stock_get_object(self)
    finally:
        _ranged.on = False


FakeKey.value = property(_value, _stock_value.fset)  # type: ignore[method-assign,assignment]
S3Response.get_object = _get_object  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
