"""The client's errors: a small tree, each carrying the sentence the server sent (``detail``)."""

from __future__ import annotations

import json
import re

import httpx


class PlexzoomError(Exception):
    """Anything the client cannot do; ``detail`` says why in a sentence."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.status = detail, status


class AuthError(PlexzoomError):
    """The server wants a (valid) API key: 401, or 403 from the API."""


class NotFound(PlexzoomError):
    """No such image or upload (404)."""


class Refused(PlexzoomError):
    """The server refused the request (any other 4xx): ``status`` and ``detail`` say why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail, status)


class ServerUnreachable(PlexzoomError):
    """No answer (connection refused, timeout) or a server failure (5xx)."""


class WaitTimeout(PlexzoomError):
    """Images were still converting when the wait ran out."""


class Stopped(PlexzoomError):
    """An upload stopped before it finished (Ctrl-C, its stop event, another file's fatal
    error); what it sent is kept, so uploading the file again resumes it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"The upload of {name} was stopped; upload it again to resume.")


def fatal(exc: PlexzoomError) -> bool:
    """True when the error concerns every item, not one (the server, the key): stop at once."""
    return isinstance(exc, AuthError | ServerUnreachable)


def detail_of(response: httpx.Response) -> str:
    """The server's sentence: JSON ``detail``, an S3 error's Message, or the start of the body."""
    body = response.text
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # FastAPI's 422: one entry per malformed field
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    message = re.search(r"<Message>(.*?)</Message>", body, re.S)
    if message:
        return message.group(1).strip()
    text = body.strip()[:300]
    return text or f"HTTP {response.status_code} {response.reason_phrase}".strip()


def check(response: httpx.Response) -> httpx.Response:
    """The response when it is a success; else the error that fits its status."""
    status = response.status_code
    if status < 400:
        return response
    response.read()
    detail = detail_of(response)
    if status in (401, 403):
        raise AuthError(detail, status)
    if status == 404:
        raise NotFound(detail, status)
    if status >= 500:
        raise ServerUnreachable(f"The server failed ({status}): {detail}", status)
    raise Refused(status, detail)


def unreachable(url: str, exc: httpx.TransportError) -> ServerUnreachable:
    """A transport failure as a sentence that names the server."""
    kind = "did not answer in time" if isinstance(exc, httpx.TimeoutException) else "is unreachable"
    return ServerUnreachable(f"The plexzoom server at {url} {kind} ({exc}).")
