"""The conversion job and hostile originals: configured limits, damaged data in any path."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import tifffile

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.formats import sniff_format
from plexzoom.core.images import start_image, submit_image
from plexzoom.core.readers import ReadOptions
from plexzoom.core.storage import LocalStorage
from tests.conftest import quadrant_bytes
from tests.core.readers.files import ome_xml
from tests.core.readers.hostile import tiff_with_garbage_strips


def store_original(storage: LocalStorage, data: bytes, variable: str | None = None) -> str:
    """Put an original into storage as the API would; return its queued image's id."""
    manifest = start_image(storage, "upload.bin", variable)
    storage.put_bytes(keys.original_key(manifest.id), data)
    submit_image(storage, manifest, sniff_format(data[:520]), len(data), lambda _id: None)
    return manifest.id


@pytest.fixture
def options(tmp_path: Path) -> ConvertOptions:
    """Conversion options with the limits of ReadOptions' defaults."""
    return ConvertOptions(scratch_dir=tmp_path, progress_interval_s=0.01)


def test_the_configured_limits_apply(local_storage: LocalStorage, options: ConvertOptions) -> None:
    """The job reads with the worker's limits: a 400-wide image under a 300 px limit fails."""
    data = quadrant_bytes("png", 400, 300)
    narrow = ConvertOptions(scratch_dir=options.scratch_dir, read=ReadOptions(max_width=300))
    image_id = store_original(local_storage, data)
    manifest = convert_image(local_storage, image_id, narrow)
    assert manifest.status == "failed"
    assert (
        manifest.error and "400 x 300 pixels; this server accepts at most 300 x" in manifest.error
    )
    assert local_storage.get_bytes(keys.original_key(image_id)) == data
    assert convert_image(local_storage, store_original(local_storage, data), options).status == (
        "ready"
    )


def test_the_variable_and_the_limits_both_apply(
    local_storage: LocalStorage, tmp_path: Path
) -> None:
    """The image's own variable choice is merged with the configured limits, not replaced."""
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"big": np.ones((64, 64)), "small": np.ones((16, 16))})
    limited = ConvertOptions(scratch_dir=tmp_path, read=ReadOptions(max_width=32))
    chosen = store_original(local_storage, path.read_bytes(), variable="small")
    assert convert_image(local_storage, chosen, limited).status == "ready"
    largest = store_original(local_storage, path.read_bytes())
    assert convert_image(local_storage, largest, limited).status == "failed"


def test_damaged_data_in_a_channel_fails_without_a_retry(
    local_storage: LocalStorage, options: ConvertOptions
) -> None:
    """A grey TIFF whose deflate strips are garbage fails while its statistics are computed."""
    image_id = store_original(local_storage, tiff_with_garbage_strips())
    manifest = convert_image(local_storage, image_id, options)  # raises if it would be retried
    assert manifest.status == "failed"
    assert manifest.error and "truncated or damaged" in manifest.error


def test_the_picture_shown_is_the_page_the_reader_checked(
    local_storage: LocalStorage, tmp_path: Path
) -> None:
    """An RGB OME-TIFF names a small page and carries a larger one beside it: the page the
    reader planned and checked against the limits is the one shown, never the larger one."""
    path = tmp_path / "two-pages.ome.tif"
    description = ome_xml((64, 64), (3, 1, 1), pixel_type="uint8")
    with tifffile.TiffWriter(path) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8), photometric="rgb", description=description)
        writer.write(np.zeros((1200, 1000, 3), np.uint8), photometric="rgb", metadata=None)
    limited = ConvertOptions(scratch_dir=tmp_path, read=ReadOptions(max_width=999))
    image_id = store_original(local_storage, path.read_bytes())
    manifest = convert_image(local_storage, image_id, limited)
    assert manifest.status == "ready", manifest.error
    assert (manifest.width, manifest.height) == (64, 64)
    assert manifest.pyramids["image"].width == 64
