"""S3 event notifications through SQS (AWS S3 -> SQS, or S3 -> SNS -> SQS).

The consumer long-polls the queue and takes each created inbox object as a scan would; it
deletes a message only after every object it names is claimed in storage (or is not there, or
not for the inbox), so a consumer that dies mid-batch leaves its messages to come back after
their visibility timeout. Duplicates and reordering change nothing: the claim decides.
"""

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from plexzoom.core.errors import PlexzoomError, StorageError
from plexzoom.core.events import created_keys
from plexzoom.core.inbox import Enqueue, Inbox, key_digest, take_object
from plexzoom.core.storage import Storage

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
else:
    SQSClient = Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SqsQueue:
    """The queue S3 notifies, and how the consumer polls it."""

    url: str
    wait_s: int = 20  # long polling: an answer as soon as a message arrives, else after this
    batch: int = 10


@dataclass
class Received:
    """What one poll did (for the tests)."""

    messages: int = 0
    deleted: int = 0
    taken: list[str] = field(default_factory=list)  # image ids


def poll_queue(
    client: SQSClient, queue: SqsQueue, storage: Storage, inbox: Inbox, enqueue: Enqueue
) -> Received:
    """Receive one batch of notifications, take their objects, delete what is done."""
    try:
        answer = client.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=queue.batch, WaitTimeSeconds=queue.wait_s
        )
    except (BotoCoreError, ClientError) as exc:
        raise StorageError("The SQS queue of S3 events did not answer.") from exc
    received = Received()
    for message in answer.get("Messages", []):
        received.messages += 1
        if _take_all(storage, inbox, _notification(message.get("Body", "")), enqueue, received):
            _delete(client, queue, message["ReceiptHandle"])
            received.deleted += 1
    return received


def _take_all(
    storage: Storage, inbox: Inbox, body: Any, enqueue: Enqueue, received: Received
) -> bool:
    """Take every created inbox object a notification names; False if one could not be."""
    for key in created_keys(body, inbox.bucket):
        try:
            image_id = take_object(storage, inbox, key, enqueue)
        except PlexzoomError as exc:  # storage trouble: the message comes back later
            log.warning("inbox object %s: %s; its event stays queued", key_digest(key)[:12], exc)
            return False
        if image_id is not None:
            log.info("image %s: taken from the inbox on an SQS event", image_id)
            received.taken.append(image_id)
    return True


def _notification(body: str) -> Any:
    """The S3 notification in a message body, unwrapped from SNS when it came through SNS."""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and parsed.get("Type") == "Notification":
            return json.loads(parsed.get("Message", ""))
    except (ValueError, TypeError):
        return None  # not a notification: deleted, nothing taken
    return parsed


def _delete(client: SQSClient, queue: SqsQueue, receipt: str) -> None:
    try:
        client.delete_message(QueueUrl=queue.url, ReceiptHandle=receipt)
    except (BotoCoreError, ClientError) as exc:  # it comes back; taking it again is harmless
        log.warning("could not delete an SQS message (%s)", type(exc).__name__)
