"""POST /hooks/s3: a token of its own, S3 notification bodies, keys queued for the worker."""

from typing import Any

import pytest

from plexzoom.core.storage import Storage
from tests.api.conftest import Api, MakeApi
from tests.core.test_events import record

pytestmark = pytest.mark.anyio
TOKEN = "hook-token-0123456789abcdef"


@pytest.fixture
async def hooked(make_api: MakeApi, local_storage: Storage) -> Api:
    """The app with the hook's token set."""
    return await make_api(local_storage, s3_hook_token=TOKEN)


def event(*keys: str) -> dict[str, Any]:
    """A notification body with one ObjectCreated record per key."""
    return {"Records": [record(k) for k in keys]}


async def test_without_a_token_configured_there_is_no_hook(api: Api) -> None:
    """The route does not exist while PLEXZOOM_S3_HOOK_TOKEN is unset."""
    answer = await api.client.post("/hooks/s3", json=event("inbox/a.tif"))
    assert answer.status_code in (404, 405)
    assert api.hints.ids == []


async def test_created_inbox_keys_are_queued(hooked: Api) -> None:
    """Each created key under the inbox once; others not; the answer says how many."""
    body = event("inbox/a+b.tif", "inbox/a+b.tif", "elsewhere/c.tif", "inbox/d/e.svs")
    answer = await hooked.client.post(
        "/hooks/s3", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert (answer.status_code, answer.json()) == (202, {"queued": 2})
    assert hooked.hints.ids == ["inbox/a b.tif", "inbox/d/e.svs"]
    assert hooked.enqueue.ids == []  # nothing converted or created here


async def test_the_token_can_come_in_the_url(hooked: Api) -> None:
    """Ceph RGW can only set a URL."""
    answer = await hooked.client.post(f"/hooks/s3?token={TOKEN}", json=event("inbox/a.tif"))
    assert answer.status_code == 202
    assert hooked.hints.ids == ["inbox/a.tif"]


@pytest.mark.parametrize(
    "headers, query",
    [({}, ""), ({"Authorization": "Bearer wrong-token-0123456789"}, ""), ({}, "?token=nope")],
    ids=["none", "wrong header", "wrong query"],
)
async def test_an_event_without_the_token_is_refused(
    hooked: Api, headers: dict[str, str], query: str
) -> None:
    """401 with a challenge, and nothing queued (the right token is accepted above)."""
    answer = await hooked.client.post(
        f"/hooks/s3{query}", json=event("inbox/a.tif"), headers=headers
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert hooked.hints.ids == []


async def test_minio_probes_with_head(hooked: Api) -> None:
    """HEAD answers 200 with the token, 401 without."""
    assert (await hooked.client.head(f"/hooks/s3?token={TOKEN}")).status_code == 200
    assert (await hooked.client.head("/hooks/s3")).status_code == 401


@pytest.mark.parametrize(
    "content, status",
    [(b"not json", 400), (b'{"Event": "s3:TestEvent"}', 202), (b"[" * 2_000_000, 413)],
    ids=["not json", "test event", "too long"],
)
async def test_odd_bodies_get_a_clear_answer(hooked: Api, content: bytes, status: int) -> None:
    """Never a 500: not JSON is 400, a test event queues nothing, a huge body is 413."""
    answer = await hooked.client.post(
        f"/hooks/s3?token={TOKEN}", content=content, headers={"content-type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    assert hooked.hints.ids == []


async def test_a_short_hook_token_is_refused_at_start(
    make_api: MakeApi, local_storage: Storage
) -> None:
    """A guessable token is a configuration error, named."""
    with pytest.raises(ValueError, match="PLEXZOOM_S3_HOOK_TOKEN must be at least 16"):
        await make_api(local_storage, s3_hook_token="short")
