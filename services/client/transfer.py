"""Sending parts: URLs signed with each part's CRC-32 once it is hashed; PUTs retried."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from plexzoom.client.errors import PlexzoomError, ServerUnreachable, Stopped, check
from plexzoom.client.models import SignedPart, StoredPart
from plexzoom.client.parts import FilePart

SIGN_BATCH = 16  # parts hashed, then signed in one call, a batch ahead of their PUTs
EXPIRY_MARGIN = 0.8  # a URL is signed again once 80 % of its lifetime has passed


@dataclass(frozen=True)
class Retry:
    """How often a part is tried, and the backoff between tries (full jitter, capped)."""

    tries: int = 6
    first_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(retry_after, self.cap_s)
        return random.uniform(0, min(self.cap_s, self.first_s * 2**attempt))


class Signer:
    """Part URLs of one upload. A part is signed with its CRC-32, so only once it is hashed:
    ``add`` signs a hashed batch in one call; a refused or expired URL is signed again alone,
    with the same CRC-32. A retry reuses a URL until it nears its expiry."""

    def __init__(
        self,
        sign: Callable[[dict[int, str]], tuple[list[SignedPart], int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sign, self.clock = sign, clock
        self._crc32s: dict[int, str] = {}
        self._signed: dict[int, tuple[SignedPart, float]] = {}
        self._lock = threading.Lock()

    def add(self, crc32s: dict[int, str]) -> None:
        """Sign parts, by number with their CRC-32 (base64), in one call."""
        with self._lock:
            self._crc32s |= crc32s
            self._sign(crc32s)

    def url(self, number: int, fresh: bool = False) -> SignedPart:
        """Part ``number``'s URL; ``fresh``: sign it again (the last one was refused)."""
        with self._lock:
            hit = self._signed.get(number)
            if hit is None or fresh or self.clock() >= hit[1]:
                self._sign({number: self._crc32s[number]})
                hit = self._signed.get(number)
            if hit is None:
                raise PlexzoomError(f"The server signed no URL for part {number}.")
            return hit[0]

    def _sign(self, crc32s: dict[int, str]) -> None:
        parts, expires_in = self.sign(crc32s)
        good_until = self.clock() + expires_in * EXPIRY_MARGIN
        self._signed |= {p.number: (p, good_until) for p in parts}


class PartSender:
    """PUTs one part at a time to its presigned URL: explicit Content-Length, the headers the
    URL signed (its CRC-32, which the storage checks), no Authorization; network errors, 5xx
    and 429 are retried, a 403 is signed again. Once ``stop`` is set no try starts, and a PUT
    under way is abandoned at its next chunk."""

    def __init__(
        self,
        http: httpx.Client,
        signer: Signer,
        retry: Retry,
        counted: Callable[[int], None],
        sleep: Callable[[float], object] = time.sleep,
        stop: threading.Event | None = None,
    ) -> None:
        self.http, self.signer, self.retry = http, signer, retry
        self.counted, self.sleep = counted, sleep
        self.stop = stop or threading.Event()

    def checksum(self, part: FilePart) -> str:
        """The part's CRC-32 (base64), unless the stop is set."""
        self._go_on(part)
        return part.crc32()

    def send(self, part: FilePart, crc32: str) -> StoredPart:
        """Send the part (signed with ``crc32``); what the storage now holds."""
        fresh, problem = False, ""
        for attempt in range(self.retry.tries):
            self._go_on(part)
            signed = self.signer.url(part.number, fresh)
            if signed.size != part.size:
                raise PlexzoomError(
                    f"The server expects {signed.size} bytes for part {part.number}, "
                    f"the file holds {part.size}: start the upload again."
                )
            sent = 0

            def count(n: int) -> None:
                nonlocal sent
                self._go_on(part)  # raised inside the body's iterator: the PUT is dropped
                sent += n
                self.counted(n)

            headers = {**signed.headers, "content-length": str(part.size)}
            retry_after: float | None = None
            try:
                answer = self.http.put(signed.url, content=part.chunks(count), headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if answer.status_code < 300:
                    return StoredPart(part.size, etag_of(answer, part.number), crc32)
                problem = f"HTTP {answer.status_code}"
                fresh = answer.status_code == 403
                if not (fresh or answer.status_code == 429 or answer.status_code >= 500):
                    check(answer)  # raises: the part is refused (400: not the bytes hashed, ...)
                retry_after = seconds(answer.headers.get("retry-after"))
            self.counted(-sent)
            if attempt + 1 < self.retry.tries:
                self.sleep(self.retry.delay(attempt, retry_after))
        raise ServerUnreachable(
            f"Part {part.number} of {part.path.name} failed {self.retry.tries} times "
            f"(last: {problem}); run the upload again to resume."
        )

    def _go_on(self, part: FilePart) -> None:
        """Raise Stopped once the stop event is set."""
        if self.stop.is_set():
            raise Stopped(part.path.name)


def etag_of(answer: httpx.Response, number: int) -> str:
    """The ETag a part's PUT answered (completion names it)."""
    etag = answer.headers.get("etag")
    if not etag:
        raise PlexzoomError(f"The storage answered part {number} without an ETag.")
    return str(etag)


def seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (its date form is ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
