"""The plexzoom client: ``Client`` for Python (and notebooks), the ``plexzoom`` command.

It needs httpx (and click and rich for the command), never the server's packages::

    from plexzoom.client import Client

    with Client("http://127.0.0.1:8000", key="...") as plexzoom:
        result = plexzoom.upload("slide.tif")
        image = plexzoom.wait([result.image.id])[result.image.id]
"""

from plexzoom.client.client import DEFAULT_URL, Client
from plexzoom.client.errors import (
    AuthError,
    NotFound,
    PlexzoomError,
    Refused,
    ServerUnreachable,
    Stopped,
    WaitTimeout,
)
from plexzoom.client.models import Image, ImagePage, UploadProgress, UploadResult

__all__ = [
    "DEFAULT_URL",
    "AuthError",
    "Client",
    "Image",
    "ImagePage",
    "NotFound",
    "PlexzoomError",
    "Refused",
    "ServerUnreachable",
    "Stopped",
    "UploadProgress",
    "UploadResult",
    "WaitTimeout",
]
