"""Access lines: the text line and the JSON fields tell the same, whatever the request."""

import pytest

from plexzoom.core.accesslog import describe_request, request_fields

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
def test_the_text_line_and_the_json_fields_agree(
    path: str, headers: list[tuple[bytes, bytes]], status: int, seconds: float
) -> None:
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    f = request_fields(scope, status, seconds)
    assert describe_request(scope, status, seconds) == (
        f"GET {f['path']!r} {f['status'] or '-'} key={f['key'] or '-'} "
        f"image={f['image'] or '-'} {seconds * 1000:.1f}ms"
    )
    assert len(f["path"]) <= 300
    bearer = any(n == b"authorization" and v.startswith(b"Bearer") for n, v in headers)
    assert (f["key"] is not None) == bearer  # ASGI servers send header names in lower case
    assert "some-key" not in describe_request(scope, status, seconds)
