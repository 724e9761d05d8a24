"""Access control without a framework: API keys, signed tile tokens, the token secret.

A tile token is ``{expiry}.{signature}``: ``expiry`` in Unix seconds, ``signature`` the URL-safe
base64 (no padding) of HMAC-SHA256(secret, "{image id}/{generation}/{expiry}"). It opens every
pyramid of one generation of one image until it expires, and nothing else.
"""

import base64
import contextlib
import hashlib
import hmac
import math
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from plexzoom.core.errors import Forbidden, NotAuthenticated

SECRET_BYTES = 32
MAX_TOKEN_CHARS = 80


@dataclass(frozen=True)
class Token:
    """A signed tile token and when it stops opening tiles (Unix seconds)."""

    value: str
    expires: int

    def seconds_left(self) -> int:
        """Whole seconds until the token expires (0 once it has)."""
        return max(0, int(self.expires - time.time()))


def key_fingerprint(key: str) -> str:
    """A name for a key in logs: the first 8 hex digits of its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def key_owner(key: str | None) -> str:
    """Who owns what a key starts (a resumable upload): the SHA-256 of the key, never the key;
    "" for no key (an open API)."""
    return hashlib.sha256(key.encode()).hexdigest() if key else ""


def match_key(presented: str, keys: tuple[str, ...]) -> bool:
    """True when ``presented`` is one of ``keys`` (each compared in constant time)."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, else None."""
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


class TokenSigner:
    """Issues and checks tile tokens with one server secret."""

    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("The token secret must be at least 16 bytes.")
        self.secret, self.ttl_s = secret, ttl_s

    def issue(self, image_id: str, generation: str, now: float | None = None) -> Token:
        """A token for one image generation, valid for ttl_s seconds from now."""
        # Rounded up: a token opens tiles for at least ttl_s seconds.
        expires = math.ceil(now if now is not None else time.time()) + self.ttl_s
        return Token(f"{expires}.{self._sign(image_id, generation, expires)}", expires)

    def check(self, token: str | None, image_id: str, generation: str) -> int:
        """The token's expiry if it opens this image generation now; raises otherwise."""
        if not token:
            raise NotAuthenticated("This image is private: its tile URLs need a token (t=...).")
        expiry_text, _, signature = token.partition(".")
        if len(token) > MAX_TOKEN_CHARS or not expiry_text.isdigit() or not signature:
            raise Forbidden("This tile token is malformed.")
        expires = int(expiry_text)
        if not hmac.compare_digest(
            signature.encode(), self._sign(image_id, generation, expires).encode()
        ):
            raise Forbidden("This tile token does not open this image.")
        if expires < time.time():
            raise NotAuthenticated("This tile token has expired; fetch the image status again.")
        return expires

    def _sign(self, image_id: str, generation: str, expires: int) -> str:
        message = f"{image_id}/{generation}/{expires}".encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class AccessPolicy:
    """Who may read what: no keys means open (loopback only); with keys, tokens guard tiles."""

    keys: tuple[str, ...] = ()
    signer: TokenSigner | None = None

    def __post_init__(self) -> None:
        if self.keys and self.signer is None:
            raise ValueError("API keys need a token signer for private tiles.")

    @property
    def is_open(self) -> bool:
        """True when no API keys are configured: every image is readable without a token."""
        return not self.keys

    def knows_key(self, authorization: str | None) -> bool:
        """True when an Authorization header carries one of the keys."""
        key = bearer_key(authorization)
        return key is not None and match_key(key, self.keys)


def load_or_create_secret(path: Path) -> bytes:
    """The secret stored at ``path``, created once (mode 0600) if missing.

    Every web process of one host calls this at start: the first one creates the file by an
    atomic link, the others (and later restarts) read the same secret.
    """
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(SECRET_BYTES))
        with contextlib.suppress(FileExistsError):  # another process won: use its secret
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"The token secret file {path} is too short; delete it to make a new one.")
    return text.encode()
