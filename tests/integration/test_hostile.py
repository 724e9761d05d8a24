"""The hostile corpus through real HTTP to the whole stack (web, Redis, worker, local folder).

Each file goes up under a misleading name and must end as its case says: a 4xx with a JSON reason,
or ``failed`` with a sentence and the original kept, or ``ready``. Never a 5xx; the original name
never becomes a path, a storage key or a log line.
"""

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.corpus import CLAIM_200K, HOSTILE_CASES, Case
from tests.servers import Stack, require_redis

pytestmark = pytest.mark.slow
UPLOAD_CAP = 4 * 1024**2
# A generous bound: the worker refuses these from the header (README, "Hostile input"; how fast
# is measured by bench/hostile.py, not timed here).
RSS_GROWTH = 200 * 1024**2


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """plexzoom.run with local-folder storage, Redis database 13 and a 4 MiB upload cap."""
    folder = tmp_path_factory.mktemp("hostile")
    env = {
        "PLEXZOOM_REDIS_URL": require_redis(13),
        "PLEXZOOM_MAX_UPLOAD_BYTES": str(UPLOAD_CAP),
    }
    running = Stack(folder / "data", env, folder / "stack.log")
    yield running
    running.stop()


def multipart(filename: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    """A form with one file field, built by hand so the name's bytes (NUL, ../) go as they are."""
    boundary = f"hostile-{secrets.token_hex(16)}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


def marked(filename: str, token: str) -> str:
    """The case's file name with a unique token in its last component (to search for later)."""
    cut = filename.rfind("/") + 1
    return f"{filename[:cut]}{token}-{filename[cut:]}"


def worker_rss(stack: Stack) -> int:
    """Summed resident memory of the stack's Dramatiq processes."""
    total = 0
    for proc in psutil.Process(stack.proc.pid).children(recursive=True):
        try:
            if any("dramatiq" in part for part in proc.cmdline()):
                total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def wait_final(stack: Stack, image_id: str, timeout_s: float = 120) -> dict[str, object]:
    """Poll the image until ready or failed; every answer on the way must be a 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = httpx.get(f"{stack.url}/v1/images/{image_id}", timeout=10)
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        if body["status"] in ("ready", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"image {image_id} is still not ready or failed after {timeout_s} s")


def assert_name_left_no_trace(stack: Stack, token: str) -> None:
    """No stored key or file path, nothing outside the data folder, and no log line names it."""
    root = stack.data_dir.parent
    assert not [p for p in root.rglob("*") if token in str(p)]
    assert not list(Path("/tmp").glob(f"{token}*"))  # "../../tmp/..." did not escape
    log = (root / "stack.log").read_bytes()
    assert token.encode() not in log


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=[c.kind for c in HOSTILE_CASES])
def test_hostile_file_gets_its_outcome(stack: Stack, case: Case, tmp_path: Path) -> None:
    """Upload under a misleading name; check the answer, the final status and what is left."""
    data = case.build(tmp_path)
    token = f"hz{secrets.token_hex(8)}"
    filename = marked(case.filename, token)
    body, headers = multipart(filename, data)
    rss_before = worker_rss(stack)
    answer = httpx.post(f"{stack.url}/v1/images", content=body, headers=headers, timeout=60)
    assert answer.status_code == case.status, answer.text
    assert answer.headers["content-type"] == "application/json"
    if case.status != 202:
        assert case.reason in answer.json()["detail"]
        assert_name_left_no_trace(stack, token)
        return
    image_id = str(answer.json()["id"])
    final = wait_final(stack, image_id)
    assert final["status"] == case.outcome, final
    if answer.json()["filename"] is None:  # a TIFF whose first page lies past the first 64 KiB
        # may be a slide: its name is shown only once the conversion finds none (never when
        # it fails), and a test elsewhere shows it is shown then (test_slide_privacy).
        assert case.outcome == "failed" and final["filename"] is None
    else:
        assert final["filename"] == filename  # kept as metadata, byte for byte
    original = stack.data_dir / "images" / image_id / "original"
    if case.outcome == "failed":
        assert case.reason in str(final["error"]), final["error"]
        assert original.read_bytes() == data  # kept, so the user can retry after a fix
    if CLAIM_200K in case.reason:
        assert worker_rss(stack) - rss_before < RSS_GROWTH
    stack.wait_logged(f"image {image_id}: {final['status']}")  # the log we search is live
    assert_name_left_no_trace(stack, token)


def test_corpus_is_broad() -> None:
    """The issue asks for at least 25 kinds, with each kind of outcome among them."""
    assert len({c.kind for c in HOSTILE_CASES}) == len(HOSTILE_CASES) >= 25
    assert {(c.status, c.outcome) for c in HOSTILE_CASES} >= {
        (415, None),
        (202, "failed"),
        (202, "ready"),
    }


def test_an_upload_over_the_cap_is_413_while_streaming(stack: Stack) -> None:
    """A TIFF larger than the cap, sent without a declared length, is cut off with a reason."""
    data = b"II*\x00" + bytes(UPLOAD_CAP + 1024 * 1024)
    body, headers = multipart("big.tif", data)
    images = stack.data_dir / "images"
    before = set(images.iterdir()) if images.exists() else set()

    def chunks() -> Iterator[bytes]:
        for at in range(0, len(body), 64 * 1024):
            yield body[at : at + 64 * 1024]

    try:
        answer = httpx.post(f"{stack.url}/v1/images", content=chunks(), headers=headers)
    except httpx.WriteError:
        pytest.fail("the server closed the connection without an answer")
    assert answer.status_code == 413
    assert "upload limit" in answer.json()["detail"]
    assert (set(images.iterdir()) if images.exists() else set()) == before  # nothing kept


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"just bytes", "application/octet-stream"), (b"--x\r\n\r\n--x--\r\n", "multipart/form-data")],
    ids=["not-multipart", "no-boundary"],
)
def test_malformed_requests_are_400(stack: Stack, body: bytes, content_type: str) -> None:
    """Requests that are not a multipart form with a file get 400 and a JSON reason."""
    answer = httpx.post(
        f"{stack.url}/v1/images", content=body, headers={"content-type": content_type}
    )
    assert answer.status_code == 400
    assert "multipart/form-data" in answer.json()["detail"]
