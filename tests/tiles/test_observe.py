"""The tile process's access lines: the api's line, built faster."""

import pytest

from plexzoom.api.accesslog import describe_request
from plexzoom.tiles.observe import text_line

IMAGE = "7ybpyc9ytshcaave3pmjmehy52"
TILE = f"/tiles/{IMAGE}/rhh544akyt0g/image_files/12/1_1.jpeg"


@pytest.mark.parametrize(
    ("path", "headers", "status", "seconds"),
    [
        (TILE, [(b"host", b"x")], 200, 0.00123),
        (TILE, [(b"authorization", b"Bearer some-key")], 304, 0.00005),
        (TILE, [(b"authorization", b"Basic abc")], 401, 0.25),
        (f"/v1/images/{IMAGE}", [], 0, 1.5),
        ("/healthz", [(b"Authorization", b"Bearer k")], 200, 0.0),
        ("/tiles/" + "x" * 400 + "'\u00e9\n", [], 404, 0.00049999),
        (f"/tiles/{IMAGE}", [], 404, 0.00015),
    ],
)
def test_text_line_is_the_api_line(
    path: str, headers: list[tuple[bytes, bytes]], status: int, seconds: float
) -> None:
    """Same text as plexzoom.api.accesslog.describe_request, whatever the request."""
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    assert text_line(scope, status, seconds) == describe_request(scope, status, seconds)
