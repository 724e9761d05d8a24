"""The web app over ASGI with a recording enqueue and a fake broker; multipart bodies by hand."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from plexzoom.api.config import ApiSettings
from plexzoom.core.storage import Storage
from plexzoom.web import OneOrigin, create_app

BOUNDARY = "plexzoom-test-boundary-7d3f"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
REAL_VIEWER = Path(__file__).resolve().parents[2] / "viewer"


def form_head(
    filename: str | None = "image.png", name: str = "file", ctype: str = "image/png"
) -> bytes:
    """The multipart preamble of one file field, up to its first data byte."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: {ctype}\r\n\r\n"
    ).encode()


FORM_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def form_body(data: bytes, filename: str | None = "image.png") -> bytes:
    """A complete multipart body with one file field."""
    return form_head(filename) + data + FORM_TAIL


@dataclass
class RecordingEnqueue:
    """Records the ids it is asked to queue; raises ``error`` when one is set."""

    ids: list[str] = field(default_factory=list)
    error: Exception | None = None

    def __call__(self, image_id: str) -> None:
        if self.error is not None:
            raise self.error
        self.ids.append(image_id)


@dataclass
class FakeBroker:
    """A broker health probe that fails with ``error`` when one is set."""

    error: Exception | None = None

    def ping(self) -> None:
        if self.error is not None:
            raise self.error


@dataclass
class Api:
    """One app under test with its collaborators."""

    app: OneOrigin
    client: httpx.AsyncClient
    storage: Storage
    enqueue: RecordingEnqueue
    broker: FakeBroker
    settings: ApiSettings
    hints: RecordingEnqueue  # inbox keys the S3 event hook queued

    async def upload(self, data: bytes, filename: str | None = "image.png") -> httpx.Response:
        """POST one file as multipart/form-data."""
        return await self.client.post(
            "/v1/images", content=form_body(data, filename), headers={"content-type": MULTIPART}
        )


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[MakeApi]:
    """Build an app over a given storage with optional ApiSettings overrides."""
    clients: list[httpx.AsyncClient] = []

    async def make(storage: Storage, **overrides: Any) -> Api:
        settings = ApiSettings(
            **{"data_dir": tmp_path / "data", "viewer_dir": tmp_path / "no-viewer", **overrides}
        )
        enqueue, broker, hints = RecordingEnqueue(), FakeBroker(), RecordingEnqueue()
        app = create_app(settings, storage, enqueue, broker.ping, hints)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        return Api(app, client, storage, enqueue, broker, settings, hints)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def api(make_api: MakeApi, local_storage: Storage) -> Api:
    """The app over local-folder storage."""
    return await make_api(local_storage)
