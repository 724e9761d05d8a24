"""API keys on /v1 (the access policy itself: plexzoom.core.access, built by plexzoom.settings)."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from plexzoom.core.access import AccessPolicy
from plexzoom.core.errors import NotAuthenticated

_bearer = HTTPBearer(auto_error=False, description="One of the keys in PLEXZOOM_API_KEYS.")
# The answer every /v1 route documents besides its own (when API keys are configured).
KEY_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or one that is not accepted (only when keys are set)."}
}
ASGIApp = Any


def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let a /v1 call through only with a configured API key (when keys are configured)."""
    access: AccessPolicy = request.app.state.access
    if access.is_open:
        return
    if credentials is None:
        raise NotAuthenticated("This server needs an API key: send 'Authorization: Bearer <key>'.")
    if not access.knows_key(f"Bearer {credentials.credentials}"):
        raise NotAuthenticated("This API key is not accepted here; check it and try again.")
