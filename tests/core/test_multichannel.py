"""Multi-channel conversion end to end: channel pyramids, code tables, composite, metadata."""

from pathlib import Path

import numpy as np
import pytest
import pyvips
import scipy.io
import tifffile

from plexzoom.api.schemas import LinkContext, to_status
from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.formats import SNIFF_BYTES, sniff_format
from plexzoom.core.images import start_image, submit_image
from plexzoom.core.manifest import Manifest
from plexzoom.core.multichannel import channel_groups
from plexzoom.core.pyramid import TileIndex
from plexzoom.core.readers import open_source
from plexzoom.core.render import ChannelRender, channel_table, render
from plexzoom.core.storage import LocalStorage
from tests.core.readers.files import write_mat73

NAMES = ["DAPI", "FITC", "TRITC", "Cy5", "Cy7"]


def convert_file(storage: LocalStorage, path: Path, tmp_path: Path) -> Manifest:
    """Store ``path`` as an original and convert it."""
    data = path.read_bytes()
    manifest = start_image(storage, path.name)
    storage.put_bytes(keys.original_key(manifest.id), data)
    submit_image(storage, manifest, sniff_format(data[:SNIFF_BYTES]), len(data), lambda _: None)
    return convert_image(storage, manifest.id, ConvertOptions(scratch_dir=tmp_path))


def full_res(storage: LocalStorage, manifest: Manifest, name: str) -> np.ndarray:
    """Tile (0, 0) of a pyramid's full-resolution level, decoded."""
    gen = manifest.generation
    index = TileIndex.from_json(storage.get_bytes(keys.index_key(manifest.id, gen, name)))
    where = index.tile_range(index.max_level, 0, 0)
    assert where is not None
    data = storage.get_range(keys.pyramid_key(manifest.id, gen, name), *where)
    pixels = np.asarray(pyvips.Image.new_from_buffer(data, "").numpy())
    return pixels if pixels.ndim == 3 else pixels[..., None]


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    """Local storage in a temp folder."""
    return LocalStorage(tmp_path / "data")


def test_ome_tiff_with_named_16_bit_channels(storage: LocalStorage, tmp_path: Path) -> None:
    """Five named uint16 channels: a lossless pyramid each, code tables, and the composite."""
    rng = np.random.default_rng(0)
    planes = rng.gamma(2, 150, (5, 300, 400)).astype(np.uint16)
    path = tmp_path / "five.ome.tif"
    tifffile.imwrite(
        path,
        planes,
        ome=True,
        tile=(128, 128),
        compression="zlib",
        metadata={"axes": "CYX", "Channel": {"Name": NAMES}},
    )
    manifest = convert_file(storage, path, tmp_path)
    assert manifest.status == "ready", manifest.error
    assert [c.name for c in manifest.channels] == NAMES
    assert set(manifest.pyramids) == {"c0", "c1", "c2", "c3", "c4", "image"}
    assert manifest.pyramids["c0"].format == "png"
    for channel in manifest.channels:
        assert channel.dtype == "uint16" and channel.lut and channel.stats and channel.window
        codes = full_res(storage, manifest, f"c{channel.index}")
        lut = np.asarray(channel.lut)
        native = planes[channel.index, : codes.shape[0], : codes.shape[1]]
        below = native <= channel.stats.percentiles["99.9"]
        step = np.diff(lut[:240]).max()
        assert np.all(np.abs(lut[codes[..., 0]] - native)[below] <= step)
    composite = full_res(storage, manifest, "image")
    assert composite.shape[2] == 3 and composite.mean() > 20


def test_the_composite_is_the_render_model_of_the_default_settings(
    storage: LocalStorage, tmp_path: Path
) -> None:
    """The composite pyramid shows what the server render draws for the default windows and
    colours (within JPEG's error), and a wrong colour would show."""
    y, x = np.mgrid[0:240, 0:250]
    planes = np.stack([(x * (i + 1) * 3 + y * (5 - i) * 2) % 1500 for i in range(5)])
    planes = planes.astype(np.uint16)  # smooth ramps (JPEG keeps them), different per channel
    path = tmp_path / "five.tif"
    tifffile.imwrite(path, planes, photometric="minisblack")
    manifest = convert_file(storage, path, tmp_path)
    assert manifest.status == "ready", manifest.error
    codes = [full_res(storage, manifest, f"c{c.index}")[..., 0] for c in manifest.channels]

    def drawn(colors: list[str]) -> np.ndarray:
        tables = []
        for channel, color in zip(manifest.channels, colors, strict=True):
            assert channel.window is not None and channel.lut is not None
            setting = ChannelRender(
                index=channel.index, color=color, min=channel.window.min, max=channel.window.max
            )
            tables.append(channel_table(channel.lut, setting))
        return render(codes, tables).astype(np.float64)

    composite = full_res(storage, manifest, "image").astype(np.float64)
    expected = drawn([c.color for c in manifest.channels])
    assert np.abs(composite - expected).mean() < 3.0  # JPEG tiles: sharp edges cost a little
    swapped = drawn([c.color for c in manifest.channels][::-1])  # the control: other colours
    assert np.abs(composite - swapped).mean() > 10.0


def test_sixty_four_channels(storage: LocalStorage, tmp_path: Path) -> None:
    """64 channels convert, each with its own pyramid, name and colour."""
    planes = np.stack([np.full((40, 50), i * 10, dtype=np.uint16) for i in range(64)])
    planes[:, 10:20, 10:20] += 5
    path = tmp_path / "many.tif"
    tifffile.imwrite(path, planes, photometric="minisblack")
    manifest = convert_file(storage, path, tmp_path)
    assert manifest.status == "ready", manifest.error
    assert len(manifest.channels) == 64
    assert len(manifest.pyramids) == 65
    assert manifest.channels[63].name == "Channel 64"


def test_float_with_nan_draws_zero(storage: LocalStorage, tmp_path: Path) -> None:
    """NaN pixels are left out of the statistics and drawn as code 0."""
    plane = np.linspace(0, 1, 300 * 200, dtype=np.float32).reshape(200, 300)
    plane[50:60, 50:60] = np.nan
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, plane)
    manifest = convert_file(storage, path, tmp_path)
    assert manifest.status == "ready", manifest.error
    stats = manifest.channels[0].stats
    assert stats is not None and stats.non_finite == 100
    codes = full_res(storage, manifest, "c0")[..., 0]
    assert np.all(codes[50:60, 50:60] == 0)
    assert codes[199 if codes.shape[0] > 199 else -1, -1] > 200


def test_default_window_shows_dim_structure(storage: LocalStorage, tmp_path: Path) -> None:
    """12-bit data in 16 bits with a few very bright pixels: the composite still shows the dim
    pattern instead of black (a naive min/max window would crush it into a few codes)."""
    plane = np.zeros((256, 256), dtype=np.uint16)
    plane[:, 128:] = 1200
    plane[:, :128] = 300
    plane[:2, :2] = 65535
    path = tmp_path / "dim.tif"
    tifffile.imwrite(path, plane)
    manifest = convert_file(storage, path, tmp_path)
    composite = full_res(storage, manifest, "image")
    left, right = composite[100:150, 20:100].mean(), composite[100:150, 150:230].mean()
    assert right - left > 100, (left, right)


def test_z_planes_take_the_first_and_say_so(storage: LocalStorage, tmp_path: Path) -> None:
    """An XYZCT OME-TIFF with 3 Z planes shows Z=0 and records the choice."""
    stack = np.zeros((2, 3, 64, 64), dtype=np.uint8)  # C, Z, Y, X
    for c in range(2):
        for z in range(3):
            stack[c, z] = 10 * z + 100 * c
    path = tmp_path / "z.ome.tif"
    tifffile.imwrite(path, stack, ome=True, metadata={"axes": "CZYX"})
    manifest = convert_file(storage, path, tmp_path)
    assert manifest.status == "ready", manifest.error
    assert manifest.notes.get("z") == 0
    lut = np.asarray(manifest.channels[1].lut)
    assert lut[full_res(storage, manifest, "c1")[..., 0]].mean() == pytest.approx(100, abs=0.01)


@pytest.mark.parametrize("kind", ["mat5", "mat73", "npy-hwc", "npy-chw"])
def test_hyperspectral_cubes(storage: LocalStorage, tmp_path: Path, kind: str) -> None:
    """A 31-band cube from MATLAB (v5, v7.3) or NumPy converts with its wavelengths."""
    rng = np.random.default_rng(1)
    cube = rng.random((60, 80, 31)).astype(np.float32)
    waves = np.linspace(400, 700, 31)
    path = tmp_path / f"cube-{kind}"
    if kind == "mat5":
        path = path.with_suffix(".mat")
        scipy.io.savemat(path, {"cube": cube, "wavelength": waves})
    elif kind == "mat73":
        write_mat73(path, {"cube": cube, "wavelength": waves})
    else:
        np.save(path, cube if kind == "npy-hwc" else np.moveaxis(cube, 2, 0).copy())
        path = path.with_suffix(".npy")
    manifest = convert_file(storage, path, tmp_path)
    assert manifest.status == "ready", manifest.error
    assert (manifest.width, manifest.height, len(manifest.channels)) == (80, 60, 31)
    if kind.startswith("mat"):
        assert manifest.channels[10].wavelength_nm == pytest.approx(500)
    assert manifest.channels[5].stats is not None
    assert manifest.channels[5].stats.mean == pytest.approx(cube[..., 5].mean(), abs=1e-3)


def test_the_named_matlab_variable_is_used(storage: LocalStorage, tmp_path: Path) -> None:
    """The upload option `variable` picks an array other than the largest."""
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"big": np.zeros((60, 80, 4)), "chosen": np.ones((30, 40, 2))})
    data = path.read_bytes()
    manifest = start_image(storage, "two.mat", variable="chosen")
    storage.put_bytes(keys.original_key(manifest.id), data)
    submit_image(storage, manifest, sniff_format(data[:SNIFF_BYTES]), len(data), lambda _: None)
    done = convert_image(storage, manifest.id, ConvertOptions(scratch_dir=tmp_path))
    assert done.status == "ready", done.error
    assert (done.width, done.height, len(done.channels)) == (40, 30, 2)


def test_a_hyperspectral_cube_gets_a_pca_pyramid(storage: LocalStorage, tmp_path: Path) -> None:
    """Bands driven by two hidden sources: the first component separates them, as RGB."""
    rng = np.random.default_rng(7)
    height, width, bands = 64, 96, 12
    left = np.zeros((height, width))
    left[:, : width // 2] = 1.0
    spectrum_a, spectrum_b = np.linspace(1, 0, bands), np.linspace(0, 1, bands)
    cube = left[..., None] * spectrum_a + (1 - left)[..., None] * spectrum_b
    cube = (cube + rng.normal(0, 0.01, cube.shape)).astype(np.float32)
    path = tmp_path / "cube.mat"
    scipy.io.savemat(path, {"cube": cube, "wavelength": np.linspace(420, 680, bands)})
    manifest = convert_file(storage, path, tmp_path)
    assert manifest.status == "ready", manifest.error
    assert "pca" in manifest.pyramids
    links = to_status(manifest, LinkContext(base_url="http://h/"), storage).links
    assert links.pca == f"http://h/tiles/{manifest.id}/{manifest.generation}/pca.dzi"
    rgb = full_res(storage, manifest, "pca").astype(float)
    first = rgb[..., 0]
    # The first component is the left/right split: the halves sit at opposite ends of its window.
    assert abs(first[:, : width // 2 - 2].mean() - first[:, width // 2 + 2 :].mean()) > 150


def test_pca_weights_find_the_main_axis() -> None:
    """On samples stretched along one direction, the first component is that direction."""
    from plexzoom.core.pca import pca_weights

    rng = np.random.default_rng(8)
    axis = np.array([3.0, 4.0, 0.0]) / 5
    sample = rng.normal(0, 5, (2000, 1)) * axis + rng.normal(0, 0.1, (2000, 3))
    weights, low, high = pca_weights(sample)
    assert abs(abs(weights[:, 0] @ axis) - 1) < 1e-3
    assert np.all(high > low)


@pytest.mark.parametrize("layout", ["pages", "interleaved"])
def test_channels_read_a_few_at_a_time_give_the_same_pixels(tmp_path: Path, layout: str) -> None:
    """Reading pages per_pass at a time (the memory bound) changes no pixel and no statistic."""
    rng = np.random.default_rng(3)
    planes = rng.gamma(2, 300, (5, 260, 300)).astype(np.uint16)
    path = tmp_path / f"{layout}.tif"
    if layout == "pages":
        tifffile.imwrite(path, planes, photometric="minisblack", tile=(64, 64))
    else:
        tifffile.imwrite(
            path, np.moveaxis(planes, 0, -1), photometric="minisblack", planarconfig="contig"
        )
    results = []
    for per_pass in (1, 2, 64):
        storage = LocalStorage(tmp_path / f"data-{per_pass}")
        data = path.read_bytes()
        manifest = start_image(storage, path.name)
        storage.put_bytes(keys.original_key(manifest.id), data)
        submit_image(storage, manifest, sniff_format(data[:SNIFF_BYTES]), len(data), lambda _: None)
        options = ConvertOptions(scratch_dir=tmp_path, channels_per_pass=per_pass)
        manifest = convert_image(storage, manifest.id, options)
        assert manifest.status == "ready", manifest.error
        assert len(manifest.channels) == 5
        tiles = [full_res(storage, manifest, f"c{i}") for i in range(5)]
        stats = [c.stats for c in manifest.channels]
        results.append((tiles, stats, full_res(storage, manifest, "image")))
    for tiles, stats, composite in results[:2]:
        assert stats == results[2][1]
        assert all(np.array_equal(a, b) for a, b in zip(tiles, results[2][0], strict=True))
        assert np.array_equal(composite, results[2][2])


def test_channel_groups_only_split_separate_pages(tmp_path: Path) -> None:
    """Pages are read per_pass at a time; samples of one page decode together anyway."""
    planes = np.zeros((5, 8, 8), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "pages.tif", planes, photometric="minisblack")
    samples = np.moveaxis(planes, 0, -1)
    tifffile.imwrite(
        tmp_path / "samples.tif", samples, photometric="minisblack", planarconfig="contig"
    )
    with open_source(tmp_path / "pages.tif") as source:
        assert channel_groups(source, 2) == [[0, 1], [2, 3], [4]]
    with open_source(tmp_path / "samples.tif") as source:
        assert channel_groups(source, 2) == [[0, 1, 2, 3, 4]]
