"""The upload engine against the protocol's in-memory server: parts, retries, re-signing,
resume, memory."""

import base64
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from plexzoom.client import Client, NotFound, Refused, ServerUnreachable
from plexzoom.client.models import UploadProgress
from plexzoom.client.parts import CHUNK
from plexzoom.client.resume import FileKey, ResumeStore
from plexzoom.client.transfer import Retry
from plexzoom.client.upload import Uploader
from tests.client.fake_server import DROP, FakeServer

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def eleven_mib(tmp_path: Path) -> Path:
    """An 11 MiB file of varied bytes: parts 5, 5 and 1 MiB."""
    path = tmp_path / "slide.tif"
    path.write_bytes(os.urandom(11 * MiB))
    return path


def client_of(server: FakeServer, tmp_path: Path, key: str | None = "k") -> Client:
    return Client("http://api.test", key, transport=server.transport(), state_dir=tmp_path / "st")


def uploader(client: Client, sleeps: list[float] | None = None, tries: int = 6) -> Uploader:
    """An uploader whose backoff is recorded instead of slept."""
    record = sleeps if sleeps is not None else []
    return Uploader(client, parallel=3, retry=Retry(tries=tries), sleep=record.append)


def test_a_file_goes_up_in_parts_and_is_forgotten_once_complete(
    tmp_path: Path, eleven_mib: Path
) -> None:
    server = FakeServer(key="k")
    seen: list[UploadProgress] = []
    with client_of(server, tmp_path) as client:
        result = client.upload(eleven_mib, progress=seen.append)
    assert (result.parts, result.parts_sent, result.parts_reused) == (3, 3, 0)
    assert (result.bytes_sent, result.size, result.image.status) == (11 * MiB, 11 * MiB, "queued")
    assert sorted(server.puts) == [1, 2, 3] and server.signed == [[1, 2, 3]]
    assert server.largest_chunk <= CHUNK  # streamed from disk, never a whole part at once
    assert seen[-1].bytes_done == 11 * MiB and max(p.parts_done for p in seen) == 3
    assert list((tmp_path / "st").glob("*.json")) == []


def test_network_errors_5xx_and_429_are_retried_with_bounded_backoff(
    tmp_path: Path, eleven_mib: Path
) -> None:
    server = FakeServer(faults={1: [503, 503], 2: [DROP], 3: [429]})
    sleeps: list[float] = []
    with client_of(server, tmp_path) as client:
        result = uploader(client, sleeps).run(eleven_mib)
    assert result.image.status == "queued"
    assert sorted(server.puts) == [1, 1, 1, 2, 2, 3, 3]
    assert len(sleeps) == 4 and all(0 <= s <= Retry().cap_s for s in sleeps)


def test_a_part_that_keeps_failing_stops_the_upload_and_keeps_it_for_resuming(
    tmp_path: Path, eleven_mib: Path
) -> None:
    server = FakeServer(faults={3: [500] * 3})
    with client_of(server, tmp_path) as client:
        with pytest.raises(ServerUnreachable, match=r"Part 3 of slide.tif failed 3 times"):
            uploader(client, tries=3).run(eleven_mib)
        assert server.puts.count(3) == 3
        assert sorted(server.uploads[next(iter(server.uploads))].stored) == [1, 2]
        again = uploader(client).run(eleven_mib)  # the same file again: only part 3 goes
    assert (again.parts_sent, again.parts_reused, again.bytes_sent) == (1, 2, 1 * MiB)
    assert server.creates == 1 and server.puts.count(3) == 4


def test_a_refused_url_is_signed_again(tmp_path: Path, eleven_mib: Path) -> None:
    """With the same CRC-32: the fake refuses (403) a header its URL did not sign."""
    server = FakeServer(faults={2: [403]})
    with client_of(server, tmp_path) as client:
        uploader(client).run(eleven_mib)
    assert [2] in server.signed[1:]


def test_a_part_the_storage_refuses_is_not_retried(tmp_path: Path, eleven_mib: Path) -> None:
    server = FakeServer(faults={2: [400]})
    with client_of(server, tmp_path) as client, pytest.raises(Refused, match=r"Faulty\."):
        uploader(client).run(eleven_mib)
    assert server.puts.count(2) == 1


def test_an_upload_gone_from_the_server_starts_over(tmp_path: Path, eleven_mib: Path) -> None:
    server = FakeServer(faults={3: [500]})
    with client_of(server, tmp_path) as client:
        with pytest.raises(ServerUnreachable):
            uploader(client, tries=1).run(eleven_mib)
        server.uploads.clear()  # aborted, or expired
        del server.images[next(iter(server.images))]
        result = uploader(client).run(eleven_mib)
    assert (server.creates, result.parts_sent, result.parts_reused) == (2, 3, 0)


def test_an_upload_completed_by_an_earlier_run_is_not_sent_again(
    tmp_path: Path, eleven_mib: Path
) -> None:
    """A run stopped between completing and forgetting: the rerun finds the image."""
    server = FakeServer()
    with client_of(server, tmp_path) as client:
        first = client.upload(eleven_mib)
        store = ResumeStore(tmp_path / "st")
        from plexzoom.client.resume import Saved

        store.save(FileKey.of(eleven_mib, client.url), Saved(first.image.id, 5 * MiB, 3))
        again = client.upload(eleven_mib)
    assert (again.image.id, again.parts_sent, server.creates) == (first.image.id, 0, 1)


def test_a_changed_file_is_a_new_upload(tmp_path: Path, eleven_mib: Path) -> None:
    server = FakeServer(faults={3: [500]})
    with client_of(server, tmp_path) as client:
        with pytest.raises(ServerUnreachable):
            uploader(client, tries=1).run(eleven_mib)
        eleven_mib.write_bytes(os.urandom(11 * MiB))
        os.utime(eleven_mib, ns=(1, 1))
        result = uploader(client).run(eleven_mib)
    assert (server.creates, result.parts_reused) == (2, 0)


def test_an_empty_file_is_refused_before_any_request(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tif"
    empty.touch()
    server = FakeServer()
    with client_of(server, tmp_path) as client, pytest.raises(Exception, match="is empty"):
        client.upload(empty)
    assert server.creates == 0


def test_status_of_an_unknown_image_is_not_found(tmp_path: Path) -> None:
    with client_of(FakeServer(), tmp_path) as client, pytest.raises(NotFound, match="No such"):
        client.status("x" * 26)


RSS_SCRIPT = r"""
import os, re, sys
from pathlib import Path
from plexzoom.client import Client
from tests.client.fake_server import FakeServer

path = Path(sys.argv[1])
with open(path, "wb") as f:
    f.truncate(1024**3)  # sparse: 1 GiB that costs no disk
server = FakeServer(part_size=64 * 1024**2)
with Client("http://api.test", transport=server.transport(), state_dir=path.parent) as client:
    result = client.upload(path, parallel=4)
assert result.bytes_sent == 1024**3, result
# VmHWM: this process's peak RSS (ru_maxrss would carry over the forking parent's peak)
status = Path("/proc/self/status").read_text()
print(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) // 1024)
"""


@pytest.mark.slow
def test_a_1_gib_upload_stays_under_150_mib_of_memory(tmp_path: Path) -> None:
    """Parts of 64 MiB, four at a time: peak RSS of the whole process (Python included)."""
    done = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(tmp_path / "big.raw")],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=240,
    )  # fmt: skip
    assert int(done.stdout.strip()) < 150, done.stdout


def test_parts_the_server_lost_are_sent_again_before_completing(
    tmp_path: Path, eleven_mib: Path
) -> None:
    """Completion answers 409 naming missing parts: they are sent again, then it completes."""
    server = FakeServer()
    complete = server.complete

    def losing_part_2(upload, parts):  # type: ignore[no-untyped-def]
        if server.puts.count(2) == 1:
            del upload.stored[2]
        return complete(upload, parts)

    server.complete = losing_part_2  # type: ignore[method-assign]
    with client_of(server, tmp_path) as client:
        result = client.upload(eleven_mib)
    assert result.image.status == "queued" and server.puts.count(2) == 2


def test_each_part_is_signed_and_sent_with_its_crc32(tmp_path: Path, eleven_mib: Path) -> None:
    """The CRC-32 goes into the sign request, the PUT's x-amz-checksum-crc32 and completion."""
    server = FakeServer()
    seen: list[str | None] = []
    handle = server.put_part

    def recording(request):  # type: ignore[no-untyped-def]
        seen.append(request.headers.get("x-amz-checksum-crc32"))
        assert "content-md5" not in request.headers
        return handle(request)

    server.put_part = recording  # type: ignore[method-assign]
    with client_of(server, tmp_path) as client:
        assert client.upload(eleven_mib).image.status == "queued"
    data = eleven_mib.read_bytes()
    crc32s = [crc32_of(data[i : i + 5 * MiB]) for i in range(0, len(data), 5 * MiB)]
    assert sorted(seen) == sorted(crc32s)  # type: ignore[type-var]
    assert [p["crc32"] for p in server.completions[-1]] == crc32s


def test_parts_are_hashed_then_signed_in_batches(tmp_path: Path) -> None:
    """40 parts: three sign calls (16, 16, 8), each URL signed before its PUT."""
    path = tmp_path / "many.raw"
    path.write_bytes(os.urandom(40 * 1024))
    server = FakeServer(part_size=1024)
    with client_of(server, tmp_path) as client:
        result = uploader(client).run(path)
    assert (result.parts_sent, result.image.status) == (40, "queued")
    assert server.signed == [list(range(1, 17)), list(range(17, 33)), list(range(33, 41))]
    assert all(p.get("crc32") for p in server.completions[-1])


def test_a_part_whose_bytes_changed_on_the_way_is_refused_and_sent_again_on_resume(
    tmp_path: Path, eleven_mib: Path
) -> None:
    """The storage checks the signed CRC-32 against the bytes: a mismatch is refused (400) and
    not stored; the upload stays resumable and the next run sends that part only."""
    server = FakeServer(spoiled={2: 1})
    with client_of(server, tmp_path) as client:
        with pytest.raises(Refused, match=r"Bad CRC-32"):
            uploader(client).run(eleven_mib)
        assert server.puts.count(2) == 1
        assert sorted(server.uploads[next(iter(server.uploads))].stored) == [1, 3]
        again = uploader(client).run(eleven_mib)
    assert (again.parts_sent, again.parts_reused, again.image.status) == (1, 2, "queued")
    assert server.puts.count(2) == 2


def test_crc32s_the_server_does_not_list_are_hashed_from_the_file_to_complete(
    tmp_path: Path, eleven_mib: Path
) -> None:
    """SeaweedFS and moto list stored parts without a CRC-32; completion names every one."""
    server = FakeServer(faults={3: [500]}, lists_crc32=False)
    with client_of(server, tmp_path) as client:
        with pytest.raises(ServerUnreachable):
            uploader(client, tries=1).run(eleven_mib)
        again = uploader(client).run(eleven_mib)
    assert (again.parts_reused, again.image.status) == (2, "queued")
    data = eleven_mib.read_bytes()
    crc32s = [crc32_of(data[i : i + 5 * MiB]) for i in range(0, len(data), 5 * MiB)]
    assert [p.get("crc32") for p in server.completions[-1]] == crc32s


def crc32_of(data: bytes) -> str:
    """What x-amz-checksum-crc32 holds: base64 of the big-endian CRC-32."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
