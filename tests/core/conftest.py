"""Fixtures of the core tests."""

from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from tests.faults import FaultProxy


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A proxy in front of the session's moto server: it records every request line, and
    answers with faults between start_faults and stop_faults."""
    running = FaultProxy(int(urlparse(moto_endpoint).port or 0))
    yield running
    running.stop()
