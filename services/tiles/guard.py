"""Who may read a tile, and for how long caches may keep it (tokens: plexzoom.core.access).

A tile is served only from a pyramid its image's manifest names: the job names its pyramids in
the manifest in the same write that commits it, so a half-written or replaced pyramid is never
visible, while the committed one stays readable during a re-conversion (which builds under a new
generation) and after a failed one.
"""

import time
from typing import Any
from urllib.parse import parse_qs

from plexzoom.core.access import AccessPolicy
from plexzoom.core.errors import Forbidden, NotFound
from plexzoom.core.manifest import Manifest
from plexzoom.tiles.composite import NAME as RENDER

PUBLIC = b"public, max-age=31536000, immutable"
CHANGEABLE_S = 60  # tiles that follow saved render defaults, which can change
Scope = dict[str, Any]


def admit(
    access: AccessPolicy, scope: Scope, manifest: Manifest, gen: str, name: str
) -> int | None:
    """Check the request's credential and that the manifest commits this pyramid; None when
    anyone may read it, else how many seconds a private cache may keep it. Raises otherwise."""
    private_for = _private_for(access, scope, manifest, gen)
    if not commits(manifest, gen, name):
        raise NotFound("No such pyramid.")  # half-written, replaced or failed
    return private_for


def commits(manifest: Manifest, gen: str, name: str) -> bool:
    """True when the manifest names pyramid ``name`` of generation ``gen`` (committed)."""
    committed = manifest.pyramids.get("c0" if name == RENDER else name)
    return committed is not None and committed.generation == gen


def cache_control(private_for: int | None, changeable: bool = False) -> bytes:
    """A year for public tiles, the credential's remaining life for private ones; at most a
    minute for tiles that follow changeable render defaults."""
    if private_for is None:
        return f"public, max-age={CHANGEABLE_S}".encode() if changeable else PUBLIC
    seconds = min(private_for, CHANGEABLE_S) if changeable else private_for
    return f"private, max-age={seconds}".encode()


def _private_for(access: AccessPolicy, scope: Scope, manifest: Manifest, gen: str) -> int | None:
    """None when anyone may read the image, else the seconds the request's credential (an API
    key, or the tile token in ``t=``) has left; raises when it has none that opens it."""
    signer = access.signer
    if signer is None or manifest.public:
        return None
    if access.knows_key(header(scope, b"authorization")):
        return signer.ttl_s
    expires = signer.check(_query_token(scope), manifest.id, gen)
    return max(0, int(expires - time.time()))


def header(scope: Scope, wanted: bytes) -> str | None:
    """The value of request header ``wanted`` (a lower-case name), if it has one."""
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _query_token(scope: Scope) -> str | None:
    """The request's tile token (``t=`` in the query), if it has exactly one."""
    query = scope.get("query_string", b"")
    if b"t=" not in query:
        return None
    values = parse_qs(query.decode("latin-1")).get("t", [])
    if len(values) > 1:
        raise Forbidden("Send one tile token (t=...), not several.")
    return values[0] if values else None
