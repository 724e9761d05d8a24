"""Object storage: one interface, a local-folder backend and an S3 backend."""

from plexzoom.core.storage.base import ObjectInfo, ObjectWriter, Part, Storage, UploadInfo
from plexzoom.core.storage.local import LocalStorage
from plexzoom.core.storage.s3 import S3Config, S3Storage

__all__ = [
    "LocalStorage",
    "ObjectInfo",
    "ObjectWriter",
    "Part",
    "S3Config",
    "S3Storage",
    "Storage",
    "UploadInfo",
]
