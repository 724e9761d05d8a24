"""API keys on /v1, the access policy built from settings, CORS (and the access log around it)."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.cors import CORSMiddleware

from plexzoom.api.accesslog import AccessLog
from plexzoom.api.config import ApiSettings
from plexzoom.core.access import AccessPolicy, TokenSigner, load_or_create_secret
from plexzoom.core.errors import NotAuthenticated

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
