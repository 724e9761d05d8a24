"""/healthz: 200 only when storage and the broker both answer."""

from typing import Any

import pytest

from plexzoom.core.errors import BrokerError, StorageError
from plexzoom.core.storage import Storage
from tests.api.conftest import Api, MakeApi

pytestmark = pytest.mark.anyio


class SilentStorage:
    """A storage whose ping fails (the bucket or folder is unreachable)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def ping(self) -> None:
        raise StorageError("Object storage did not answer.")


async def test_healthy(api: Api) -> None:
    """Both probes answer: 200 and 'ok' for each."""
    answer = await api.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "storage": "ok", "broker": "ok"}


async def test_broker_down_is_503(api: Api) -> None:
    """A broker that does not answer makes the service unhealthy, saying why."""
    api.broker.error = BrokerError("The Redis server at redis://x does not answer.")
    answer = await api.client.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unhealthy"
    assert body["storage"] == "ok"
    assert "does not answer" in body["broker"]


async def test_storage_down_is_503(make_api: MakeApi, local_storage: Storage) -> None:
    """Storage that does not answer makes the service unhealthy too."""
    api = await make_api(SilentStorage(local_storage))
    answer = await api.client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["storage"] == "Object storage did not answer."
    assert answer.json()["broker"] == "ok"


async def test_healthy_on_s3(make_api: MakeApi, s3_storage: Storage) -> None:
    """The S3 backend's probe answers against a real S3 endpoint."""
    api = await make_api(s3_storage)
    assert (await api.client.get("/healthz")).status_code == 200
