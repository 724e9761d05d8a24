"""Baseline for tile serving: a bare ASGI app that serves one pyramid's tiles from a dict.

Run with: BENCH_TILES_PACK=tiles.pickle uvicorn --app-dir bench memapp:app --workers 2
"""

import os
import pickle
from pathlib import Path
from typing import Any

_PUBLIC = b"public, max-age=31536000, immutable"


def _load() -> dict[str, tuple[bytes, list[tuple[bytes, bytes]]]]:
    """Path -> (body, headers) for every tile in the pack the benchmark wrote."""
    pack: dict[str, bytes] = pickle.loads(Path(os.environ["BENCH_TILES_PACK"]).read_bytes())
    return {
        path: (
            body,
            [
                (b"etag", f'"tile-{i}"'.encode()),
                (b"cache-control", _PUBLIC),
                (b"content-type", b"image/jpeg"),
                (b"content-length", str(len(body)).encode()),
            ],
        )
        for i, (path, body) in enumerate(pack.items())
    }


TILES = _load()
_MISSING = [(b"content-type", b"text/plain"), (b"content-length", b"8")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Serve a tile from memory, or 404."""
    if scope["type"] != "http":
        return
    found = TILES.get(scope["path"])
    if found is None:
        await send({"type": "http.response.start", "status": 404, "headers": _MISSING})
        await send({"type": "http.response.body", "body": b"no tile\n"})
        return
    body, headers = found
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
