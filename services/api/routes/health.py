"""GET /healthz: 200 only when storage and the broker answer."""

from collections.abc import Callable

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from plexzoom.api.deps import StorageDep
from plexzoom.core.errors import PlexzoomError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request, storage: StorageDep) -> JSONResponse:
    """Check storage and the job queue."""
    ping_broker: Callable[[], None] = request.app.state.ping_broker
    checks: dict[str, str] = {}
    for name, probe in (("storage", storage.ping), ("broker", ping_broker)):
        try:
            await to_thread.run_sync(probe)
            checks[name] = "ok"
        except PlexzoomError as exc:
            checks[name] = exc.message
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unhealthy", **checks}, status_code=200 if healthy else 503
    )
