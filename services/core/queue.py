"""The job queue, neutral ground of the api and the worker: the queue and actor names, the
Dramatiq broker on Redis (configured here before any actor is declared), enqueue and ping."""

from collections.abc import Iterator

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from prometheus_client.core import GaugeMetricFamily

from plexzoom.core.errors import BrokerError

QUEUE = "conversions"
CONVERT_ACTOR = "convert"
TAKE_ACTOR = "take_from_inbox"


def connect_broker(redis_url: str | None) -> RedisBroker:
    """A Redis broker at ``redis_url``; fails loudly when that Redis does not answer."""
    if not redis_url:
        raise BrokerError(
            "PLEXZOOM_REDIS_URL is not set. Start the stack with `make run`, which starts a "
            "private Redis, or point PLEXZOOM_REDIS_URL at your Redis server."
        )
    client = redis.Redis.from_url(redis_url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BrokerError(f"The Redis server at {_redact(redis_url)} does not answer.") from exc
    broker = RedisBroker(client=client)  # type: ignore[no-untyped-call]
    dramatiq.set_broker(broker)
    return broker


def enqueue_conversion(broker: dramatiq.Broker, image_id: str) -> None:
    """Send the conversion message for one image (the id only, never pixels)."""
    _send(broker, CONVERT_ACTOR, image_id)


def enqueue_inbox_object(broker: dramatiq.Broker, key: str) -> None:
    """Send the message that takes one inbox object an event named (its key, never bytes)."""
    _send(broker, TAKE_ACTOR, key)


def _send(broker: dramatiq.Broker, actor: str, argument: str) -> None:
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=QUEUE, actor_name=actor, args=(argument,), kwargs={}, options={}
    )
    try:
        broker.enqueue(message)
    except redis.RedisError as exc:
        raise BrokerError("The job queue did not accept the message; try again.") from exc


def _redact(url: str) -> str:
    """The URL without a password."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def ping(broker: RedisBroker) -> None:
    """Raise BrokerError when the broker's Redis does not answer."""
    try:
        broker.client.ping()
    except redis.RedisError as exc:
        raise BrokerError("The job queue (Redis) does not answer.") from exc


class QueueDepth:
    """A Prometheus collector read at scrape time: messages waiting in the conversions queue, in
    its delay queue (retries waiting for their backoff) and dead-lettered (the Redis lists and
    set Dramatiq keeps; KEDA scales workers on the first two)."""

    def __init__(self, client: "redis.Redis[bytes]", namespace: str = "dramatiq") -> None:
        self.client, self.queue = client, f"{namespace}:{QUEUE}"

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One gauge, labelled by state; nothing when Redis does not answer (a scrape error
        would hide the service's other figures)."""
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.llen(self.queue).llen(f"{self.queue}.DQ").zcard(f"{self.queue}.XQ")
                waiting, delayed, dead = pipe.execute()
        except redis.RedisError:
            return
        family = GaugeMetricFamily(
            "plexzoom_queue_messages",
            "Messages in the conversions queue now, by state.",
            labels=["queue", "state"],
        )
        for state, count in (("waiting", waiting), ("delayed", delayed), ("dead", dead)):
            family.add_metric([QUEUE, state], float(count))
        yield family
