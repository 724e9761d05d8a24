"""The command's exit codes, in one place (README, "Command line and Python client")."""

from __future__ import annotations

from enum import IntEnum

from plexzoom.client.errors import (
    AuthError,
    NotFound,
    PlexzoomError,
    ServerUnreachable,
    WaitTimeout,
)


class Exit(IntEnum):
    """What the ``plexzoom`` command's exit status means."""

    OK = 0
    FAILED = 1  # an image failed, or the server refused a file or a request
    USAGE = 2  # a wrong command line or config file (click's own code for usage errors)
    UNREACHABLE = 3  # no answer from the server, or it failed (5xx)
    NOT_AUTHORISED = 4  # no API key, or one the server does not take
    NOT_FOUND = 5  # no such image
    TIMEOUT = 6  # wait --timeout ran out while images were still converting
    INTERRUPTED = 130  # Ctrl-C (the shell's convention: 128 + SIGINT); an upload resumes


def exit_for(exc: PlexzoomError) -> Exit:
    """The exit code of an error."""
    for kind, code in (
        (AuthError, Exit.NOT_AUTHORISED),
        (NotFound, Exit.NOT_FOUND),
        (ServerUnreachable, Exit.UNREACHABLE),
        (WaitTimeout, Exit.TIMEOUT),
    ):
        if isinstance(exc, kind):
            return code
    return Exit.FAILED
