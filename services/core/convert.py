"""The conversion job: claim the image, build its pyramids (plexzoom.core.build) in a capped
child, commit the manifest that names them, clean up; a lease renewed while it runs."""

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from plexzoom.core import build, keys
from plexzoom.core.child import ChildLimits, run_in_child, run_in_thread, start_spare
from plexzoom.core.errors import LeaseLost, NotFound, PlexzoomError, StorageError
from plexzoom.core.inbox import withhold_inbox_key
from plexzoom.core.job_metrics import ConversionRun, StageClock
from plexzoom.core.jobs import Lease, claim, commit, fail, new_holder, release, renew
from plexzoom.core.manifest import Manifest, read_manifest
from plexzoom.core.pyramid import PyramidOptions
from plexzoom.core.readers import ReadOptions
from plexzoom.core.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertOptions:
    """Settings of a conversion, passed in by the worker."""

    pyramid: PyramidOptions = field(default_factory=PyramidOptions)
    scratch_dir: Path | None = None
    max_attempts: int = 4  # starts counted in the manifest; then the image ends failed
    # At most one progress write a second: each is a read and a conditional write of the
    # manifest, which on a slow S3 server (moto) took CPU from the build it reports on.
    progress_interval_s: float = 1.0
    channels_per_pass: int = 4  # channels stored as pages read at once (bounds memory)
    read: ReadOptions = field(default_factory=ReadOptions)  # header limits; variable per image
    lease_s: float = 60  # a job that has not renewed its lease for this long is presumed dead
    # None: build in this process (tests); else in a spawned child with these limits.
    child: ChildLimits | None = None
    child_setup: Callable[[], object] | None = None  # run first in the child (malloc arenas)
    # Keep one child started ahead (imports done, limits set), so a job does not wait for it.
    spare_child: bool = False
    # Whole-slide scans: keep their label and macro images and file names (private otherwise).
    show_slide_labels: bool = False


class JobMonitor:
    """The job's side of a build: publishes progress and renews the lease, both at intervals."""

    def __init__(self, storage: Storage, lease: Lease, interval_s: float) -> None:
        self._storage, self._lease, self._interval = storage, lease, interval_s
        self.stage, self._value = "starting", 0.0
        self._written, self._renewed = (self.stage, self._value), time.monotonic()
        self.stages = StageClock(self.stage)

    def report(self, stage: str, value: float) -> None:
        """Note the builder's latest stage and progress."""
        self.stage, self._value = stage, max(self._value, value)
        self.stages.enter(stage)

    def tick(self) -> None:
        """Write a new stage at once, progress at most every interval, the lease in time (called
        by the one loop that supervises the build, in a child or a thread)."""
        latest = (self.stage, self._value)
        since = time.monotonic() - self._renewed
        moved = latest != self._written and since >= self._interval
        if not (latest[0] != self._written[0] or moved or since > self._lease.seconds / 4):
            return
        try:
            renew(self._storage, self._lease, *latest)
        except StorageError:
            log.warning("could not publish progress of %s", self._lease.image_id)
            return
        self._written, self._renewed = latest, time.monotonic()


def convert_image(storage: Storage, image_id: str, options: ConvertOptions) -> Manifest:
    """Run (or re-run, idempotently) the conversion of one image; permanent errors end 'failed'.

    Transient errors give the job back (status ``queued``) and are raised for a retry.
    """
    run = ConversionRun()
    try:
        return _convert(storage, image_id, options, run)
    except NotFound:
        run.end("skipped")  # the image was deleted before its job ran
        raise
    except BaseException as exc:
        run.end("retried", exc)
        raise


def _convert(
    storage: Storage, image_id: str, options: ConvertOptions, run: ConversionRun
) -> Manifest:
    """convert_image, telling ``run`` its outcome as soon as it is known."""
    manifest, lease = claim(storage, image_id, new_holder(), options.lease_s, options.max_attempts)
    if lease is None:
        log.info("image %s is %s; nothing to do", image_id, manifest.status)
        run.end("skipped")
        return manifest
    # Leftovers of an earlier attempt of this generation: never visible, rewritten now.
    storage.delete_prefix(keys.generation_prefix(image_id, lease.generation))
    monitor = JobMonitor(storage, lease, options.progress_interval_s)
    try:
        try:
            with monitor.stages:  # the last stage ends with the build, however it ends
                built = _build(storage, manifest, options, monitor)
        except PlexzoomError as exc:
            if not exc.permanent:
                raise
            failed = fail(storage, lease, exc.message)
            run.end("failed", exc)
            log.info("image %s: failed (%s)", image_id, type(exc).__name__)
            return failed
        with StageClock("committing"):
            if built.notes.get("filename_withheld") and manifest.source is not None:
                withhold_inbox_key(storage, manifest)  # a slide found by its content
            committed = commit(storage, lease, built)
        run.end("ready")
        log.info("image %s: ready", image_id)
    except LeaseLost:
        run.end("lease_lost")
        return _after_losing(storage, lease, manifest)
    except BaseException:
        with contextlib.suppress(PlexzoomError):
            release(storage, lease)
        raise
    _remove_old_generations(storage, committed)
    return committed


def _build(
    storage: Storage, manifest: Manifest, options: ConvertOptions, monitor: JobMonitor
) -> Manifest:
    """Build the pyramids, in a child process when the options say so."""
    job = manifest.model_dump_json()
    if options.child is not None:
        built = run_in_child(
            build.build_image,
            (storage, job, options),
            options.child,
            monitor.report,
            monitor.tick,
            options.progress_interval_s,
            options.child_setup,
            options.spare_child,
        )
        return Manifest.model_validate_json(built)

    def tick() -> None:
        with contextlib.suppress(LeaseLost):  # a thread cannot be stopped: the commit notices
            monitor.tick()

    args = (storage, job, options)
    built = run_in_thread(
        build.build_image, args, monitor.report, tick, options.progress_interval_s
    )
    return Manifest.model_validate_json(built)


def start_spare_child(options: ConvertOptions) -> None:
    """Start the spare conversion child now (at worker start), if the options keep one."""
    if options.child is not None and options.spare_child:
        start_spare(build.build_image, options.child, options.child_setup)


def _after_losing(storage: Storage, lease: Lease, manifest: Manifest) -> Manifest:
    """Stop quietly: remove what this job wrote unless a newer run of it owns those keys."""
    log.info("image %s was deleted, re-queued or taken over during its conversion", lease.image_id)
    try:
        current = read_manifest(storage, lease.image_id)
    except NotFound:
        storage.delete_prefix(keys.image_prefix(lease.image_id))  # written after the delete
        return manifest
    if current.generation != lease.generation:
        storage.delete_prefix(keys.generation_prefix(lease.image_id, lease.generation))
    return current


def _remove_old_generations(storage: Storage, manifest: Manifest) -> None:
    """Delete pyramids of earlier conversions once the new manifest is committed."""
    current = keys.generation_prefix(manifest.id, manifest.generation)
    for key in storage.list_keys(keys.image_prefix(manifest.id) + "pyramids/"):
        if not key.startswith(current):
            storage.delete(key)
