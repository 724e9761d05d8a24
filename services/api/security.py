"""API keys on /v1, the access policy built from settings, CORS and the access log."""

import logging
import re
import time
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.cors import CORSMiddleware

from plexzoom.api.config import ApiSettings
from plexzoom.core.access import (
    AccessPolicy,
    NotAuthenticated,
    TokenSigner,
    bearer_key,
    key_fingerprint,
    load_or_create_secret,
)

access_log = logging.getLogger("plexzoom.access")
_IMAGE_IN_PATH = re.compile(r"^/(?:v1/images|tiles)/([0-9a-z]{26})(?:/|$)")
_bearer = HTTPBearer(auto_error=False, description="One of the keys in PLEXZOOM_API_KEYS.")
# The answer every /v1 route documents besides its own (when API keys are configured).
KEY_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or one that is not accepted (only when keys are set)."}
}
ASGIApp = Any


def build_access(settings: ApiSettings) -> AccessPolicy:
    """The access policy of the settings (reads or creates the token secret when keys are set)."""
    keys = settings.api_key_list
    if not keys:
        return AccessPolicy()
    if settings.token_secret is not None:
        secret = settings.token_secret.get_secret_value().encode()
    else:
        secret = load_or_create_secret(settings.data_dir / "secrets" / "token-secret")
    return AccessPolicy(keys, TokenSigner(secret, settings.token_ttl_s))


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


class AccessLog:
    """One line per HTTP request: method, path (never the query), status, key fingerprint, image."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def record_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            access_log.info("%s", describe_request(scope, status, time.perf_counter() - started))


class AccessFormatter(logging.Formatter):
    """``2026-11-25T16:00:00.123Z access <line>``: UTC, the date formatted once a second (one
    line per tile request is the hot path; strftime per line cost more than the line)."""

    def __init__(self) -> None:
        super().__init__("%(message)s")
        self._second, self._stamp = -1, ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        millis = int((record.created - second) * 1000)
        return f"{self._stamp}.{millis:03d}Z access {record.getMessage()}"


def describe_request(scope: dict[str, Any], status: int, seconds: float) -> str:
    """The access log line of a request (the key by fingerprint; tokens live in the query)."""
    authorization = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
    key = bearer_key(authorization)
    path: str = scope["path"]
    found = _IMAGE_IN_PATH.match(path)
    return (
        f"{scope['method']} {path[:300]!r} {status or '-'} "
        f"key={key_fingerprint(key) if key else '-'} "
        f"image={found.group(1) if found else '-'} {seconds * 1000:.1f}ms"
    )


def wrap_app(app: ASGIApp, settings: ApiSettings) -> ASGIApp:
    """Add CORS (only for the configured origins) and the access log around the whole origin."""
    if settings.cors_origins:
        app = CORSMiddleware(
            app,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            expose_headers=["ETag"],
            max_age=600,
        )
    if settings.access_log:
        app = AccessLog(app)
    return app
