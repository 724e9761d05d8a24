"""GET /v1/formats: the one list of upload formats that pages and scripts show."""

import pytest

from plexzoom.core.readers import SOURCE_KINDS
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def test_every_format_the_readers_take_is_listed_with_a_label(api: Api) -> None:
    """The list names exactly the formats the sniffer recognises, each with a label and the
    file name endings people know it by."""
    answer = await api.client.get("/v1/formats")
    assert answer.status_code == 200
    formats = answer.json()["formats"]
    assert sorted(f["name"] for f in formats) == sorted(SOURCE_KINDS)
    for entry in formats:
        assert entry["label"] and entry["media_type"]
        assert entry["extensions"] and all(e.startswith(".") for e in entry["extensions"])
