"""Conversion metrics: each outcome counted once with its reason, stages and jobs timed, lease
renewals counted (read from this process's default registry)."""

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from plexzoom.core import build
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.errors import LeaseLost, NotFound, StorageError
from plexzoom.core.images import delete_image
from plexzoom.core.jobs import claim, renew
from plexzoom.core.manifest import Manifest, update_manifest
from plexzoom.core.storage import LocalStorage, Storage
from tests.conftest import quadrant_bytes
from tests.core.test_convert import store_original

OUTCOMES = ("ready", "failed", "retried", "lease_lost", "skipped")
STAGES = ("starting", "reading", "building pyramid", "building pyramids", "committing")


def value(name: str, **labels: str) -> float:
    """A sample's value now (0 before its first change)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    """Every conversion figure the tests look at, by a readable key."""
    figures: dict[str, float] = {}
    for outcome in OUTCOMES:
        for reason in ("", "CorruptImage", "StorageError"):
            key = f"{outcome}/{reason}"
            figures[key] = value("plexzoom_conversions_total", outcome=outcome, reason=reason)
        figures[f"seconds/{outcome}"] = value("plexzoom_conversion_seconds_count", outcome=outcome)
    for stage in STAGES:
        figures[f"stage/{stage}"] = value("plexzoom_conversion_stage_seconds_count", stage=stage)
    for result in ("ok", "failed"):
        figures[f"renewals/{result}"] = value("plexzoom_lease_renewals_total", result=result)
    return figures


def changes(before: dict[str, float]) -> dict[str, float]:
    """The figures that moved since ``before``, and by how much."""
    after = snapshot()
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


def without_renewals(moved: dict[str, float]) -> dict[str, float]:
    """Renewals follow the progress ticks, whose number depends on the machine's speed."""
    return {key: n for key, n in moved.items() if not key.startswith("renewals/")}


@pytest.fixture
def options(tmp_path: Path) -> ConvertOptions:
    """Conversions built in a thread of this process."""
    return ConvertOptions(scratch_dir=tmp_path, progress_interval_s=0.01)


def test_a_ready_conversion_counts_once_and_times_each_stage(
    local_storage: LocalStorage, options: ConvertOptions
) -> None:
    """ready, the job's time and one observation of each stage it went through."""
    image_id = store_original(local_storage, quadrant_bytes())
    before = snapshot()
    assert convert_image(local_storage, image_id, options).status == "ready"
    moved = changes(before)
    assert without_renewals(moved) == {
        "ready/": 1,
        "seconds/ready": 1,
        "stage/starting": 1,
        "stage/reading": 1,
        "stage/building pyramid": 1,
        "stage/committing": 1,
    }
    assert moved["renewals/ok"] >= 1  # at least the first stage change was published


def test_a_corrupt_file_counts_failed_with_its_error_class(
    local_storage: LocalStorage, options: ConvertOptions
) -> None:
    """A truncated PNG (found while its pixels are decoded for the pyramid): failed, reason
    CorruptImage; the stage it failed in is timed too."""
    png = quadrant_bytes()
    image_id = store_original(local_storage, png[: len(png) // 2])
    before = snapshot()
    assert convert_image(local_storage, image_id, options).status == "failed"
    assert without_renewals(changes(before)) == {
        "failed/CorruptImage": 1,
        "seconds/failed": 1,
        "stage/starting": 1,
        "stage/reading": 1,
        "stage/building pyramid": 1,
    }


def test_a_transient_error_counts_retried(
    local_storage: LocalStorage, options: ConvertOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storage error while building is raised for a retry and counted as retried."""
    image_id = store_original(local_storage, quadrant_bytes())

    def unavailable(*_args: object, **_kwargs: object) -> str:
        raise StorageError("Storage is not answering.")

    monkeypatch.setattr(build, "build_image", unavailable)
    before = snapshot()
    with pytest.raises(StorageError):
        convert_image(local_storage, image_id, options)
    assert without_renewals(changes(before)) == {
        "retried/StorageError": 1,
        "seconds/retried": 1,
        "stage/starting": 1,
    }


def test_nothing_to_do_counts_skipped(local_storage: LocalStorage, options: ConvertOptions) -> None:
    """A second delivery for a ready image and a message for a deleted one: skipped, no
    stage."""
    image_id = store_original(local_storage, quadrant_bytes())
    convert_image(local_storage, image_id, options)
    before = snapshot()
    assert convert_image(local_storage, image_id, options).status == "ready"
    delete_image(local_storage, image_id)
    with pytest.raises(NotFound):
        convert_image(local_storage, image_id, options)
    assert changes(before) == {"skipped/": 2, "seconds/skipped": 2}


def test_a_lease_taken_over_before_the_commit_counts_lease_lost(
    local_storage: LocalStorage, options: ConvertOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run takes the job while it builds: lease_lost, its commit timed and refused."""
    image_id = store_original(local_storage, quadrant_bytes())
    monkeypatch.setattr(build, "build_image", _then_steal(build.build_image, image_id))
    before = snapshot()
    assert convert_image(local_storage, image_id, options).status == "processing"
    moved = without_renewals(changes(before))
    assert moved == {
        "lease_lost/": 1,
        "seconds/lease_lost": 1,
        "stage/starting": 1,
        "stage/reading": 1,
        "stage/building pyramid": 1,
        "stage/committing": 1,
    }


def _then_steal(real: Callable[..., str], image_id: str) -> Callable[..., str]:
    """The real build, after which another holder takes the image's lease."""

    def steal(manifest: Manifest) -> Manifest:
        manifest.lease_holder = "thief"
        return manifest

    def build_image(storage: Storage, *args: object, report: object) -> str:
        built = real(storage, *args, report=report)
        update_manifest(storage, image_id, steal)
        return built

    return build_image


def test_lease_renewals_count_ok_and_failed(local_storage: LocalStorage) -> None:
    """A renewal by the holder counts ok; one after the image was deleted counts failed."""
    image_id = store_original(local_storage, quadrant_bytes())
    _, lease = claim(local_storage, image_id, "run-1", 60, 3)
    assert lease is not None
    before = snapshot()
    renew(local_storage, lease, "reading", 0.1)
    delete_image(local_storage, image_id)
    with pytest.raises(LeaseLost):
        renew(local_storage, lease, "reading", 0.2)
    assert changes(before) == {"renewals/ok": 1, "renewals/failed": 1}


def test_stage_buckets_reach_hours() -> None:
    """Stage and job times are bucketed from a tenth of a second up to eight hours."""
    from plexzoom.core.job_metrics import BUCKETS, STAGE_SECONDS

    STAGE_SECONDS.labels("reading")  # a child exists before the first observation
    assert (BUCKETS[0], BUCKETS[-1]) == (0.1, 28800)
    assert (
        REGISTRY.get_sample_value(
            "plexzoom_conversion_stage_seconds_bucket", {"stage": "reading", "le": "28800.0"}
        )
        is not None
    )
