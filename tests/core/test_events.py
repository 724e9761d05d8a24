"""S3 event notifications as the servers send them: the created keys, and nothing else."""

import json
from typing import Any

from plexzoom.core.events import created_keys


def record(key: str, name: str = "ObjectCreated:Put", bucket: str = "slides", **obj: Any) -> Any:
    """One notification record, AWS layout."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, **obj}},
    }


def test_aws_records_give_their_keys_decoded() -> None:
    """Keys arrive URL-encoded with '+' for a space; '%2B' is a real plus."""
    body = {
        "Records": [
            record("inbox/lab+3/slide%201.svs", size=12, eTag="abc", sequencer="00A1"),
            record("inbox/a%2Bb+%C2%B5m.tif", name="ObjectCreated:CompleteMultipartUpload"),
        ]
    }
    assert created_keys(body, "slides") == ["inbox/lab 3/slide 1.svs", "inbox/a+b µm.tif"]


def test_minio_records_and_their_variations() -> None:
    """MinIO: 's3:' names, size as a string, no sequencer, EventName and Key at the top."""
    body = {
        "EventName": "s3:ObjectCreated:Post",
        "Key": "slides/inbox/x.tif",
        "Records": [
            record("inbox/x.tif", name="s3:ObjectCreated:Post", size="1048576"),
            record("inbox/x.tif", name="s3:ObjectCreated:Put", size="1048576"),  # once only
            record("inbox/y.tif", name="s3:ObjectCreated:Copy"),
        ],
    }
    assert created_keys(body, "slides") == ["inbox/x.tif", "inbox/y.tif"]


def test_everything_else_is_ignored() -> None:
    """Test events, removals, other buckets and damaged records give nothing, never an error."""
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "slides"}
    assert created_keys(test_event, "slides") == []
    body = {
        "Records": [
            record("inbox/gone.tif", name="ObjectRemoved:Delete"),
            record("inbox/other.tif", bucket="someone-else"),
            {"eventName": "ObjectCreated:Put"},
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": "x", "object": None}},
            record(""),
            "not a record",
            record("inbox/ok.tif"),
        ]
    }
    assert created_keys(body, "slides") == ["inbox/ok.tif"]
    for odd in (None, [], "text", 42, {"Records": "no"}, json.loads('{"Records": null}')):
        assert created_keys(odd, "slides") == []


def test_without_a_bucket_any_bucket_counts() -> None:
    """The local backend has no bucket to compare with."""
    assert created_keys({"Records": [record("inbox/a.tif", bucket="any")]}, None) == ["inbox/a.tif"]
