"""OME-TIFF: channel metadata, page mapping for every DimensionOrder, pyramids, references."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import tifffile

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers import ReadOptions, open_source
from tests.core.readers.files import (
    OME_2008_NS,
    OME_COLORS,
    OWN_UUID,
    ome_xml,
    pattern,
    sample_one_channel,
    sample_three_channels,
    write_pages,
)

NAMES = ["DAPI", "CD3", "CD8", "PanCK", "Ki67"]
H, W = 48, 64


@pytest.fixture
def five_channels() -> np.ndarray:
    """Five distinct 16-bit channels, C x H x W."""
    return np.stack([pattern(H, W, seed) for seed in range(5)])


@pytest.fixture(scope="module")
def three_channel_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated stand-in for the seed sample 44153.tif (2008 schema, Red/Green/Blue pages)."""
    return sample_three_channels(tmp_path_factory.mktemp("samples") / "44153.tif")


@pytest.fixture(scope="module")
def one_channel_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated stand-in for the seed sample 10974.tif (2008 schema, one unnamed page)."""
    return sample_one_channel(tmp_path_factory.mktemp("samples") / "10974.tif")


def assert_pixels(source_channel: np.ndarray, expected: np.ndarray) -> None:
    """The decoded channel equals the numpy source, checked at a few pixels and in full."""
    for y, x in [(0, 0), (H - 1, W - 1), (17, 23)]:
        assert source_channel[y, x] == expected[y, x]
    np.testing.assert_array_equal(source_channel, expected)


@pytest.mark.parametrize("storage", [{"tile": (32, 32), "compression": "zlib"}, {}])
def test_five_named_channels_as_pages(
    tmp_path: Path, five_channels: np.ndarray, storage: dict[str, object]
) -> None:
    path = tmp_path / "five.ome.tif"
    metadata = {
        "axes": "CYX",
        "Channel": {"Name": NAMES, "Color": list(OME_COLORS.values())},
        "PhysicalSizeX": 0.325,
        "PhysicalSizeY": 0.325,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeYUnit": "µm",
    }
    tifffile.imwrite(path, five_channels, ome=True, metadata=metadata, **storage)  # type: ignore[arg-type]
    with open_source(path) as source:
        assert (source.width, source.height, source.dtype) == (W, H, "uint16")
        assert [c.name for c in source.channels] == NAMES
        assert [c.color for c in source.channels] == list(OME_COLORS)
        assert source.physical_size == (0.325, 0.325, "µm")
        assert not source.is_rgb
        for i in range(5):
            assert_pixels(source.channel(i).numpy(), five_channels[i])


def test_five_named_channels_interleaved(tmp_path: Path, five_channels: np.ndarray) -> None:
    channels = "".join(
        f'<Channel ID="Channel:0:{i}" Name="{n}" EmissionWavelength="{450 + 50 * i}"/>'
        for i, n in enumerate(NAMES)
    )
    xml = ome_xml(
        (W, H), (5, 1, 1), channels=channels, tiff_data='<TiffData IFD="0" PlaneCount="1"/>'
    )
    path = write_pages(
        tmp_path / "inter.ome.tif", [five_channels.transpose(1, 2, 0)], xml, planarconfig="contig"
    )
    with open_source(path) as source:
        assert [c.name for c in source.channels] == NAMES
        assert [c.wavelength_nm for c in source.channels] == [450, 500, 550, 600, 650]
        for i in range(5):
            assert_pixels(source.channel(i).numpy(), five_channels[i])


def test_one_channel_element_covering_all_samples(
    tmp_path: Path, five_channels: np.ndarray
) -> None:
    channels = '<Channel ID="Channel:0:0" Name="Spectrum" SamplesPerPixel="5"/>'
    xml = ome_xml((W, H), (5, 1, 1), channels=channels)
    path = write_pages(
        tmp_path / "bf.ome.tif", [five_channels.transpose(1, 2, 0)], xml, planarconfig="contig"
    )
    with open_source(path) as source:
        assert [c.name for c in source.channels] == [f"Spectrum {i}" for i in range(1, 6)]
        assert_pixels(source.channel(3).numpy(), five_channels[3])


def plane_value(c: int, z: int, t: int) -> int:
    """A distinct constant for each (c, z, t) plane."""
    return 1000 * (c + 1) + 100 * z + 10 * t


@pytest.mark.parametrize("order", ["XYZCT", "XYCZT", "XYCTZ", "XYZTC", "XYTCZ", "XYTZC"])
def test_dimension_order_maps_pages_to_channels(tmp_path: Path, order: str) -> None:
    sizes = {"C": 3, "Z": 4, "T": 2}
    # Pages follow DimensionOrder: its third letter varies fastest.
    ranges = [range(sizes[d]) for d in reversed(order[2:])]
    planes = []
    for coords in itertools.product(*ranges):
        czt = dict(zip(reversed(order[2:]), coords, strict=True))
        planes.append(np.full((12, 16), plane_value(czt["C"], czt["Z"], czt["T"]), np.uint16))
    xml = ome_xml((16, 12), (3, 4, 2), order=order)
    path = write_pages(tmp_path / "czt.ome.tif", planes, xml)
    with open_source(path) as source:
        assert len(source.channels) == 3
        for c in range(3):
            assert np.all(source.channel(c).numpy() == plane_value(c, 0, 0))
        assert source.notes | {"z": 0, "t": 0, "z_planes": 4, "t_points": 2} == source.notes


def test_tiff_data_blocks_place_planes(tmp_path: Path) -> None:
    # Planes stored in reverse, each placed by its own TiffData block.
    blocks = "".join(
        f'<TiffData IFD="{2 - c}" FirstC="{c}" FirstZ="0" FirstT="0" PlaneCount="1"/>'
        for c in range(3)
    )
    planes = [np.full((12, 16), plane_value(c, 0, 0), np.uint16) for c in (2, 1, 0)]
    path = write_pages(
        tmp_path / "td.ome.tif", planes, ome_xml((16, 12), (3, 1, 1), tiff_data=blocks)
    )
    with open_source(path) as source:
        assert [int(source.channel(c).max()) for c in range(3)] == [
            plane_value(c, 0, 0) for c in range(3)
        ]


def test_the_sample_stand_in_has_the_seed_sample_traits(three_channel_sample: Path) -> None:
    """Big-endian, three uint8 8-row-strip pages, 2008-schema XML with LogicalChannel names."""
    assert three_channel_sample.read_bytes()[:2] == b"MM"
    with tifffile.TiffFile(three_channel_sample) as tif:
        pages = [page for page in tif.pages if isinstance(page, tifffile.TiffPage)]
    assert [(p.shape, p.dtype) for p in pages] == [((1020, 954), np.dtype("uint8"))] * 3
    assert {(p.compression, p.rowsperstrip, p.software) for p in pages} == {
        (1, 8, "LOCI Bio-Formats")
    }
    description = pages[0].description
    assert not pages[1].description and not pages[2].description
    assert f'xmlns="{OME_2008_NS}"' in description and "<Channel" not in description
    for name in ("Red", "Green", "Blue"):
        assert f'Name="{name}" SamplesPerPixel="1"/>' in description


def test_2008_schema_sample_three_channels(three_channel_sample: Path) -> None:
    with open_source(three_channel_sample) as source:
        assert (source.width, source.height, source.dtype) == (954, 1020, "uint8")
        assert [c.name for c in source.channels] == ["Red", "Green", "Blue"]
        assert not source.is_rgb
        expected = tifffile.imread(three_channel_sample)
        for i in range(3):
            np.testing.assert_array_equal(source.channel(i).numpy(), expected[i])


def test_2008_schema_sample_one_channel(one_channel_sample: Path) -> None:
    with open_source(one_channel_sample) as source:
        assert (source.width, source.height) == (914, 1260)
        assert [c.name for c in source.channels] == ["Channel 1"]
        np.testing.assert_array_equal(
            source.channel(0).numpy(), tifffile.imread(one_channel_sample)
        )


def test_64_channels(tmp_path: Path) -> None:
    stack = np.stack([np.full((24, 32), 100 * i, np.uint16) for i in range(64)])
    stack[:, 5, 7] = np.arange(64)
    names = [f"Marker {i}" for i in range(64)]
    path = tmp_path / "64.ome.tif"
    tifffile.imwrite(path, stack, ome=True, metadata={"axes": "CYX", "Channel": {"Name": names}})
    with open_source(path) as source:
        assert [c.name for c in source.channels] == names
        for i in (0, 31, 63):
            pixels = source.channel(i).numpy()
            assert pixels[0, 0] == 100 * i and pixels[5, 7] == i


def test_bigtiff_ome(tmp_path: Path, five_channels: np.ndarray) -> None:
    path = tmp_path / "big.ome.tif"
    tifffile.imwrite(path, five_channels, bigtiff=True, ome=True, metadata={"axes": "CYX"})
    assert path.read_bytes()[:4] == b"II+\x00"
    with open_source(path) as source:
        assert len(source.channels) == 5
        assert_pixels(source.channel(4).numpy(), five_channels[4])


def test_pyramidal_ome_tiff_reads_full_resolution(
    tmp_path: Path, five_channels: np.ndarray
) -> None:
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        options = {"tile": (16, 16), "photometric": "minisblack"}
        tif.write(
            five_channels,
            subifds=2,
            metadata={"axes": "CYX", "Channel": {"Name": NAMES}},
            **options,
        )  # type: ignore[arg-type]
        tif.write(five_channels[:, ::2, ::2], subfiletype=1, **options)  # type: ignore[arg-type]
        tif.write(five_channels[:, ::4, ::4], subfiletype=1, **options)  # type: ignore[arg-type]
    with open_source(path) as source:
        assert (source.width, source.height) == (W, H)
        assert [c.name for c in source.channels] == NAMES
        assert_pixels(source.channel(2).numpy(), five_channels[2])


def test_references_to_other_files_are_refused(tmp_path: Path) -> None:
    other = '<UUID FileName="part2.ome.tif">urn:uuid:00000000-0000-4000-8000-000000000002</UUID>'
    blocks = (
        '<TiffData IFD="0" FirstC="0" PlaneCount="1">'
        f'<UUID FileName="part1.ome.tif">{OWN_UUID}</UUID></TiffData>'
        f'<TiffData IFD="0" FirstC="1" PlaneCount="1">{other}</TiffData>'
    )
    xml = ome_xml((16, 12), (2, 1, 1), tiff_data=blocks)
    path = write_pages(tmp_path / "part1.ome.tif", [np.zeros((12, 16), np.uint16)], xml)
    with pytest.raises(UnsupportedFormat, match=r"references other files \(part2\.ome\.tif\)"):
        open_source(path)


def test_binary_only_is_refused(tmp_path: Path) -> None:
    extra = '<BinaryOnly MetadataFile="experiment.companion.ome" UUID="x"/>'
    xml = ome_xml((16, 12), (1, 1, 1), extra=extra)
    path = write_pages(tmp_path / "bin.ome.tif", [np.zeros((12, 16), np.uint16)], xml)
    with pytest.raises(UnsupportedFormat, match=r"experiment\.companion\.ome"):
        open_source(path)


def test_metadata_pointing_past_the_pages_is_corrupt(tmp_path: Path) -> None:
    xml = ome_xml((16, 12), (3, 1, 1))
    path = write_pages(tmp_path / "short.ome.tif", [np.zeros((12, 16), np.uint16)] * 2, xml)
    with pytest.raises(CorruptImage, match="channel 3"):
        open_source(path)


def test_unreadable_xml_falls_back_to_pages(tmp_path: Path) -> None:
    xml = ome_xml((16, 12), (2, 1, 1)).replace("SizeX=", "SizeX=x")
    path = write_pages(tmp_path / "bad.ome.tif", [np.zeros((12, 16), np.uint16)] * 2, xml)
    with open_source(path) as source:
        assert len(source.channels) == 2
        assert "ome_xml" in source.notes


def test_channel_limit(tmp_path: Path, five_channels: np.ndarray) -> None:
    path = tmp_path / "five.ome.tif"
    tifffile.imwrite(path, five_channels, ome=True, metadata={"axes": "CYX"})
    with pytest.raises(Exception, match="at most 4"):
        open_source(path, ReadOptions(max_channels=4))


def test_rgb_ome_tiff_is_rgb(tmp_path: Path) -> None:
    rgb = np.stack([pattern(H, W, s, "uint8") for s in range(3)], axis=-1)
    path = tmp_path / "rgb.ome.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", ome=True)
    with open_source(path) as source:
        assert source.is_rgb
        assert [c.name for c in source.channels] == ["Red", "Green", "Blue"]
        assert_pixels(source.channel(1).numpy(), rgb[:, :, 1])


def test_largest_image_of_several_is_read(tmp_path: Path) -> None:
    # Image 0 is a 8 x 6 label; image 1 (two channels) follows it without TiffData blocks.
    label = ome_xml((8, 6), (1, 1, 1), tiff_data="").replace("</OME>", "")
    main = ome_xml((16, 12), (2, 1, 1), tiff_data="").split("?>", 1)[1]
    main = main[main.index("<Image") :].replace('ID="Image:0"', 'ID="Image:1"')
    xml = label[: label.index("</Image>") + len("</Image>")] + main
    pages = [
        np.zeros((6, 8), np.uint16),
        np.full((12, 16), 5, np.uint16),
        np.full((12, 16), 9, np.uint16),
    ]
    path = write_pages(tmp_path / "two-images.ome.tif", pages, xml)
    with open_source(path) as source:
        assert (source.width, source.height, len(source.channels)) == (16, 12, 2)
        assert [int(source.channel(c).max()) for c in range(2)] == [5, 9]
        assert source.notes | {"ome_image": 1, "ome_images": 2} == source.notes


def test_identical_colours_are_no_colours(tmp_path: Path) -> None:
    channels = "".join(f'<Channel ID="Channel:0:{i}" Color="-1"/>' for i in range(3))
    xml = ome_xml((16, 12), (3, 1, 1), channels=channels)
    path = write_pages(tmp_path / "white.ome.tif", [np.zeros((12, 16), np.uint16)] * 3, xml)
    with open_source(path) as source:
        assert [c.color for c in source.channels] == [None] * 3
        assert "colors_ignored" in source.notes


def test_colour_words_as_names_give_colours(three_channel_sample: Path) -> None:
    with open_source(three_channel_sample) as source:
        assert [c.color for c in source.channels] == ["#ff0000", "#00ff00", "#0000ff"]
        with pytest.raises(IndexError):
            source.channel(3)
