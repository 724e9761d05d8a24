"""The project's error tree: each error carries a sentence a user can act on.

Services map these to HTTP status codes in one table; adapters translate library errors
(boto3, pyvips) into them at the edge with ``raise ... from``.
"""


class PlexzoomError(Exception):
    """Base of every error plexzoom raises on purpose."""

    #: Permanent errors are never retried by the worker.
    permanent = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(PlexzoomError):
    """The image, pyramid or tile does not exist."""


class UnsupportedFormat(PlexzoomError):
    """The upload is not in a format plexzoom reads."""


class ImageTooLarge(PlexzoomError):
    """The upload or the image exceeds a configured limit."""


class CorruptImage(PlexzoomError):
    """The file claims a supported format but cannot be decoded."""


class BadRequest(PlexzoomError):
    """A request whose parameters cannot be used (a pixel outside the image, ...)."""


class Conflict(PlexzoomError):
    """The request conflicts with the image's current state."""


class WriteConflict(Conflict):
    """A conditional write lost: the object changed (or vanished) since it was read."""

    permanent = False

    def __init__(self, message: str = "The image changed meanwhile; try again.") -> None:
        super().__init__(message)


class DamagedRecord(PlexzoomError):
    """An image's stored record cannot be read."""


class StorageError(PlexzoomError):
    """Object storage did not answer as expected; usually transient."""

    permanent = False


class BrokerError(PlexzoomError):
    """The job queue did not answer; usually transient."""

    permanent = False
