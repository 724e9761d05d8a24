"""A part of a file on disk: its CRC-32 (a first read pass) and its bytes as a stream.

Neither holds the part in memory: both read it in ``CHUNK`` pieces, so an upload's memory is
the chunks in flight, whatever the part size.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FilePart:
    """Bytes ``[offset, offset + size)`` of ``path``: part ``number`` of an upload."""

    path: Path
    number: int
    offset: int
    size: int

    def crc32(self) -> str:
        """The part's CRC-32 as S3's ``x-amz-checksum-crc32`` spells it: base64 of the four
        big-endian bytes (a first read pass, before the part is signed and sent)."""
        crc = 0
        for chunk in self.chunks():
            crc = zlib.crc32(chunk, crc)
        return base64.b64encode(crc.to_bytes(4, "big")).decode()

    def chunks(self, sent: Callable[[int], None] | None = None) -> Iterator[bytes]:
        """The part's bytes, ``CHUNK`` at a time; ``sent`` hears the length of each."""
        left = self.size
        with self.path.open("rb") as file:
            file.seek(self.offset)
            while left > 0:
                chunk = file.read(min(CHUNK, left))
                if not chunk:
                    raise OSError(f"{self.path} became shorter while it was being uploaded.")
                left -= len(chunk)
                if sent is not None:
                    sent(len(chunk))
                yield chunk
