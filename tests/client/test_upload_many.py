"""Several files at once (``Client.upload_many``) against the in-memory server: files in flight
together, an outcome per file as it ends, a fatal error and a stop that start no more parts."""

import threading
from pathlib import Path

from plexzoom.client import AuthError, Client, Refused, Stopped, UploadResult
from tests.client.fake_server import FakeServer, PartGate

MiB = 1024 * 1024


def client_of(server: FakeServer, tmp_path: Path, key: str | None = None) -> Client:
    return Client("http://api.test", key, transport=server.transport(), state_dir=tmp_path / "st")


def test_two_files_are_in_flight_at_once(tmp_path: Path, slides: list[Path]) -> None:
    """Each file's first PUT is held until the other file's has come: with one file at a
    time the first is held alone and the gate fails the upload."""
    server = FakeServer(gate=PartGate(uploads=2))
    with client_of(server, tmp_path) as client:
        outcomes = dict(client.upload_many(slides, files=2, parallel=1))
    assert sorted(outcomes) == slides
    results = [o for o in outcomes.values() if isinstance(o, UploadResult)]
    assert [(r.parts_sent, r.image.status) for r in results] == [(3, "queued")] * 2
    assert sorted(server.puts) == [1, 1, 2, 2, 3, 3] and server.creates == 2


def test_a_refused_file_ends_alone_and_the_other_is_uploaded(
    tmp_path: Path, slides: list[Path]
) -> None:
    server = FakeServer(refused={"b.tif"})
    with client_of(server, tmp_path) as client:
        outcomes = dict(client.upload_many(slides))
    good, refused = outcomes[slides[0]], outcomes[slides[1]]
    assert isinstance(good, UploadResult) and good.image.status == "queued"
    assert isinstance(refused, Refused) and refused.status == 415
    assert "not an image" in refused.detail


def test_a_wrong_key_stops_the_files_not_started_yet(tmp_path: Path) -> None:
    """An error about the key concerns every file: the next ones send nothing."""
    paths = [tmp_path / f"{n}.tif" for n in range(3)]
    for path in paths:
        path.write_bytes(b"x" * 1000)
    server = FakeServer(key="right")
    with client_of(server, tmp_path, key="wrong") as client:
        outcomes = list(client.upload_many(paths, files=1))
    assert [path for path, _ in outcomes] == paths
    assert [type(outcome) for _, outcome in outcomes] == [AuthError, Stopped, Stopped]
    assert "upload it again to resume" in str(outcomes[1][1])


def test_a_stop_starts_no_more_parts_and_the_files_resume(
    tmp_path: Path, slides: list[Path]
) -> None:
    """The stop is set while both files' part 2 is under way (part 1 stored): those PUTs are
    dropped, no part 3 starts, and the next run sends parts 2 and 3 of the same uploads."""
    stop = threading.Event()
    server = FakeServer(gate=PartGate(uploads=2, number=2, then=stop.set))
    with client_of(server, tmp_path) as client:
        stopped = dict(client.upload_many(slides, parallel=1, stop=stop))
        assert [type(outcome) for outcome in stopped.values()] == [Stopped, Stopped]
        assert sorted(server.puts) == [1, 1, 2, 2]
        assert [sorted(u.stored) for u in server.uploads.values()] == [[1], [1]]
        assert len(list((tmp_path / "st").glob("*.json"))) == 2
        server.gate = None
        again = dict(client.upload_many(slides, parallel=1))
    assert [(r.parts_sent, r.parts_reused) for r in again.values()] == [(2, 1), (2, 1)]
    assert server.creates == 2 and list((tmp_path / "st").glob("*.json")) == []
