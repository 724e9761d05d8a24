"""Writers for generated whole-slide images that OpenSlide opens as their vendor's format."""

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload
from xml.sax.saxutils import escape

import numpy as np
import pyvips
import tifffile

APERIO_LIBRARY = "Aperio Image Library v12.0.15"
TILE = 240
MPP = 0.499
YCBCR_SUBSAMPLING = 530
APP_MAG = 20
# The label card's paper: slide_pixels' tissue never has it (its blue stays <= 228), so privacy
# tests can look for this colour in whatever a conversion stores.
LABEL_PAPER = (255, 0, 255)


@dataclass(frozen=True)
class Planted:
    """Identifying strings a slide carries, for privacy tests to search for."""

    patient: str = "DOE^JANE"
    barcode: str = "S26-04711 A1"
    filename: str = "DOE_JANE_S26-04711"
    user: str = "j.smith"


def slide_pixels(width: int, height: int) -> np.ndarray:
    """Smooth RGB tissue-like pixels (height x width x 3), gentle enough to survive JPEG."""
    y, x = np.ogrid[0:height, 0:width]
    return _tissue(x, y, width, height)


def _tissue(x: np.ndarray, y: np.ndarray, width: int, height: int) -> np.ndarray:
    """slide_pixels of a width x height slide at the level-0 columns ``x`` (a 1 x n array) and
    rows ``y`` (an m x 1 array)."""
    shape = (y.shape[0], x.shape[1])
    red = np.broadcast_to(x * 255 // max(width - 1, 1), shape)
    green = np.broadcast_to(y * 255 // max(height - 1, 1), shape)
    blue = 128 + 100 * np.sin(x / 90.0) * np.cos(y / 70.0)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def level_tile_pixels(
    size: tuple[int, int], factor: int, left: int, top: int, tile: int
) -> np.ndarray:
    """One whole tile of ``slide_pixels(*size)[::factor, ::factor]`` at (left, top) of that
    level, computed alone; past the level's edge its last row and column repeat, as jpeg_tiles
    pads."""
    width, height = size
    level_width, level_height = -(-width // factor), -(-height // factor)
    cols = np.minimum(np.arange(left, left + tile), level_width - 1) * factor
    rows = np.minimum(np.arange(top, top + tile), level_height - 1) * factor
    return _tissue(cols[None, :], rows[:, None], width, height)


def jpeg_tile(pixels: np.ndarray, quality: int = 90) -> bytes:
    """One whole tile's RGB pixels as a complete 4:4:4 YCbCr JPEG."""
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    return bytes(image.jpegsave_buffer(Q=quality, subsample_mode="off", keep="none"))


def jpeg_tiles(pixels: np.ndarray, tile: int, quality: int = 90) -> Iterator[bytes]:
    """Each tile, row by row, as a complete 4:4:4 YCbCr JPEG; edge tiles are padded by
    repeating their last row and column, as TIFF tiles are always whole."""
    height, width = pixels.shape[:2]
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            part = pixels[top : top + tile, left : left + tile]
            pad = ((0, tile - part.shape[0]), (0, tile - part.shape[1]), (0, 0))
            yield jpeg_tile(np.pad(part, pad, mode="edge"), quality)


def level_jpeg_tiles(
    size: tuple[int, int], factor: int, tile: int, quality: int = 90
) -> Iterator[bytes]:
    """jpeg_tiles of ``slide_pixels(*size)[::factor, ::factor]``, each tile's pixels computed
    when it is written: the level is never held whole."""
    width, height = level_shape(size, factor)
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            yield jpeg_tile(level_tile_pixels(size, factor, left, top, tile), quality)


def level_shape(size: tuple[int, int], factor: int) -> tuple[int, int]:
    """(width, height) of ``slide_pixels(*size)[::factor, ::factor]``."""
    return -(-size[0] // factor), -(-size[1] // factor)


def write_jpeg_tiled(
    tif: tifffile.TiffWriter,
    pixels: np.ndarray,
    description: bytes,
    subfiletype: int = 0,
    tile: int = TILE,
    software: str = "",
) -> None:
    """Append one tiled page of JPEG tiles that pyvips compressed; mark_jpeg_pages must
    then relabel it, as tifffile would want imagecodecs to write the JPEG tags itself."""
    write_jpeg_tile_page(
        tif, jpeg_tiles(pixels, tile), pixels.shape[:2], description, subfiletype, tile, software
    )


def write_jpeg_tile_page(
    tif: tifffile.TiffWriter,
    tiles: Iterator[bytes],
    shape: tuple[int, int],
    description: bytes,
    subfiletype: int = 0,
    tile: int = TILE,
    software: str = "",
) -> None:
    """write_jpeg_tiled of a page (height, width) whose JPEG tiles come from ``tiles``."""
    tif.write(
        tiles,
        shape=(*shape, 3),
        dtype=np.uint8,
        tile=(tile, tile),
        software=software or None,
        photometric="rgb",
        description=description,
        subfiletype=subfiletype,
        metadata=None,
        # YCbCrSubSampling 1, 1: the tiles are 4:4:4.
        extratags=[(YCBCR_SUBSAMPLING, "H", 2, (1, 1), True)],
    )


def mark_jpeg_pages(path: Path) -> None:
    """Relabel the tiled pages as JPEG (Compression 7) in YCbCr (Photometric 6), which is
    what their tiles hold; libtiff and OpenSlide read the colour space from Photometric."""
    with tifffile.TiffFile(path, mode="r+b") as tif:
        for page in tif.pages:
            if page.is_tiled:
                page.tags["Compression"].overwrite(7)
                page.tags["PhotometricInterpretation"].overwrite(6)


def write_stripped(
    tif: tifffile.TiffWriter, pixels: np.ndarray, description: bytes, subfiletype: int = 0
) -> None:
    """Append one stripped, deflated RGB page."""
    tif.write(
        pixels,
        photometric="rgb",
        compression="zlib",
        rowsperstrip=16,
        description=description,
        subfiletype=subfiletype,
        metadata=None,
    )


def vips_pixels(image: pyvips.Image) -> np.ndarray:
    """An 8-bit pyvips image as a height x width x bands array."""
    shape = (image.height, image.width, image.bands)
    return np.ndarray(buffer=image.cast("uchar").write_to_memory(), dtype=np.uint8, shape=shape)


def text_card(
    lines: list[str], size: tuple[int, int], paper: int | tuple[int, int, int] = 255
) -> np.ndarray:
    """Black rendered text on a plain card of size (width, height), as RGB pixels; ``paper``
    is a grey level or an (r, g, b) colour."""
    width, height = size
    ink = pyvips.Image.text("\n".join(lines), width=width - 20, dpi=140, font="sans")
    card = np.full((height, width, 3), paper, dtype=np.uint8)
    mask = vips_pixels(ink)[: height - 10, : width - 10, 0]
    region = card[10 : 10 + mask.shape[0], 10 : 10 + mask.shape[1]]
    region[...] = (region * (1 - mask[..., None] / 255.0)).astype(np.uint8)
    return card


def label_pixels(planted: Planted) -> np.ndarray:
    """The slide label, with every planted string written on it."""
    lines = [planted.patient, planted.barcode, planted.filename, planted.user]
    return text_card(lines, (360, 300), LABEL_PAPER)


def macro_pixels(planted: Planted, tissue: np.ndarray) -> np.ndarray:
    """The overview camera's picture of the whole glass: label on the left, tissue right."""
    macro = np.full((300, 900, 3), 235, dtype=np.uint8)
    macro[:, :360] = label_pixels(planted)
    small = pyvips.Image.new_from_array(tissue).resize(480 / tissue.shape[1])
    shrunk = vips_pixels(small)[:280]
    macro[10 : 10 + shrunk.shape[0], 400 : 400 + shrunk.shape[1]] = shrunk
    return macro


def aperio_description(size: tuple[int, int], planted: Planted, first_line: str) -> bytes:
    """An SVS ImageDescription: library line, then |key = value properties as Aperio writes."""
    width, height = size
    properties = {
        "AppMag": str(APP_MAG),
        "StripeWidth": "2040",
        "ScanScope ID": "SS1234",
        "Filename": planted.filename,
        "Barcode": planted.barcode,
        "Patient": planted.patient,
        "Date": "03/14/26",
        "Time": "09:26:53",
        "Time Zone": "GMT+0100",
        "User": planted.user,
        "MPP": f"{MPP:.4f}",
        "Left": "25.691574",
        "Top": "23.449873",
        "ImageID": "1004486",
        "OriginalWidth": str(width),
        "OriginalHeight": str(height),
    }
    text = f"{APERIO_LIBRARY} \r\n{first_line}|" + "|".join(
        f"{key} = {value}" for key, value in properties.items()
    )
    return text.encode()


@overload
def write_aperio_svs(
    path: Path,
    size: tuple[int, int] = ...,
    planted: Planted = ...,
    *,
    return_pixels: Literal[True] = ...,
) -> np.ndarray: ...


@overload
def write_aperio_svs(
    path: Path,
    size: tuple[int, int] = ...,
    planted: Planted = ...,
    *,
    return_pixels: Literal[False],
) -> None: ...


def write_aperio_svs(
    path: Path,
    size: tuple[int, int] = (4000, 3000),
    planted: Planted = Planted(),
    *,
    return_pixels: bool = True,
) -> np.ndarray | None:
    """An Aperio SVS: tiled JPEG base, stripped thumbnail, tiled /4 and /16 levels, then a
    label and a macro page; returns the base pixels for comparison.

    With ``return_pixels=False`` (slides too big to hold: 40000 x 30000 px is 3.6 GB) every
    tile's pixels are computed when it is written, the same pixels as otherwise; only the /8
    thumbnail is held, and the macro shows it rather than the base. Returns None.
    """
    # OpenSlide's aperio driver: page 0 must be tiled with a description starting
    # "Aperio"; tiled pages are levels, page 1 (stripped) is the thumbnail, and other
    # stripped pages are the label (NewSubfileType 1) and macro (NewSubfileType 9).
    width, height = size
    base = slide_pixels(width, height) if return_pixels else None
    header = f"{width}x{height} [0,0 {width}x{height}] ({TILE}x{TILE}) JPEG/RGB Q=90"
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        if base is not None:
            write_jpeg_tiled(tif, base, aperio_description(size, planted, header))
            thumb = base[::8, ::8]
        else:
            tiles = level_jpeg_tiles(size, 1, TILE)
            shape = (height, width)
            write_jpeg_tile_page(tif, tiles, shape, aperio_description(size, planted, header))
            thumb = level_pixels(size, 8)
        line = f"{width}x{height} -> {thumb.shape[1]}x{thumb.shape[0]} - "
        write_stripped(tif, thumb, aperio_description(size, planted, line))
        for factor in (4, 16):
            level_width, level_height = level_shape(size, factor)
            line = f"{width}x{height} -> {level_width}x{level_height} - " + header
            description = aperio_description(size, planted, line)
            if base is not None:
                write_jpeg_tiled(tif, base[::factor, ::factor], description, 1)
            else:
                tiles = level_jpeg_tiles(size, factor, TILE)
                write_jpeg_tile_page(tif, tiles, (level_height, level_width), description, 1)
        label = label_pixels(planted)
        write_stripped(tif, label, f"{APERIO_LIBRARY}\r\nlabel 360x300".encode(), 1)
        macro = macro_pixels(planted, base if base is not None else thumb)
        write_stripped(tif, macro, f"{APERIO_LIBRARY}\r\nmacro 900x300".encode(), 9)
    mark_jpeg_pages(path)
    return base


def level_pixels(size: tuple[int, int], factor: int) -> np.ndarray:
    """``slide_pixels(*size)[::factor, ::factor]`` computed at that level's size only."""
    level_width, level_height = level_shape(size, factor)
    cols = np.arange(level_width) * factor
    rows = np.arange(level_height) * factor
    return _tissue(cols[None, :], rows[:, None], *size)


def write_generic_tiff(path: Path, size: tuple[int, int] = (2000, 1500)) -> np.ndarray:
    """A plain pyramidal TIFF (tiled JPEG levels, full, /2, /4) that OpenSlide reads with its
    generic-tiff driver; returns the base pixels."""
    width, height = size
    base = slide_pixels(width, height)
    with tifffile.TiffWriter(path) as tif:
        for factor in (1, 2, 4):
            write_jpeg_tiled(tif, base[::factor, ::factor], b"", 0 if factor == 1 else 1)
    mark_jpeg_pages(path)
    return base


def philips_attribute(name: str, value: str) -> str:
    """One Philips DataObject attribute (the Group/Element/PMSVR details are left out)."""
    return f'<Attribute Name="{name}">{escape(value)}</Attribute>'


def philips_scanned_image(kind: str, attributes: str) -> str:
    """One DPScannedImage of the PIM_DP_SCANNED_IMAGES array: WSI, LABELIMAGE or MACROIMAGE."""
    return (
        '<DataObject ObjectType="DPScannedImage">'
        f"{philips_attribute('PIM_DP_IMAGE_TYPE', kind)}{attributes}</DataObject>"
    )


def philips_xml(levels: int, planted: Planted, label: bytes, macro: bytes) -> bytes:
    """The DPUfsImport XML a Philips scanner writes as the first page's ImageDescription."""
    # DICOM_PIXEL_SPACING is in mm, row then column; OpenSlide takes each level's
    # downsample from it and the objective power from "levels=" in the derivation.
    spacing = [f'"{MPP * 2**i / 1000:.9g}" "{MPP * 2**i / 1000:.9g}"' for i in range(levels)]
    representations = "".join(
        '<DataObject ObjectType="PixelDataRepresentation">'
        f"{philips_attribute('DICOM_PIXEL_SPACING', value)}</DataObject>"
        for value in spacing
    )
    wsi = philips_scanned_image(
        "WSI",
        philips_attribute("DICOM_DERIVATION_DESCRIPTION", f"tiff-levels={APP_MAG},10,5-q80=98")
        + philips_attribute("DICOM_PIXEL_SPACING", spacing[0])
        + '<Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE"><Array>'
        + f"{representations}</Array></Attribute>",
    )
    images = [("LABELIMAGE", label), ("MACROIMAGE", macro)]
    associated = "".join(
        philips_scanned_image(kind, philips_attribute("PIM_DP_IMAGE_DATA", b64(jpeg)))
        for kind, jpeg in images
    )
    text = (
        '<?xml version="1.0" encoding="UTF-8" ?><DataObject ObjectType="DPUfsImport">'
        + philips_attribute("DICOM_MANUFACTURER", "PHILIPS")
        + philips_attribute("PIM_DP_UFS_BARCODE", b64(planted.barcode.encode()))
        + philips_attribute("DICOM_PATIENT_NAME", planted.patient)
        + philips_attribute("PIM_DP_SOURCE_FILE", planted.filename)
        + philips_attribute("DICOM_OPERATOR_NAME", planted.user)
        + '<Attribute Name="PIM_DP_SCANNED_IMAGES"><Array>'
        + f"{wsi}{associated}</Array></Attribute></DataObject>"
    )
    return text.encode()


def b64(data: bytes) -> str:
    """Base64 text, as Philips stores the barcode and the associated JPEGs."""
    return base64.b64encode(data).decode()


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    """An RGB array as one JPEG file."""
    return pyvips.Image.new_from_array(pixels).copy(interpretation="srgb").jpegsave_buffer(Q=90)


def write_philips_tiff(
    path: Path, size: tuple[int, int] = (2048, 1536), planted: Planted = Planted()
) -> np.ndarray:
    """A Philips TIFF: tiled JPEG levels (full, /2, /4) under a DPUfsImport XML description
    that holds the label and macro as base64 JPEGs; returns the base pixels."""
    # OpenSlide's philips driver wants Software starting "Philips" and the XML on page 0.
    width, height = size
    base = slide_pixels(width, height)
    label = jpeg_bytes(label_pixels(planted))
    macro = jpeg_bytes(macro_pixels(planted, base))
    description = philips_xml(3, planted, label, macro)
    with tifffile.TiffWriter(path) as tif:
        for i in range(3):
            factor = 2**i
            page = base[::factor, ::factor]
            text = description if i == 0 else f"level={i}".encode()
            write_jpeg_tiled(tif, page, text, min(i, 1), 256, "Philips DP v1.0")
    mark_jpeg_pages(path)
    return base
