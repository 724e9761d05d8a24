"""The project's error tree, and the one table that maps it to HTTP answers.

Each error carries a sentence a user can act on. Adapters translate library errors (boto3,
pyvips) into these at the edge with ``raise ... from``; the api and the tile service answer
every one of them through ``HTTP_STATUS`` (never a traceback, never a 500).
"""

from dataclasses import dataclass


class PlexzoomError(Exception):
    """Base of every error plexzoom raises on purpose."""

    #: Permanent errors are never retried by the worker.
    permanent = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Requests -------------------------------------------------------------------------------------


class NotAuthenticated(PlexzoomError):
    """No credential, or one that has expired: get a (new) one and try again."""


class Forbidden(PlexzoomError):
    """A credential that does not open this resource."""


class NotFound(PlexzoomError):
    """The image, pyramid or tile does not exist."""


class BadRequest(PlexzoomError):
    """A request whose parameters cannot be used (a pixel outside the image, ...)."""


class BadUpload(BadRequest):
    """The request is not a well-formed multipart upload with a file."""


class BadRenderSettings(BadRequest, ValueError):
    """Render settings or a render query that cannot be used."""


class Conflict(PlexzoomError):
    """The request conflicts with the image's current state."""


class WriteConflict(Conflict):
    """A conditional write lost: the object changed (or vanished) since it was read."""

    permanent = False

    def __init__(self, message: str = "The image changed meanwhile; try again.") -> None:
        super().__init__(message)


class DamagedRecord(PlexzoomError):
    """An image's stored record cannot be read."""


# Images -----------------------------------------------------------------------------------------


class UnsupportedFormat(PlexzoomError):
    """The upload is not in a format plexzoom reads."""


class ImageTooLarge(PlexzoomError):
    """The upload or the image exceeds a configured limit."""


class CorruptImage(PlexzoomError):
    """The file claims a supported format but cannot be decoded."""


# Services plexzoom depends on -------------------------------------------------------------------


class StorageError(PlexzoomError):
    """Object storage did not answer as expected; usually transient."""

    permanent = False


class BrokerError(PlexzoomError):
    """The job queue did not answer; usually transient."""

    permanent = False


# Jobs (the worker's; they never reach an HTTP answer) ------------------------------------------


class LeaseLost(PlexzoomError):
    """Another job holds the image now, or the image was deleted or re-queued."""

    permanent = False


class ChildCrashed(PlexzoomError):
    """The conversion child died without an answer (a signal, a crash): a counted, retried
    attempt."""

    permanent = False


# The HTTP table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """How the api and the tile service answer an error."""

    api: int
    tiles: int


HTTP_STATUS: dict[type[PlexzoomError], Answer] = {
    NotAuthenticated: Answer(401, 401),
    Forbidden: Answer(403, 403),
    NotFound: Answer(404, 404),
    BadRequest: Answer(400, 400),  # BadUpload and BadRenderSettings too
    # A tile URL names one committed pyramid. While an image is uploading, converting or failed
    # (Conflict), or its record cannot be read (DamagedRecord), that pyramid is not there: the
    # tile service says 404 "No such tile." like for any other absent tile, which DZI clients
    # (OpenSeadragon) treat as a missing tile rather than an error, and which tells a prober
    # nothing about the image's state. The api explains the state with a 409.
    Conflict: Answer(409, 404),
    DamagedRecord: Answer(409, 404),
    UnsupportedFormat: Answer(415, 415),
    ImageTooLarge: Answer(413, 413),
    CorruptImage: Answer(422, 422),
    StorageError: Answer(503, 503),
    BrokerError: Answer(503, 503),
    # Never raised out of a request; if one ever were, the caller may simply try again.
    LeaseLost: Answer(503, 503),
    ChildCrashed: Answer(503, 503),
}


def answer_for(exc: PlexzoomError) -> Answer:
    """The HTTP answer of an error: its nearest class in the table."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return HTTP_STATUS[BadRequest]  # PlexzoomError itself: a request we could not use
