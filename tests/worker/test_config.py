"""Worker settings: the header limits come from PLEXZOOM_* variables."""

import pytest

from plexzoom.core.readers import ReadOptions
from plexzoom.worker.config import WorkerSettings


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each PLEXZOOM_MAX_* variable reaches the options every reader checks."""
    values = {
        "PLEXZOOM_MAX_IMAGE_WIDTH": 1001,
        "PLEXZOOM_MAX_IMAGE_HEIGHT": 1002,
        "PLEXZOOM_MAX_IMAGE_PIXELS": 1003,
        "PLEXZOOM_MAX_CHANNELS": 1004,
        "PLEXZOOM_MAX_BYTES_PER_PIXEL": 1005,
        "PLEXZOOM_MAX_IN_MEMORY_BYTES": 1006,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, str(value))
    read = WorkerSettings().convert_options().read
    assert read == ReadOptions(
        max_width=1001,
        max_height=1002,
        max_pixels=1003,
        max_channels=1004,
        max_bytes_per_pixel=1005,
        max_in_memory_bytes=1006,
    )


def test_default_limits_are_the_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without variables the worker uses ReadOptions' documented defaults."""
    for name in ("WIDTH", "HEIGHT", "PIXELS"):
        monkeypatch.delenv(f"PLEXZOOM_MAX_IMAGE_{name}", raising=False)
    for name in ("CHANNELS", "BYTES_PER_PIXEL", "IN_MEMORY_BYTES"):
        monkeypatch.delenv(f"PLEXZOOM_MAX_{name}", raising=False)
    read = WorkerSettings().convert_options().read
    assert (read.max_width, read.max_pixels, read.max_channels) == (300_000, 10**10, 256)
    assert read == ReadOptions()


@pytest.mark.parametrize("prefix", ["inbox/", "lab/scanner-3/", "drop/"])
def test_an_inbox_folder_of_its_own_is_accepted(
    monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    """The inbox is any folder apart from plexzoom's own; S3 objects need no settling."""
    monkeypatch.setenv("PLEXZOOM_INBOX_PREFIX", prefix)
    monkeypatch.setenv("PLEXZOOM_S3_BUCKET", "slides")
    inbox = WorkerSettings().inbox()
    assert (inbox.prefix, inbox.bucket, inbox.settle_s) == (prefix, "slides", 0)


@pytest.mark.parametrize("prefix", ["", "/", "inbox", "images/", "images/in/", "claims/", "/in/"])
def test_an_inbox_where_plexzoom_writes_is_refused(
    monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    """Its own writes would be taken as new files: refused at start, naming the variable."""
    monkeypatch.setenv("PLEXZOOM_INBOX_PREFIX", prefix)
    with pytest.raises(ValueError, match="PLEXZOOM_INBOX_PREFIX must be a folder"):
        WorkerSettings()


def test_watches_are_other_buckets_read_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """PLEXZOOM_WATCH lists s3:// prefixes; each becomes a source that is copied, not moved."""
    monkeypatch.setenv("PLEXZOOM_S3_BUCKET", "plexzoom")
    monkeypatch.setenv("PLEXZOOM_WATCH", '["s3://scanner/out/", "s3://core-facility"]')
    monkeypatch.setenv("PLEXZOOM_WATCH_SINCE", "2026-12-01T00:00:00Z")
    watches = WorkerSettings().watches()
    assert [(w.bucket, w.prefix, w.moves) for w in watches] == [
        ("scanner", "out/", False),
        ("core-facility", "", False),
    ]
    assert all(w.since is not None and w.since.year == 2026 for w in watches)


@pytest.mark.parametrize(
    "watch, bucket, message",
    [
        ('["s3://plexzoom/in/"]', "plexzoom", "other than PLEXZOOM_S3_BUCKET"),
        ('["s3://scanner/out"]', "plexzoom", "s3://bucket/prefix/"),
        ('["https://scanner/out/"]', "plexzoom", "is not an s3://bucket/prefix/ URL"),
        ('["s3://scanner/out/"]', "", "needs S3 storage"),
    ],
    ids=["own bucket", "no trailing slash", "not s3", "local storage"],
)
def test_a_watch_plexzoom_would_write_or_cannot_read_is_refused(
    monkeypatch: pytest.MonkeyPatch, watch: str, bucket: str, message: str
) -> None:
    """Refused at start with the reason (the first case is the safety check: never a watch on
    the bucket plexzoom writes)."""
    monkeypatch.setenv("PLEXZOOM_WATCH", watch)
    monkeypatch.setenv("PLEXZOOM_S3_BUCKET", bucket)
    with pytest.raises(ValueError, match=message):
        WorkerSettings()
