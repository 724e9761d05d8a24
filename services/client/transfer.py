"""Sending parts: presigned URLs signed in batches just before use, PUTs retried with backoff."""

from __future__ import annotations

import base64
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from plexzoom.client.errors import PlexzoomError, ServerUnreachable, Stopped, check
from plexzoom.client.models import SignedPart
from plexzoom.client.parts import FilePart

SIGN_BATCH = 100  # URLs signed per call (the server takes up to 1,000)
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
    """Part URLs of one upload, signed ``SIGN_BATCH`` at a time as the threads reach them."""

    def __init__(
        self,
        sign: Callable[[list[int]], tuple[list[SignedPart], int]],
        numbers: list[int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sign, self.numbers, self.clock = sign, numbers, clock
        self._signed: dict[int, tuple[SignedPart, float]] = {}
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def url(self, number: int, fresh: bool = False) -> SignedPart:
        """Part ``number``'s URL; ``fresh``: sign it again (the last one was refused)."""
        with self._lock:
            hit = self._signed.pop(number, None)
            if hit is None or fresh or self.clock() >= hit[1]:
                self._sign_from(number)
                hit = self._signed.pop(number)
            self._used.add(number)
            return hit[0]

    def _sign_from(self, number: int) -> None:
        """Sign ``number`` and the earliest parts not signed or sent yet, in one call."""
        taken = self._used | self._signed.keys() | {number}
        later = [n for n in self.numbers if n not in taken]
        batch = [number, *later[: SIGN_BATCH - 1]]
        parts, expires_in = self.sign(batch)
        good_until = self.clock() + expires_in * EXPIRY_MARGIN
        self._signed.update({p.number: (p, good_until) for p in parts})
        if number not in self._signed:
            raise PlexzoomError(f"The server signed no URL for part {number}.")


class PartSender:
    """PUTs one part at a time to its presigned URL: explicit Content-Length, Content-MD5,
    no Authorization; network errors, 5xx and 429 are retried, a 403 is signed again. Once
    ``stop`` is set no try starts, and a PUT under way is abandoned at its next chunk."""

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

    def send(self, part: FilePart) -> str:
        """Send the part; the ETag its PUT answered."""
        self._go_on(part)
        md5 = part.md5()
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
            if signed.md5_header:
                headers["content-md5"] = base64.b64encode(md5).decode()
            retry_after: float | None = None
            try:
                answer = self.http.put(signed.url, content=part.chunks(count), headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if answer.status_code < 300:
                    etag = etag_of(answer, part.number)
                    if matches(etag, md5):
                        return etag
                    problem = f"the storage holds other bytes (ETag {etag}, MD5 {md5.hex()})"
                else:
                    problem = f"HTTP {answer.status_code}"
                    fresh = answer.status_code == 403
                    if not (fresh or answer.status_code == 429 or answer.status_code >= 500):
                        check(answer)  # raises: the part itself is refused (400 bad digest, ...)
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


def matches(etag: str, md5: bytes) -> bool:
    """Whether a part's ETag fits its MD5: plexzoom's storage answers a part's MD5 in hex (the
    protocol says so), which catches bytes changed on the way where no Content-MD5 is sent;
    an ETag of another form is taken as it is."""
    plain = etag.strip('"').lower()
    return not re.fullmatch(r"[0-9a-f]{32}", plain) or plain == md5.hex()


def takes_md5(url: str) -> bool:
    """Whether a Content-MD5 header may be added to a PUT to ``url``: not to an S3 URL
    presigned with signature version 2, whose signature covers Content-MD5 (as signed: none)."""
    query = parse_qs(urlsplit(url).query)
    return not ("Signature" in query and "AWSAccessKeyId" in query)


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
