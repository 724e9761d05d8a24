"""S3 -> SQS notifications on moto's server (S3 and SQS in one process): objects taken once,
whatever the events do; a message deleted only once its objects are claimed.

moto delivers each event once, in order, without ``sequencer`` or ``versionId``: duplicates,
reordering, early events and SNS wrapping are injected by the tests themselves.
"""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from plexzoom.core.errors import StorageError
from plexzoom.core.inbox import Inbox
from plexzoom.core.sqs import SqsQueue, poll_queue
from plexzoom.core.storage import S3Storage, Storage
from tests.conftest import quadrant_bytes
from tests.core.test_inbox import Queue, images

PNG = quadrant_bytes("png", 64, 48)


@pytest.fixture
def queue(moto_endpoint: str, s3_storage: S3Storage) -> Iterator[SqsQueue]:
    """A queue that the bucket notifies of every object created under inbox/."""
    client = sqs(moto_endpoint)
    url = client.create_queue(QueueName=f"events-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    s3_storage.client.put_bucket_notification_configuration(
        Bucket=s3_storage.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "inbox/"}]}},
                }
            ]
        },
    )
    # S3 (and moto) sends an s3:TestEvent when the configuration is set: consumed here.
    for message in client.receive_message(QueueUrl=url).get("Messages", []):
        assert "s3:TestEvent" in message["Body"]
        client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    yield SqsQueue(url, wait_s=0)
    client.delete_queue(QueueUrl=url)


def sqs(endpoint: str) -> Any:
    """An SQS client of moto's server."""
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")


def inbox(storage: S3Storage) -> Inbox:
    """The bucket's inbox."""
    return Inbox(prefix="inbox/", bucket=storage.bucket)


def waiting(endpoint: str, queue: SqsQueue) -> int:
    """Messages in the queue, visible or in flight (received, not deleted)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    found = sqs(endpoint).get_queue_attributes(QueueUrl=queue.url, AttributeNames=names)
    return sum(int(found["Attributes"][name]) for name in names)


def test_an_object_put_is_taken_on_its_event(
    moto_endpoint: str, s3_storage: S3Storage, queue: SqsQueue
) -> None:
    """moto sends the event; one poll takes the object and deletes the message."""
    s3_storage.put_bytes("inbox/lab 3/slide+1.png", PNG)
    queued = Queue()
    received = poll_queue(sqs(moto_endpoint), queue, s3_storage, inbox(s3_storage), queued)
    assert (received.messages, received.deleted, len(received.taken)) == (1, 1, 1)
    assert queued.ids == received.taken == images(s3_storage)
    assert waiting(moto_endpoint, queue) == 0


def send(endpoint: str, queue: SqsQueue, body: Any) -> None:
    """Put a message into the queue by hand (a duplicate, a late or an early event)."""
    text = body if isinstance(body, str) else json.dumps(body)
    sqs(endpoint).send_message(QueueUrl=queue.url, MessageBody=text)


def event(bucket: str, *keys: str) -> dict[str, Any]:
    """An S3 notification as AWS writes it (keys URL-encoded)."""
    records = [
        {
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": k.replace(" ", "+")}},
        }
        for k in keys
    ]
    return {"Records": records}


def test_duplicate_reordered_and_early_events_make_one_image_each(
    moto_endpoint: str, s3_storage: S3Storage, queue: SqsQueue
) -> None:
    """An event before its object, the same event three times, two objects out of order,
    one through SNS: every message ends deleted, every object one image."""
    bucket = s3_storage.bucket
    send(moto_endpoint, queue, event(bucket, "inbox/late.png"))  # before the object exists
    s3_storage.put_bytes("inbox/a.png", PNG)
    s3_storage.put_bytes("inbox/b c.png", PNG)
    for _ in range(2):
        send(moto_endpoint, queue, event(bucket, "inbox/b c.png", "inbox/a.png"))
    sns = {"Type": "Notification", "Message": json.dumps(event(bucket, "inbox/a.png"))}
    send(moto_endpoint, queue, sns)
    send(moto_endpoint, queue, {"Service": "Amazon S3", "Event": "s3:TestEvent"})
    send(moto_endpoint, queue, "not json at all")
    taken = drain(moto_endpoint, queue, s3_storage)
    assert sorted(taken) == images(s3_storage) and len(taken) == 2
    assert waiting(moto_endpoint, queue) == 0
    s3_storage.put_bytes("inbox/late.png", PNG)  # its own event comes now
    assert len(drain(moto_endpoint, queue, s3_storage)) == 1
    assert len(images(s3_storage)) == 3


def drain(endpoint: str, queue: SqsQueue, storage: Storage) -> list[str]:
    """Poll until the queue is empty (bounded); the ids of the images taken."""
    taken: list[str] = []
    for _ in range(20):
        assert isinstance(storage, S3Storage)
        received = poll_queue(sqs(endpoint), queue, storage, inbox(storage), Queue())
        taken += received.taken
        if received.messages == 0:
            return taken
    raise AssertionError("the queue did not empty in 20 polls")


class BrokenStat:
    """A store whose lookups fail (storage unwell): nothing can be claimed."""

    def __init__(self, inner: S3Storage) -> None:
        self.inner = inner

    def stat(self, key: str) -> None:
        raise StorageError("Object storage refused to look up an object (SlowDown).")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_message_whose_object_cannot_be_claimed_stays(
    moto_endpoint: str, s3_storage: S3Storage, queue: SqsQueue
) -> None:
    """Storage fails: the message is not deleted and comes back (here at once: a visibility
    timeout of 0); with storage well again it is taken and deleted."""
    client = sqs(moto_endpoint)
    client.set_queue_attributes(QueueUrl=queue.url, Attributes={"VisibilityTimeout": "0"})
    s3_storage.put_bytes("inbox/a.png", PNG)
    broken = BrokenStat(s3_storage)
    received = poll_queue(client, queue, broken, inbox(s3_storage), Queue())  # type: ignore[arg-type]
    assert (received.messages, received.deleted) == (1, 0)
    assert waiting(moto_endpoint, queue) == 1 and images(s3_storage) == []
    received = poll_queue(client, queue, s3_storage, inbox(s3_storage), Queue())
    assert (received.messages, received.deleted, len(received.taken)) == (1, 1, 1)
    assert waiting(moto_endpoint, queue) == 0
