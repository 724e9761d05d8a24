"""S3 event notifications as AWS, MinIO, RustFS, Ceph RGW and versitygw send them.

An event is a hint that an object may have been created, never the truth: the object is looked
up in storage before anything is claimed (a MinIO ``ObjectCreated:Post`` can come before its
multipart upload completes, and events come late, twice and out of order).

Variations handled: ``eventName`` with or without the ``s3:`` prefix; keys URL-encoded with
``+`` for a space; ``size`` as a string or missing; no ``sequencer``; ``s3:TestEvent`` bodies
without records; several records per body; a record that is not an object creation.
"""

from typing import Any
from urllib.parse import unquote_plus


def created_keys(body: Any, bucket: str | None) -> list[str]:
    """Keys of the objects a notification body says were created in ``bucket`` (None: any),
    each once, in order; anything else in the body is ignored."""
    records = body.get("Records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        return []  # s3:TestEvent, or not a notification at all
    found: list[str] = []
    for record in records:
        key = _created_key(record, bucket)
        if key is not None and key not in found:
            found.append(key)
    return found


def _created_key(record: Any, bucket: str | None) -> str | None:
    """The key of one ObjectCreated record in ``bucket``, else None."""
    if not isinstance(record, dict):
        return None
    name = str(record.get("eventName", "")).removeprefix("s3:")
    s3 = record.get("s3")
    if not name.startswith("ObjectCreated:") or not isinstance(s3, dict):
        return None
    where, what = s3.get("bucket"), s3.get("object")
    if not isinstance(where, dict) or not isinstance(what, dict):
        return None
    key = what.get("key")
    if not isinstance(key, str) or not key:
        return None
    if bucket is not None and where.get("name") != bucket:
        return None
    return unquote_plus(key)
