"""Manifest writers that race, leases, and conversions in a child process with limits."""

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from plexzoom.core import keys
from plexzoom.core.child import ChildLimits
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.errors import ChildCrashed
from plexzoom.core.images import delete_image, start_image
from plexzoom.core.jobs import claim, lease_expired, now
from plexzoom.core.manifest import Manifest, read_manifest, update_manifest, write_manifest
from plexzoom.core.storage import LocalStorage, Storage
from tests.conftest import encode, noise_image, quadrant_bytes
from tests.core.test_convert import pyramid_keys, store_original


def test_an_interleaved_writer_loses_nothing(storage: Storage) -> None:
    """Another writer lands between this one's read and write: both changes survive."""
    image_id = start_image(storage, "race.png").id
    calls = []

    def add_b(manifest: Manifest) -> Manifest:
        manifest.notes["b"] = 2
        return manifest

    def add_a(manifest: Manifest) -> Manifest:
        calls.append(1)
        if len(calls) == 1:
            update_manifest(storage, image_id, add_b)  # wins the race
        manifest.notes["a"] = 1
        return manifest

    update_manifest(storage, image_id, add_a)
    assert read_manifest(storage, image_id).notes == {"a": 1, "b": 2}
    assert len(calls) == 2  # the first write was refused, the change applied again


# Not on moto: it checks If-Match and then writes without a lock, so threads that hit it at once
# can both win (seen about once in four runs on the in-process mock); S3 and SeaweedFS do not.
@pytest.mark.parametrize("backend", ["local", "s3-seaweed"])
def test_racing_writers_lose_nothing(storage: Storage) -> None:
    """Threads that each add one note through update_manifest: every note is there."""
    image_id = start_image(storage, "race.png").id
    writers = 8

    def add(n: int) -> None:
        def change(manifest: Manifest) -> Manifest:
            manifest.notes[f"w{n}"] = n
            return manifest

        update_manifest(storage, image_id, change)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read_manifest(storage, image_id).notes == {f"w{n}": n for n in range(writers)}


def test_a_writer_never_brings_back_a_deleted_image(storage: Storage) -> None:
    """A change computed before a delete fails with NotFound; the image stays gone."""
    image_id = start_image(storage, "gone.png").id

    def change(manifest: Manifest) -> Manifest:
        delete_image(storage, image_id)  # lands between this writer's read and its write
        manifest.stage = "resurrected"
        return manifest

    with pytest.raises(Exception, match="No image has this id"):
        update_manifest(storage, image_id, change)
    assert storage.list_keys("") == []


def test_a_live_lease_turns_a_second_delivery_away(local_storage: LocalStorage) -> None:
    """While one run holds the lease, another claim does nothing and counts no attempt."""
    image_id = store_original(local_storage, quadrant_bytes())
    first, lease = claim(local_storage, image_id, "run-1", 60, 3)
    assert lease is not None and first.attempts == 1
    again, none = claim(local_storage, image_id, "run-2", 60, 3)
    assert none is None
    assert (again.lease_holder, again.attempts) == ("run-1", 1)


def test_an_expired_lease_is_taken_over(local_storage: LocalStorage) -> None:
    """A holder that stopped renewing loses the job to the next run, which counts an attempt."""
    image_id = store_original(local_storage, quadrant_bytes())
    claim(local_storage, image_id, "dead-run", 60, 3)
    manifest = read_manifest(local_storage, image_id)
    manifest.lease_until = now() - timedelta(seconds=1)
    write_manifest(local_storage, manifest)
    assert lease_expired(read_manifest(local_storage, image_id))
    taken, lease = claim(local_storage, image_id, "run-2", 60, 3)
    assert lease is not None
    assert (taken.lease_holder, taken.attempts) == ("run-2", 2)


def test_a_job_that_lost_its_lease_does_not_commit(
    local_storage: LocalStorage, tmp_path: Path
) -> None:
    """If another run takes the job over mid-build, the first one's commit is refused."""
    image_id = store_original(local_storage, encode(noise_image(2000, 1500), "tiff"))
    stolen = threading.Event()

    def steal(manifest: Manifest) -> Manifest:
        manifest.lease_holder, manifest.attempts = "thief", manifest.attempts + 1
        return manifest

    def watch() -> None:
        while not stolen.is_set():
            if read_manifest(local_storage, image_id).stage == "building pyramid":
                update_manifest(local_storage, image_id, steal)
                stolen.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = convert_image(local_storage, image_id, ConvertOptions(scratch_dir=tmp_path))
    stolen.set()
    watcher.join()
    stored = read_manifest(local_storage, image_id)
    assert (stored.status, stored.lease_holder) == ("processing", "thief")
    assert result.status == "processing"


def _child_options(tmp_path: Path, memory_mb: int = 0, timeout_s: float = 0) -> ConvertOptions:
    return ConvertOptions(
        scratch_dir=tmp_path, child=ChildLimits(memory_mb=memory_mb, timeout_s=timeout_s)
    )


@pytest.mark.parametrize("backend", ["local", "s3-server", "s3-seaweed"])
def test_the_child_process_converts(storage: Storage, tmp_path: Path) -> None:
    """Built in a spawned child (storage travels as its configuration), committed here."""
    image_id = store_original(storage, quadrant_bytes("png", 900, 700))
    done = convert_image(storage, image_id, _child_options(tmp_path, memory_mb=2048))
    assert done.status == "ready", done.error
    assert (done.width, done.height, done.attempts) == (900, 700, 1)
    assert set(storage.list_keys("")) == pyramid_keys(image_id, done.generation)


def test_a_child_over_its_memory_cap_fails_with_the_reason(
    local_storage: LocalStorage, tmp_path: Path
) -> None:
    """A conversion that needs more memory than the cap ends 'failed' saying so; nothing left."""
    image_id = store_original(local_storage, interlaced_png(8000))
    done = convert_image(local_storage, image_id, _child_options(tmp_path, memory_mb=350))
    assert done.status == "failed"
    assert done.error and "more than 350 MiB" in done.error
    assert set(local_storage.list_keys("")) == {
        keys.manifest_key(image_id),
        keys.original_key(image_id),
    }


def interlaced_png(side: int) -> bytes:
    """Noise as an interlaced PNG: libvips must decode it whole into memory (side² x 3 bytes)."""
    return bytes(noise_image(side, side).pngsave_buffer(interlace=True, compression=1))


def test_a_child_over_its_time_limit_fails_with_the_reason(
    local_storage: LocalStorage, tmp_path: Path
) -> None:
    """A conversion slower than the wall-clock limit is killed and ends 'failed'."""
    image_id = store_original(local_storage, encode(noise_image(5000, 5000), "tiff"))
    done = convert_image(local_storage, image_id, _child_options(tmp_path, timeout_s=0.5))
    assert done.status == "failed"
    assert done.error and "longer than 0.5 s" in done.error


def test_a_crashed_child_gives_the_job_back_for_a_retry(
    local_storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that dies by a signal is a transient error: the job is queued again, counted."""
    image_id = store_original(local_storage, quadrant_bytes())
    monkeypatch.setattr("plexzoom.core.build.build_image", _killed)
    with pytest.raises(ChildCrashed, match="signal 9"):
        convert_image(local_storage, image_id, _child_options(tmp_path))
    stored = read_manifest(local_storage, image_id)
    assert (stored.status, stored.attempts, stored.lease_holder) == ("queued", 1, None)


def test_a_file_that_always_crashes_the_converter_ends_failed(
    local_storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each crash is a counted attempt; after max_attempts the image fails instead of looping."""
    image_id = store_original(local_storage, quadrant_bytes())
    monkeypatch.setattr("plexzoom.core.build.build_image", _killed)
    options = ConvertOptions(scratch_dir=tmp_path, child=ChildLimits(), max_attempts=3)
    for _ in range(3):  # what Dramatiq's retries or the reconciler would do
        with pytest.raises(ChildCrashed):
            convert_image(local_storage, image_id, options)
    done = convert_image(local_storage, image_id, options)
    assert (done.status, done.attempts) == ("failed", 3)
    assert done.error and "failed 3 times" in done.error


def _killed(*_args: object, **_kwargs: object) -> str:
    """A build that SIGKILLs its own process."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
    return ""
