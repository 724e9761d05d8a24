"""What every web service puts around its app: CORS (only for the configured origins) and the
access log (plexzoom.core.accesslog)."""

from typing import Any

from starlette.middleware.cors import CORSMiddleware

from plexzoom.core.accesslog import AccessLog
from plexzoom.settings import WebSettings

ASGIApp = Any


def wrap_app(app: ASGIApp, settings: WebSettings) -> ASGIApp:
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
