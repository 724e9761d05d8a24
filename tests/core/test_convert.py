"""The conversion job end to end: original in storage -> pyramid in storage -> manifest."""

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips
import tifffile

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.display import RGB_CHANNELS
from plexzoom.core.errors import NotFound
from plexzoom.core.formats import sniff_format
from plexzoom.core.images import delete_image, reconvert_image, start_image, submit_image
from plexzoom.core.manifest import Manifest, read_manifest, write_manifest
from plexzoom.core.pyramid import TileIndex, level_sizes
from plexzoom.core.storage import LocalStorage, ObjectWriter, Storage
from tests.conftest import QUADRANTS, decode, encode, noise_image, quadrant_bytes
from tests.core.readers.files import sample_one_channel, sample_three_channels


def store_original(storage: Storage, data: bytes, filename: str | None = "upload.bin") -> str:
    """Put an original into storage as the API would, and return its queued image's id."""
    manifest = start_image(storage, filename)
    storage.put_bytes(keys.original_key(manifest.id), data)
    submit_image(storage, manifest, sniff_format(data[:16]), len(data), lambda _id: None)
    return manifest.id


@pytest.fixture
def options(tmp_path: Path) -> ConvertOptions:
    """Conversion options with a scratch folder the test can inspect."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return ConvertOptions(scratch_dir=scratch, progress_interval_s=0.01)


def pyramid_keys(image_id: str, generation: str) -> set[str]:
    """The four keys of a converted image."""
    return {
        keys.manifest_key(image_id),
        keys.original_key(image_id),
        keys.pyramid_key(image_id, generation, "image"),
        keys.index_key(image_id, generation, "image"),
    }


def read_tile(storage: Storage, manifest: Manifest, level: int, col: int, row: int) -> bytes:
    """One tile of the committed pyramid, read the way the tile service reads it."""
    gen = manifest.pyramids["image"].generation
    index = TileIndex.from_json(storage.get_bytes(keys.index_key(manifest.id, gen, "image")))
    where = index.tile_range(level, col, row)
    assert where is not None
    return storage.get_range(keys.pyramid_key(manifest.id, gen, "image"), *where)


def test_convert_end_to_end(storage: Storage, options: ConvertOptions) -> None:
    """A queued PNG becomes a ready image with dimensions, channels and one committed pyramid."""
    image_id = store_original(storage, quadrant_bytes("png", 1000, 600))
    manifest = convert_image(storage, image_id, options)
    assert read_manifest(storage, image_id) == manifest
    assert (manifest.status, manifest.stage, manifest.progress, manifest.error) == (
        "ready",
        "done",
        1.0,
        None,
    )
    assert (manifest.width, manifest.height) == (1000, 600)
    assert manifest.channels == RGB_CHANNELS
    pyramid = manifest.pyramids["image"]
    assert pyramid.generation == manifest.generation
    assert (pyramid.width, pyramid.height, pyramid.tile_size, pyramid.overlap) == (
        1000,
        600,
        254,
        1,
    )
    assert pyramid.format == "jpeg"
    assert pyramid.levels == len(level_sizes(1000, 600))
    zip_key = keys.pyramid_key(image_id, manifest.generation, "image")
    assert pyramid.size == storage.size(zip_key)
    assert set(storage.list_keys("")) == pyramid_keys(image_id, manifest.generation)
    assert list((options.scratch_dir or Path("/nonexistent")).iterdir()) == []
    corners = {
        "top_left": (pyramid.levels - 1, 0, 0),
        "bottom_right": (pyramid.levels - 1, 3, 2),
    }
    for name, (level, col, row) in corners.items():
        pixels = decode(read_tile(storage, manifest, level, col, row))
        assert np.abs(pixels.mean(axis=(0, 1)) - QUADRANTS[name]).max() < 4, name


def _all_tiles(storage: Storage, manifest: Manifest) -> dict[tuple[int, int, int], np.ndarray]:
    gen = manifest.pyramids["image"].generation
    index = TileIndex.from_json(storage.get_bytes(keys.index_key(manifest.id, gen, "image")))
    with zipfile.ZipFile(
        io.BytesIO(storage.get_bytes(keys.pyramid_key(manifest.id, gen, "image")))
    ) as zf:
        assert zf.testzip() is None
    tiles = {}
    for level, entry in enumerate(index.levels):
        for row in range(entry["rows"]):
            for col in range(entry["cols"]):
                tiles[(level, col, row)] = decode(read_tile(storage, manifest, level, col, row))
    return tiles


@pytest.mark.parametrize("seen_as", ["queued", "processing"])
def test_a_redelivered_job_gives_the_same_result(
    local_storage: LocalStorage, options: ConvertOptions, seen_as: str
) -> None:
    """Running the job again (as a redelivery would see it mid-flight) leaves the same pyramid."""
    image_id = store_original(local_storage, encode(noise_image(700, 500), "png"))
    first = convert_image(local_storage, image_id, options)
    first_keys = set(local_storage.list_keys(""))
    first_tiles = _all_tiles(local_storage, first)
    first.status = seen_as  # type: ignore[assignment]
    write_manifest(local_storage, first)
    second = convert_image(local_storage, image_id, options)
    assert second.status == "ready"
    assert second.generation == first.generation
    assert set(local_storage.list_keys("")) == first_keys
    second_tiles = _all_tiles(local_storage, second)
    assert second_tiles.keys() == first_tiles.keys()
    for where, pixels in first_tiles.items():
        assert np.array_equal(second_tiles[where], pixels), where


def test_a_finished_image_is_left_alone(
    local_storage: LocalStorage, options: ConvertOptions
) -> None:
    """A late duplicate message for a ready image changes nothing."""
    image_id = store_original(local_storage, quadrant_bytes("png", 300, 200))
    done = convert_image(local_storage, image_id, options)
    again = convert_image(local_storage, image_id, options)
    assert again == done
    assert read_manifest(local_storage, image_id) == done


def _record(key: str, data: bytes, written: list[Manifest]) -> None:
    if key.endswith("manifest.json"):
        written.append(Manifest.model_validate_json(data))


class RecordingStorage:
    """Passes everything to a storage; calls hooks after puts and before uploads start."""

    def __init__(
        self,
        inner: Storage,
        after_put: Callable[[str, bytes], None] | None = None,
        before_upload: Callable[[str], None] | None = None,
    ) -> None:
        self.inner, self.after_put, self.before_upload = inner, after_put, before_upload

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        self.inner.put_bytes(key, data, content_type)
        if self.after_put:
            self.after_put(key, data)

    def put_if_match(self, key: str, data: bytes, etag: str | None, content_type: str = "") -> str:
        tag = self.inner.put_if_match(key, data, etag, content_type)
        if self.after_put:
            self.after_put(key, data)
        return tag

    def upload_file(self, key: str, path: Path) -> None:
        if self.before_upload:
            self.before_upload(key)
        self.inner.upload_file(key, path)

    def open_writer(self, key: str) -> ObjectWriter:
        if self.before_upload:
            self.before_upload(key)
        return self.inner.open_writer(key)


def test_progress_is_published_while_converting(
    local_storage: LocalStorage, options: ConvertOptions
) -> None:
    """The manifest passes through the stages with progress that never goes back."""
    image_id = store_original(local_storage, encode(noise_image(3000, 2000), "tiff"))
    written: list[Manifest] = []
    recording = RecordingStorage(
        local_storage, after_put=lambda key, data: _record(key, data, written)
    )
    convert_image(recording, image_id, options)  # type: ignore[arg-type]
    stages = [m.stage for m in written]
    for stage in ("reading", "building pyramid", "done"):
        assert stage in stages
    progress = [m.progress for m in written]
    assert progress == sorted(progress)
    assert any(0.05 < p < 0.9 for p in progress), "no progress was published while building"
    assert [m.status for m in written][-1] == "ready"
    assert {m.status for m in written[:-1]} == {"processing"}


def test_a_corrupt_original_fails_with_a_reason_and_is_kept(
    local_storage: LocalStorage, options: ConvertOptions
) -> None:
    """A damaged file ends 'failed' with a sentence a person can act on; the original stays."""
    data = b"II*\x00" + bytes(5000)
    image_id = store_original(local_storage, data)
    manifest = convert_image(local_storage, image_id, options)
    assert manifest.status == "failed"
    assert manifest.error is not None
    assert "truncated or damaged" in manifest.error
    assert "Traceback" not in manifest.error and "vips" not in manifest.error.lower()
    assert read_manifest(local_storage, image_id).status == "failed"
    assert local_storage.get_bytes(keys.original_key(image_id)) == data
    assert set(local_storage.list_keys("")) == {
        keys.manifest_key(image_id),
        keys.original_key(image_id),
    }
    assert list((options.scratch_dir or Path("/nonexistent")).iterdir()) == []


def _tifffile_rgb(pixels: np.ndarray) -> bytes:
    """A strip TIFF whose header comes first (so a cut file still opens)."""
    out = io.BytesIO()
    tifffile.imwrite(out, pixels, photometric="rgb", rowsperstrip=16)
    return out.getvalue()


@pytest.mark.parametrize(
    "fmt",
    [
        "tiff-header-first",
        "tiff-header-last",
        "png",
        "jpeg",
        "webp",
    ],
)
def test_a_truncated_original_fails(
    local_storage: LocalStorage, options: ConvertOptions, fmt: str
) -> None:
    """A file cut off half way ends 'failed' (a half-black slide must not be shown as ready)."""
    image = noise_image(800, 600)
    if fmt == "tiff-header-first":
        data = _tifffile_rgb(np.asarray(image.numpy()))
    else:
        data = encode(image, fmt.removesuffix("-header-last"))
    image_id = store_original(local_storage, data[: len(data) * 6 // 10])
    manifest = convert_image(local_storage, image_id, options)
    assert manifest.status == "failed"
    assert manifest.error and "truncated or damaged" in manifest.error


def test_a_missing_original_fails(local_storage: LocalStorage, options: ConvertOptions) -> None:
    """If the original vanished, the job ends 'failed' rather than retrying forever."""
    image_id = store_original(local_storage, quadrant_bytes())
    local_storage.delete(keys.original_key(image_id))
    assert convert_image(local_storage, image_id, options).status == "failed"


def test_a_job_for_an_unknown_image_is_not_found(
    local_storage: LocalStorage, options: ConvertOptions
) -> None:
    """A message for an image that was deleted raises NotFound (the actor drops it)."""
    image_id = store_original(local_storage, quadrant_bytes())
    delete_image(local_storage, image_id)
    with pytest.raises(NotFound):
        convert_image(local_storage, image_id, options)
    assert local_storage.list_keys("") == []


def test_repeated_attempts_end_failed(local_storage: LocalStorage, options: ConvertOptions) -> None:
    """After max_attempts starts the job gives up with a message instead of looping."""
    image_id = store_original(local_storage, quadrant_bytes())
    manifest = read_manifest(local_storage, image_id)
    manifest.status, manifest.attempts = "processing", options.max_attempts
    write_manifest(local_storage, manifest)
    failed = convert_image(local_storage, image_id, options)
    assert failed.status == "failed"
    assert failed.error and "upload the file again" in failed.error


def test_reconversion_replaces_the_old_generation(
    storage: Storage, options: ConvertOptions
) -> None:
    """After a re-conversion commits, only the new generation's pyramid remains."""
    image_id = store_original(storage, quadrant_bytes("jpeg", 600, 400))
    old = convert_image(storage, image_id, options)
    reconvert_image(storage, image_id, lambda _id: None)
    new = convert_image(storage, image_id, options)
    assert new.status == "ready"
    assert new.generation != old.generation
    assert new.pyramids["image"].generation == new.generation
    assert set(storage.list_keys("")) == pyramid_keys(image_id, new.generation)


def test_deleting_during_conversion_is_not_undone(
    local_storage: LocalStorage, options: ConvertOptions
) -> None:
    """An image deleted while its pyramid is being stored stays deleted."""
    image_id = store_original(local_storage, quadrant_bytes("png", 600, 400))

    def delete_now(key: str) -> None:
        if key.endswith("image.zip"):
            delete_image(local_storage, image_id)

    racing = RecordingStorage(local_storage, before_upload=delete_now)
    convert_image(racing, image_id, options)  # type: ignore[arg-type]
    assert local_storage.list_keys("") == []


def _gif_bytes() -> bytes:
    """The quadrant pattern as a GIF (a format libvips reads but plexzoom does not accept)."""
    return bytes(pyvips.Image.new_from_buffer(quadrant_bytes("png", 64, 64), "").gifsave_buffer())


def test_an_original_outside_the_allow_list_fails(
    local_storage: LocalStorage, options: ConvertOptions
) -> None:
    """The worker refuses formats the API would refuse (originals may arrive other ways)."""
    manifest = start_image(local_storage, "x.gif")
    local_storage.put_bytes(keys.original_key(manifest.id), _gif_bytes())
    manifest.status = "queued"
    write_manifest(local_storage, manifest)
    result = convert_image(local_storage, manifest.id, options)
    assert result.status == "failed"
    assert result.error and "Supported formats" in result.error


@pytest.mark.parametrize(
    ("write_sample", "size"),
    [(sample_three_channels, (954, 1020)), (sample_one_channel, (914, 1260))],
    ids=["44153", "10974"],
)
def test_the_shipped_samples_convert(
    local_storage: LocalStorage,
    options: ConvertOptions,
    tmp_path: Path,
    write_sample: Callable[[Path], Path],
    size: tuple[int, int],
) -> None:
    """Stand-ins for the two seed OME-TIFF samples convert to ready pyramids of their full size."""
    sample = write_sample(tmp_path / "sample.ome.tif")
    image_id = store_original(local_storage, sample.read_bytes(), sample.name)
    manifest = convert_image(local_storage, image_id, options)
    assert manifest.status == "ready", manifest.error
    assert (manifest.width, manifest.height) == size
    assert manifest.pyramids["image"].levels == len(level_sizes(*size))
    tile = decode(read_tile(local_storage, manifest, manifest.pyramids["image"].levels - 1, 0, 0))
    assert tile.std() > 1, "the top-left tile is blank"


def test_a_sample_with_channels_as_pages_keeps_its_channels(
    local_storage: LocalStorage, options: ConvertOptions, tmp_path: Path
) -> None:
    """The 44153.tif stand-in's three OME channels (Red, Green, Blue) all reach the image, each
    in its colour through its default window."""
    sample = sample_three_channels(tmp_path / "44153.ome.tif")
    data = sample.read_bytes()
    manifest = convert_image(local_storage, store_original(local_storage, data), options)
    assert len(manifest.channels) == 3
    pages = [pyvips.Image.new_from_file(str(sample), page=p) for p in range(3)]
    tile = decode(read_tile(local_storage, manifest, manifest.pyramids["image"].levels - 1, 1, 1))
    for band, (page, channel) in enumerate(zip(pages, manifest.channels, strict=True)):
        native = np.asarray(page.crop(253, 253, tile.shape[1], tile.shape[0]).numpy(), float)
        assert channel.window is not None
        low, high = channel.window.min, channel.window.max
        want = np.clip((native - low) / (high - low), 0, 1) * 255
        # JPEG chroma subsampling blurs colour a little; other channels differ by 45 or more
        assert np.abs(tile[..., band].astype(float) - want).mean() < 15, band
