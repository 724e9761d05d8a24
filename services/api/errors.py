"""The one table that maps plexzoom errors to HTTP answers (JSON, never a traceback)."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from plexzoom.api.upload import BadUpload
from plexzoom.core import access, errors
from plexzoom.core.render import BadRenderSettings

log = logging.getLogger(__name__)

STATUS_CODES: dict[type[errors.PlexzoomError], int] = {
    access.NotAuthenticated: 401,
    access.Forbidden: 403,
    errors.NotFound: 404,
    errors.UnsupportedFormat: 415,
    errors.ImageTooLarge: 413,
    errors.CorruptImage: 422,
    errors.BadRequest: 400,
    errors.Conflict: 409,
    errors.DamagedRecord: 409,
    BadRenderSettings: 400,
    BadUpload: 400,
    errors.StorageError: 503,
    errors.BrokerError: 503,
}


def status_for(exc: errors.PlexzoomError) -> int:
    """HTTP status for an error (the nearest class in the table wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 400


async def _plexzoom_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.PlexzoomError)
    status = status_for(exc)
    headers = None
    if status == 413:
        headers = {"Connection": "close"}  # the rest of the body is unread
    elif status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="plexzoom"'}
    return JSONResponse({"detail": exc.message}, status_code=status, headers=headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
    return JSONResponse({"detail": "Something went wrong on the server; try again."}, 500)


async def _client_gone(_request: Request, _exc: Exception) -> Response:
    log.info("client disconnected during a request")
    return Response(status_code=400)  # nobody is listening; this only ends the exchange


def install_error_handlers(app: FastAPI) -> None:
    """Register the table with the app."""
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(errors.PlexzoomError, _plexzoom_error)
    app.add_exception_handler(Exception, _unexpected)
