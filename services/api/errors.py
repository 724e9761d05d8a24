"""The api's answers to errors: JSON with the error's sentence, never a traceback (statuses:
plexzoom.core.errors.HTTP_STATUS, the table the tile service uses too)."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from plexzoom.core import errors

log = logging.getLogger(__name__)


def status_for(exc: errors.PlexzoomError) -> int:
    """The api's HTTP status for an error (the table: plexzoom.core.errors.HTTP_STATUS)."""
    return errors.answer_for(exc).api


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
