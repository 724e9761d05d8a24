"""POST /hooks/s3: S3 event notifications from MinIO, RustFS, Ceph RGW or versitygw.

Outside /v1 (those servers cannot send an API key): a token of its own, as
``Authorization: Bearer`` or ``?token=`` (Ceph can only set a URL). The route exists only
while PLEXZOOM_S3_HOOK_TOKEN is set. It answers at once: each created key is queued for the
worker, which looks the object up and takes it as a scan would; nothing is converted here.
"""

import json
from collections.abc import Callable
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

from plexzoom.api.deps import SettingsDep
from plexzoom.core.access import bearer_key, match_key
from plexzoom.core.events import created_keys

router = APIRouter(tags=["storage events"])
MAX_BODY = 1024 * 1024  # a notification lists a few records
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Accepted(BaseModel):
    """What the hook queued."""

    queued: int


def require_hook_token(
    request: Request, settings: SettingsDep, token: Annotated[str | None, Query()] = None
) -> None:
    """Let an event in only with the hook's token (header or query), compared in constant time."""
    expected = settings.s3_hook_token
    presented = bearer_key(request.headers.get("authorization")) or token
    if expected is None or presented is None:
        raise HTTPException(401, "The hook needs its token.", CHALLENGE)
    if not match_key(presented, (expected.get_secret_value(),)):
        raise HTTPException(
            401, "The hook's token is not this one.", {"WWW-Authenticate": "Bearer"}
        )


HookToken = Depends(require_hook_token)


@router.head("/hooks/s3", dependencies=[HookToken], include_in_schema=False)
async def probe() -> Response:
    """MinIO checks the endpoint with a HEAD before it sends events."""
    return Response(status_code=200)


@router.post("/hooks/s3", dependencies=[HookToken], status_code=202)
async def s3_event(request: Request, settings: SettingsDep) -> Accepted:
    """Queue every object an S3 notification says was created in the inbox."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"An event body is at most {MAX_BODY} bytes.")
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise HTTPException(400, "The body is not JSON (an S3 event notification).") from exc
    wanted = [
        key
        for key in created_keys(event, settings.s3_bucket)
        if key.startswith(settings.inbox_prefix)
    ]
    enqueue: Callable[[str], None] = request.app.state.enqueue_hint
    for key in wanted:
        await to_thread.run_sync(enqueue, key)
    return Accepted(queued=len(wanted))
