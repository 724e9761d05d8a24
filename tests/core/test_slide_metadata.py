"""Whole-slide scans in TIFF containers: the pixels as any TIFF, the pixel size, objective power
and vendor from OpenSlide, and nothing else of what the slide's driver reports."""

from pathlib import Path

import numpy as np
import pytest
import tifffile

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.formats import sniff_format
from plexzoom.core.images import start_image, submit_image
from plexzoom.core.manifest import Manifest, read_manifest
from plexzoom.core.readers import open_source
from plexzoom.core.readers.slide import slide_info
from plexzoom.core.storage import LocalStorage
from tests.slides import Planted, write_aperio_svs, write_generic_tiff, write_philips_tiff


def converted(path: Path, tmp_path: Path) -> Manifest:
    storage = LocalStorage(tmp_path / "data")
    data = path.read_bytes()
    manifest = start_image(storage, "slide")
    storage.put_bytes(keys.original_key(manifest.id), data)
    submit_image(storage, manifest, sniff_format(data[:520]), 1, lambda _: None)
    convert_image(storage, manifest.id, ConvertOptions(scratch_dir=tmp_path))
    return read_manifest(storage, manifest.id)


@pytest.mark.parametrize(
    ("write", "vendor", "size"),
    [(write_aperio_svs, "aperio", (4000, 3000)), (write_philips_tiff, "philips", (2048, 1536))],
)
def test_slides_get_their_pixel_size_objective_and_vendor(
    write, vendor: str, size: tuple[int, int], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "slide.tif"
    write(path)
    manifest = converted(path, tmp_path)
    assert manifest.status == "ready", manifest.error
    assert (manifest.width, manifest.height) == size
    assert manifest.physical_size == pytest.approx((0.499, 0.499, "µm"), abs=1e-3)
    assert manifest.notes["slide_vendor"] == vendor
    assert manifest.notes["objective_power"] == 20
    record = manifest.model_dump_json()
    for planted in vars(Planted()).values():  # the driver's other properties are not taken
        assert planted not in record, planted


def test_a_tiff_without_a_vendor_is_no_slide(tmp_path: Path) -> None:
    """A generic tiled TIFF and an OME-TIFF keep their own metadata; OpenSlide adds nothing."""
    generic = tmp_path / "generic.tif"
    write_generic_tiff(generic)
    assert slide_info(generic) is None
    ome = tmp_path / "x.ome.tif"
    planes = np.zeros((2, 64, 64), np.uint16)
    tifffile.imwrite(ome, planes, ome=True, metadata={"axes": "CYX", "PhysicalSizeX": 0.2,
                                                      "PhysicalSizeY": 0.2})  # fmt: skip
    with open_source(ome) as source:
        assert "slide_vendor" not in source.notes
        assert source.physical_size is not None and source.physical_size[0] == pytest.approx(0.2)
    assert slide_info(tmp_path / "missing.tif") is None  # errors are never fatal
