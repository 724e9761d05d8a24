"""Image and generation ids: unguessable, yet they sort newest first.

An image id is 26 Crockford base32 characters: 10 for ``2**48 - 1 - milliseconds`` (so a
plain ascending listing of ``images/`` is newest first) and 16 for 80 random bits from the
operating system's CSPRNG, as in a ULID with the time inverted.
"""

import re
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_MAX_MS = 2**48 - 1
ID_PATTERN = re.compile(r"[0-9a-hjkmnp-tv-z]{26}")
GENERATION_PATTERN = re.compile(r"[0-9a-hjkmnp-tv-z]{12}")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_image_id(now_ms: int | None = None) -> str:
    """Return a new image id that sorts before every older one."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return _encode(_MAX_MS - ms, 10) + _encode(secrets.randbits(80), 16)


def new_generation() -> str:
    """Return a new pyramid generation id (60 random bits)."""
    return _encode(secrets.randbits(60), 12)


def is_image_id(text: str) -> bool:
    """True when ``text`` has the shape of an image id (checked before it becomes a key)."""
    return bool(ID_PATTERN.fullmatch(text))


def is_generation(text: str) -> bool:
    """True when ``text`` has the shape of a generation id."""
    return bool(GENERATION_PATTERN.fullmatch(text))
