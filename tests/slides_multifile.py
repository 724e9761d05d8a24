"""Writers for generated multi-file whole-slide images that OpenSlide 4 opens as their vendor's
format: a 3DHISTECH MIRAX slide (.mrxs beside a folder of Slidedat.ini, Index.dat and Data*.dat)
and a DICOM WSI series (one .dcm per level, a label and an overview), and zip_folder, which packs
either as users upload them.

The pixels are those of tests.slides.slide_pixels, each tile computed when it is written
(tests.slides.level_tile_pixels), so large slides never hold the full-resolution image."""

import hashlib
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from io import BufferedWriter
from pathlib import Path
from types import TracebackType

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    JPEGBaseline8Bit,
    VLWholeSlideMicroscopyImageStorage,
    generate_uid,
)

from tests.slides import (
    APP_MAG,
    MPP,
    Planted,
    jpeg_bytes,
    jpeg_tile,
    label_pixels,
    level_jpeg_tiles,
    level_pixels,
    level_shape,
    level_tile_pixels,
    macro_pixels,
    slide_pixels,
)

# When the slide was scanned, as every format below records it.
SCANNED = datetime(2026, 3, 14, 9, 26, 53)
# DICOM identifiers Planted has no field for; privacy tests may look for them too.
PATIENT_ID = "MRN-20260314-7"
PATIENT_BIRTH_DATE = "19610302"

# MIRAX: OpenSlide wants this Index.dat version; level 0 is a grid of whole camera images,
# whose side is a divisor of the slide's side between these bounds.
MIRAX_INDEX_VERSION = "01.02"
MIRAX_IMAGE_SIDES = range(512, 127, -1)
# Index.dat holds offsets as int32, so a Data file is closed before it reaches 2 GiB.
MIRAX_DATA_FILE_LIMIT = 1 << 30
# MIRAX names and Slidedat.ini keys of the associated images, in NONHIER_0_VAL order:
# OpenSlide reports SlideThumbnail as "macro", SlideBarcode as "label", SlidePreview as
# "thumbnail".
MIRAX_ASSOCIATED = (
    ("ScanDataLayer_SlideThumbnail", "THUMBNAIL_IMAGE_TYPE"),
    ("ScanDataLayer_SlideBarcode", "BARCODE_IMAGE_TYPE"),
    ("ScanDataLayer_SlidePreview", "PREVIEW_IMAGE_TYPE"),
)

DICOM_TILE = 256
# The label and overview cameras' pixel size: the 900 px overview spans a 75 mm slide.
OVERVIEW_MPP = 83.0
SLIDE_CODE = ("433466003", "SCT", "Microscope slide")
BRIGHTFIELD_CODE = ("111744", "DCM", "Brightfield illumination")
FULL_SPECTRUM_CODE = ("414298005", "SCT", "Full Spectrum")


def overview_pixels(size: tuple[int, int], longest: int) -> np.ndarray:
    """The whole slide subsampled so that its longest side is at most about longest pixels."""
    return level_pixels(size, max(1, -(-max(size) // longest)))


# --- MIRAX --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MiraxLayout:
    """How a MIRAX slide of size (width, height) is cut: level 0 is a grid of camera images of
    image (width, height) pixels, and each level above joins 2 x 2 images of the one below
    into one image of the same size, until one image holds the whole slide."""

    size: tuple[int, int]
    image: tuple[int, int]

    @property
    def images(self) -> tuple[int, int]:
        """Camera images across and down (IMAGENUMBER_X, IMAGENUMBER_Y)."""
        return self.size[0] // self.image[0], self.size[1] // self.image[1]

    @property
    def levels(self) -> int:
        """Zoom levels: enough for one image to cover the slide, and at least 2."""
        return max(2, (max(self.images) - 1).bit_length() + 1)


def mirax_layout(size: tuple[int, int]) -> MiraxLayout:
    """The layout of a slide of size (width, height). OpenSlide takes the slide's size as
    whole images, so each side must have a divisor between 128 and 512 (any multiple of 128
    does, as do 2000, 1500, 40000 and 30000)."""

    def side(length: int) -> int:
        for candidate in MIRAX_IMAGE_SIDES:
            if length % candidate == 0:
                return candidate
        raise ValueError(f"a MIRAX side of {length} px is not whole images of 128 to 512 px")

    return MiraxLayout(size, (side(size[0]), side(size[1])))


def mirax_level_images(layout: MiraxLayout, level: int) -> Iterator[tuple[int, bytes]]:
    """The JPEG images of one zoom level with their image index (row * IMAGENUMBER_X + column
    of the level-0 image at their top left); each level-n image subsamples 2^n x 2^n level-0
    images by 2^n, as the other fixtures take every 2^n-th pixel, and past the slide's edge
    repeats its last row and column."""
    factor = 2**level
    (image_w, image_h), (across, down) = layout.image, layout.images
    for row in range(0, down, factor):
        for column in range(0, across, factor):
            left, top = column // factor * image_w, row // factor * image_h
            tile = level_tile_pixels(layout.size, factor, left, top, max(image_w, image_h))
            pixels = np.ascontiguousarray(tile[:image_h, :image_w])
            yield row * across + column, jpeg_tile(pixels)


def mirax_associated(layout: MiraxLayout, planted: Planted) -> list[bytes]:
    """The macro (the glass with its label), label and thumbnail JPEGs, in MIRAX_ASSOCIATED
    order."""
    macro = macro_pixels(planted, overview_pixels(layout.size, 960))
    return [
        jpeg_bytes(macro),
        jpeg_bytes(label_pixels(planted)),
        jpeg_bytes(overview_pixels(layout.size, 512)),
    ]


class MiraxDataFiles:
    """The Data*.dat files of a slide being written: each starts with the index version and
    slide id, then blobs one after another; a new file is begun before one would pass
    MIRAX_DATA_FILE_LIMIT."""

    def __init__(self, directory: Path, header: bytes) -> None:
        """Write into directory; header begins every data file."""
        self.directory, self.header = directory, header
        self.names: list[str] = []
        self.file = self.next_file()

    def next_file(self) -> BufferedWriter:
        """Open the next DataNNNN.dat and write its header."""
        self.names.append(f"Data{len(self.names):04d}.dat")
        file = (self.directory / self.names[-1]).open("wb")
        file.write(self.header)
        return file

    def add(self, blob: bytes) -> tuple[int, int, int]:
        """Append blob; returns where it went: (file number, offset, length)."""
        if self.file.tell() + len(blob) > MIRAX_DATA_FILE_LIMIT:
            self.file.close()
            self.file = self.next_file()
        offset = self.file.tell()
        self.file.write(blob)
        return len(self.names) - 1, offset, len(blob)

    def __enter__(self) -> "MiraxDataFiles":
        """Use as a context manager that closes the last file."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the file being written."""
        self.file.close()


def index_page(items: list[bytes]) -> bytes:
    """An Index.dat data page: item count, next page pointer (0: the last page), items."""
    return struct.pack("<ii", len(items), 0) + b"".join(items)


def hier_page(data: MiraxDataFiles, images: Iterator[tuple[int, bytes]]) -> bytes:
    """Store one zoom level's images in the data files; returns its Index.dat page, one item
    (image index, offset, length, file number) per image."""
    items = []
    for index, jpeg in images:
        fileno, offset, length = data.add(jpeg)
        items.append(struct.pack("<4i", index, offset, length, fileno))
    return index_page(items)


def nonhier_page(fileno: int, offset: int, length: int) -> bytes:
    """The Index.dat page of one non-hierarchical record: one item of two zeros, offset,
    length and file number."""
    return index_page([struct.pack("<5i", 0, 0, offset, length, fileno)])


def mirax_index(slide_id: str, hier: list[bytes], nonhier: list[bytes]) -> bytes:
    """Index.dat: version and slide id, pointers to the hierarchical and non-hierarchical
    record tables, the tables (one pointer per record), then each record: a list head (an empty
    page whose next pointer is the record's data page) followed by that page."""
    header = (MIRAX_INDEX_VERSION + slide_id).encode()
    hier_table = len(header) + 8
    nonhier_table = hier_table + 4 * len(hier)
    body, heads = b"", []
    start = nonhier_table + 4 * len(nonhier)
    for page in hier + nonhier:
        head = start + len(body)
        heads.append(head)
        body += struct.pack("<ii", 0, head + 8) + page
    tables = struct.pack(f"<{len(heads)}i", *heads)
    return header + struct.pack("<ii", hier_table, nonhier_table) + tables + body


def mirax_general(layout: MiraxLayout, slide_id: str, planted: Planted) -> dict[str, object]:
    """The [GENERAL] section, with the identifying keys a 3DHISTECH scanner fills (the ones
    de-identification tools clear): the slide name, project (case) and scan time."""
    return {
        "SLIDE_VERSION": "2.2",
        "SLIDE_ID": slide_id,
        "SLIDE_NAME": planted.filename,
        "PROJECT_NAME": planted.barcode,
        "SLIDE_CREATIONDATETIME": SCANNED.strftime("%d/%m/%Y %H:%M:%S"),
        "SCANNER_HARDWARE_ID": "SN-P250-0042",
        "IMAGENUMBER_X": layout.images[0],
        "IMAGENUMBER_Y": layout.images[1],
        "OBJECTIVE_MAGNIFICATION": APP_MAG,
        "CameraImageDivisionsPerSide": 1,
    }


def mirax_hierarchical(levels: int) -> dict[str, object]:
    """The [HIERARCHICAL] section: the zoom levels as HIER_0 ("Slide zoom level", which
    OpenSlide requires first) and the associated images as values of the "Scan data layer"."""
    keys: dict[str, object] = {"HIER_COUNT": 1, "NONHIER_COUNT": 1, "INDEXFILE": "Index.dat"}
    keys |= {"HIER_0_NAME": "Slide zoom level", "HIER_0_COUNT": levels}
    keys["HIER_0_SECTION"] = "LAYER_0_SECTION"
    for level in range(levels):
        keys[f"HIER_0_VAL_{level}"] = f"ZoomLevel_{level}"
        keys[f"HIER_0_VAL_{level}_SECTION"] = f"LAYER_0_LEVEL_{level}_SECTION"
    keys |= {"NONHIER_0_NAME": "Scan data layer", "NONHIER_0_COUNT": len(MIRAX_ASSOCIATED)}
    keys["NONHIER_0_SECTION"] = "NONHIERLAYER_0_SECTION"
    for i, (value, _) in enumerate(MIRAX_ASSOCIATED):
        keys[f"NONHIER_0_VAL_{i}"] = value
        keys[f"NONHIER_0_VAL_{i}_SECTION"] = f"NONHIERLAYER_0_LEVEL_{i}_SECTION"
    return keys


def mirax_level_section(layout: MiraxLayout, level: int) -> dict[str, object]:
    """A zoom level's section: its images' size and format, the pixel size, no overlaps, and
    IMAGE_CONCAT_FACTOR 1 (each level halves the one below; 0 for level 0)."""
    return {
        "OVERLAP_X": 0,
        "OVERLAP_Y": 0,
        "MICROMETER_PER_PIXEL_X": f"{MPP * 2**level:g}",
        "MICROMETER_PER_PIXEL_Y": f"{MPP * 2**level:g}",
        "IMAGE_FORMAT": "JPEG",
        "IMAGE_FILL_COLOR_BGR": 0xFFFFFF,
        "DIGITIZER_WIDTH": layout.image[0],
        "DIGITIZER_HEIGHT": layout.image[1],
        "IMAGE_CONCAT_FACTOR": min(level, 1),
    }


def mirax_slidedat(
    layout: MiraxLayout, slide_id: str, planted: Planted, data_files: list[str]
) -> bytes:
    """Slidedat.ini as a Windows scanner writes it: UTF-8 with a byte order mark, CRLF lines,
    "KEY = value"."""
    sections: dict[str, dict[str, object]] = {
        "GENERAL": mirax_general(layout, slide_id, planted),
        "HIERARCHICAL": mirax_hierarchical(layout.levels),
        "DATAFILE": {"FILE_COUNT": len(data_files)}
        | {f"FILE_{i}": name for i, name in enumerate(data_files)},
        "LAYER_0_SECTION": {},
        "NONHIERLAYER_0_SECTION": {},
    }
    for level in range(layout.levels):
        sections[f"LAYER_0_LEVEL_{level}_SECTION"] = mirax_level_section(layout, level)
    for i, (_, key) in enumerate(MIRAX_ASSOCIATED):
        sections[f"NONHIERLAYER_0_LEVEL_{i}_SECTION"] = {key: "JPEG"}
    lines = []
    for group, keys in sections.items():
        lines += [f"[{group}]", *(f"{key} = {value}" for key, value in keys.items())]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


def mirax_slide_id(planted: Planted) -> str:
    """A 32-hex-digit slide id, as scanners make, fixed by the planted barcode."""
    return hashlib.md5(planted.barcode.encode()).hexdigest().upper()


def write_mrxs(
    folder: Path,
    size: tuple[int, int] = (2000, 1500),
    planted: Planted = Planted(),
    *,
    name: str = "SLIDE",
    return_pixels: bool = True,
) -> tuple[Path, np.ndarray | None]:
    """A 3DHISTECH MIRAX slide: folder/<name>.mrxs (empty: OpenSlide only needs it to exist)
    and folder/<name>/ with Slidedat.ini, Index.dat and Data*.dat (JPEG images of every zoom
    level, and the macro, label and thumbnail). Returns the .mrxs path and the base pixels, or
    None for them with return_pixels=False, when nothing of full-resolution size is held."""
    layout = mirax_layout(size)
    slide_id = mirax_slide_id(planted)
    directory = folder / name
    directory.mkdir(parents=True, exist_ok=True)
    with MiraxDataFiles(directory, (MIRAX_INDEX_VERSION + slide_id).encode()) as data:
        nonhier = [nonhier_page(*data.add(jpeg)) for jpeg in mirax_associated(layout, planted)]
        hier = [hier_page(data, mirax_level_images(layout, n)) for n in range(layout.levels)]
    (directory / "Index.dat").write_bytes(mirax_index(slide_id, hier, nonhier))
    slidedat = mirax_slidedat(layout, slide_id, planted, data.names)
    (directory / "Slidedat.ini").write_bytes(slidedat)
    path = folder / f"{name}.mrxs"
    path.write_bytes(b"")
    return path, slide_pixels(*size) if return_pixels else None


# --- DICOM --------------------------------------------------------------------------------


def code(value: tuple[str, str, str]) -> Dataset:
    """A code sequence item from (CodeValue, CodingSchemeDesignator, CodeMeaning)."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value
    return item


def dicom_uid(planted: Planted, role: str) -> str:
    """A UID fixed by the planted strings and what it identifies (study, series, ...)."""
    return str(generate_uid(entropy_srcs=[planted.patient, planted.barcode, role]))


def dicom_subject(planted: Planted) -> Dataset:
    """What all instances of the series share: patient, study (accession number, dates,
    operator), series, equipment and specimen (the slide's barcode as container id)."""
    ds = Dataset()
    ds.PatientName, ds.PatientID = planted.patient, PATIENT_ID
    ds.PatientBirthDate, ds.PatientSex = PATIENT_BIRTH_DATE, "F"
    ds.StudyInstanceUID, ds.StudyID = dicom_uid(planted, "study"), "1"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = SCANNED.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = SCANNED.strftime("%H%M%S")
    ds.AcquisitionDateTime = SCANNED.strftime("%Y%m%d%H%M%S")
    ds.AccessionNumber, ds.ReferringPhysicianName = planted.barcode, ""
    ds.OperatorsName = planted.user
    ds.Modality, ds.SeriesNumber = "SM", 1
    ds.SeriesInstanceUID = dicom_uid(planted, "series")
    ds.SeriesDescription = planted.filename
    ds.FrameOfReferenceUID = dicom_uid(planted, "frame of reference")
    ds.PositionReferenceIndicator = "SLIDE_CORNER"
    ds.Manufacturer, ds.ManufacturerModelName = "plexzoom tests", "multifile writer"
    ds.DeviceSerialNumber, ds.SoftwareVersions = "SN-0042", "1.0"
    ds.ContainerIdentifier, ds.BarcodeValue = planted.barcode, planted.barcode
    ds.IssuerOfTheContainerIdentifierSequence = []
    ds.ContainerTypeCodeSequence = [code(SLIDE_CODE)]
    ds.SpecimenDescriptionSequence = [dicom_specimen(planted)]
    ds.OpticalPathSequence, ds.NumberOfOpticalPaths = [dicom_optical_path()], 1
    return ds


def dicom_specimen(planted: Planted) -> Dataset:
    """The one specimen on the slide, identified by the barcode."""
    specimen = Dataset()
    specimen.SpecimenIdentifier = planted.barcode
    specimen.SpecimenUID = dicom_uid(planted, "specimen")
    specimen.IssuerOfTheSpecimenIdentifierSequence = []
    specimen.SpecimenPreparationSequence = []
    return specimen


def dicom_optical_path() -> Dataset:
    """Brightfield, full spectrum, through the APP_MAG objective."""
    path = Dataset()
    path.OpticalPathIdentifier = "1"
    path.IlluminationTypeCodeSequence = [code(BRIGHTFIELD_CODE)]
    path.IlluminationColorCodeSequence = [code(FULL_SPECTRUM_CODE)]
    path.ObjectiveLensPower = str(APP_MAG)
    return path


def dicom_pixel_module(ds: Dataset, size: tuple[int, int], tile: tuple[int, int]) -> None:
    """Set the image pixel attributes OpenSlide and libdicom check: 8-bit YCbCr JPEG tiles of
    tile (width, height), TILED_FULL (frames row by row), size (width, height) in total."""
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "YBR_FULL_422"
    ds.PlanarConfiguration, ds.PixelRepresentation = 0, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.Columns, ds.Rows = tile
    ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = size
    ds.TotalPixelMatrixFocalPlanes = 1
    across, down = -(-size[0] // tile[0]), -(-size[1] // tile[1])
    ds.NumberOfFrames = across * down
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem = origin.YOffsetInSlideCoordinateSystem = "0"
    ds.TotalPixelMatrixOriginSequence = [origin]
    ds.ImageOrientationSlide = ["0", "-1", "0", "-1", "0", "0"]


def dicom_instance(
    planted: Planted, flavor: str, size: tuple[int, int], tile: tuple[int, int], mpp: float
) -> Dataset:
    """One instance of the series: flavor VOLUME (a pyramid level), LABEL or OVERVIEW, of size
    (width, height) in tiles of tile (width, height), mpp microns per pixel."""
    ds = dicom_subject(planted)
    ds.SOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.SOPInstanceUID = dicom_uid(planted, f"{flavor} {size}")
    derived = flavor == "VOLUME" and mpp != MPP
    ds.ImageType = ["DERIVED" if derived else "ORIGINAL", "PRIMARY", flavor, "NONE"]
    ds.InstanceNumber = 1
    dicom_pixel_module(ds, size, tile)
    spacing_mm = f"{mpp / 1000:.10g}"
    ds.ImagedVolumeWidth, ds.ImagedVolumeHeight = size[0] * mpp / 1000, size[1] * mpp / 1000
    ds.ImagedVolumeDepth = 0.004
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [spacing_mm, spacing_mm], "0.004"
    frame_type = Dataset()
    frame_type.FrameType = ds.ImageType
    shared = Dataset()
    shared.PixelMeasuresSequence = [measures]
    shared.WholeSlideMicroscopyImageFrameTypeSequence = [frame_type]
    ds.SharedFunctionalGroupsSequence = [shared]
    on_glass = "NO" if flavor == "VOLUME" else "YES"
    ds.SpecimenLabelInImage = ds.BurnedInAnnotation = on_glass
    ds.VolumetricProperties, ds.FocusMethod, ds.ExtendedDepthOfField = "VOLUME", "AUTO", "NO"
    return ds


def write_dicom_file(path: Path, ds: Dataset, frames: list[bytes]) -> None:
    """Save ds as a DICOM file (preamble, file meta, JPEG baseline transfer syntax) with frames
    as its encapsulated pixel data, behind a basic offset table."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)


def dicom_factors(size: tuple[int, int]) -> list[int]:
    """The levels' downsamples: 1, 2, 4, ... until one tile holds the level, at least 2 levels."""
    factors = [1, 2]
    while max(level_shape(size, factors[-1])) > DICOM_TILE:
        factors.append(factors[-1] * 2)
    return factors


def write_dicom_associated(folder: Path, size: tuple[int, int], planted: Planted) -> None:
    """The LABEL (label.dcm) and OVERVIEW (overview.dcm: the glass with label and tissue)
    instances, each one JPEG frame."""
    overview = macro_pixels(planted, overview_pixels(size, 960))
    for flavor, pixels in (("LABEL", label_pixels(planted)), ("OVERVIEW", overview)):
        shape = (pixels.shape[1], pixels.shape[0])
        ds = dicom_instance(planted, flavor, shape, shape, OVERVIEW_MPP)
        write_dicom_file(folder / f"{flavor.lower()}.dcm", ds, [jpeg_bytes(pixels)])


def write_dicom_wsi(
    folder: Path,
    size: tuple[int, int] = (2000, 1500),
    planted: Planted = Planted(),
    *,
    return_pixels: bool = True,
) -> tuple[Path, np.ndarray | None]:
    """A DICOM WSI series (VL Whole Slide Microscopy Image Storage, TILED_FULL, JPEG baseline
    tiles, edge tiles padded as jpeg_tiles pads): folder/level<N>.dcm for downsamples 1, 2,
    4, ... plus label.dcm and overview.dcm.
    Returns the level-0 file (what OpenSlide is given) and the base pixels (None with
    return_pixels=False; each level's frames are still held in memory while it is written)."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, factor in enumerate(dicom_factors(size)):
        tile = (DICOM_TILE, DICOM_TILE)
        ds = dicom_instance(planted, "VOLUME", level_shape(size, factor), tile, MPP * factor)
        ds.InstanceNumber = number + 1
        frames = list(level_jpeg_tiles(size, factor, DICOM_TILE))
        write_dicom_file(folder / f"level{number}.dcm", ds, frames)
    write_dicom_associated(folder, size, planted)
    return folder / "level0.dcm", slide_pixels(*size) if return_pixels else None


# --- zip ----------------------------------------------------------------------------------


def zip_folder(folder: Path, zip_path: Path, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Zip everything in folder, paths relative to it (a MIRAX .mrxs beside its directory, or
    the .dcm files, at the zip's top level), directories as their own entries like desktop zip
    tools; compression is zipfile.ZIP_DEFLATED or ZIP_STORED. Returns zip_path."""
    if zip_path.resolve().is_relative_to(folder.resolve()):
        raise ValueError("the zip must be written outside the folder it packs")
    with zipfile.ZipFile(zip_path, "w", compression=compression, allowZip64=True) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder).as_posix())
    return zip_path
