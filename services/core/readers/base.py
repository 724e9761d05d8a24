"""The reader interface: what every source format offers the conversion job."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pyvips

from plexzoom.core.errors import CorruptImage, ImageTooLarge, UnsupportedFormat

UNREADABLE = (
    "The image could not be decoded: the file may be truncated or damaged. "
    "Export it again and upload the new file."
)

# libvips band formats and the numpy dtype names they hold; nothing else is accepted.
VIPS_TO_DTYPE = {
    "uchar": "uint8",
    "char": "int8",
    "ushort": "uint16",
    "short": "int16",
    "uint": "uint32",
    "int": "int32",
    "float": "float32",
    "double": "float64",
}
DTYPE_TO_VIPS = {dtype: vips for vips, dtype in VIPS_TO_DTYPE.items()}
# libvips' fail_on level per loader. libjpeg reports missing or damaged scan data only as a
# warning and draws it grey, so a 16-pixel JPEG claiming 65500 x 65500 would "decode" for minutes.
_FAIL_ON = {"jpegload": "warning", "jpegload_source": "warning"}
RGB_NAMES = ("Red", "Green", "Blue")
RGB_COLORS = ("#ff0000", "#00ff00", "#0000ff")


@dataclass(frozen=True)
class ReadOptions:
    """Choices and limits for opening a source (from upload options and settings).

    The limits are checked against the header before any pixel is decoded (``check_header``).
    """

    variable: str | None = None  # MATLAB/HDF5 variable that holds the image
    array_layout: str | None = None  # "HWC" or "CHW" for .npy/HDF5 stacks; else the shorter end
    max_width: int = 300_000  # a 75 mm slide scanned at 0.25 um per pixel
    max_height: int = 300_000
    max_pixels: int = 10 * 1000**3  # 10 gigapixels: a 100,000 x 100,000 whole-slide scan
    max_channels: int = 256  # multiplex panels (~60 markers) and hyperspectral cubes (224 bands)
    max_bytes_per_pixel: int = 1024  # all channels of one pixel: 256 float32 or 512 uint16
    max_in_memory_bytes: int = 4 * 1024**3  # .mat/.h5 arrays are decoded into memory
    # Zips of multi-file slides (MIRAX, DICOM series): what unpacking may write.
    max_zip_entries: int = 10_000
    max_unpacked_bytes: int = 64 * 1024**3
    max_zip_ratio: float = 50.0  # JPEG tiles barely compress; a zip bomb compresses 1000-fold
    # Pixels are looked up one at a time (values under the cursor), not streamed top to bottom.
    random_access: bool = False


@dataclass
class ChannelInfo:
    """One channel as named by the file's metadata."""

    index: int
    name: str
    color: str | None
    wavelength_nm: float | None = None


@dataclass
class ChannelSource:
    """An opened image: its header, its channels and a lazy pixel source per channel."""

    width: int
    height: int
    dtype: str
    channels: list[ChannelInfo]
    is_rgb: bool
    physical_size: tuple[float, float, str] | None
    notes: dict[str, Any]
    load_channel: Callable[[int], pyvips.Image] = field(repr=False)
    on_close: Callable[[], None] | None = field(default=None, repr=False)
    # Some channels as one multi-band lazy image, each page decoded once (optional).
    load_bands: Callable[[Sequence[int]], pyvips.Image] | None = field(default=None, repr=False)
    # Each channel is a page of its own: reading a few channels decodes only their pages, so
    # the conversion can bound its memory by reading a few channels per pass.
    pages_apart: bool = False
    # The TIFF page that holds each channel (TIFFs only), so a pixel lookup can fetch the
    # tiles of several pages at once.
    channel_pages: list[int] | None = field(default=None, repr=False)
    # The whole picture as libvips decodes it (colour, alpha, profile, orientation), set where
    # the composite is the image: RGB slides and photographs, grey PNG/JPEG/WebP too.
    load_picture: Callable[[], pyvips.Image] | None = field(default=None, repr=False)
    # The file OpenSlide opens, for a whole-slide scan (its label and macro, when kept).
    slide_path: Path | None = None
    # Every channel's value at one full-resolution pixel (x, y), where the source reads one
    # pixel without decoding the image (slides through OpenSlide); else None.
    read_point: Callable[[int, int], list[float]] | None = field(default=None, repr=False)

    def picture(self) -> pyvips.Image:
        """The image as one lazy picture, read once top to bottom (see ``load_picture``)."""
        if self.load_picture is None:
            raise ValueError("this source has channels, not a picture")
        try:
            return self.load_picture()
        except pyvips.Error as exc:
            raise CorruptImage(UNREADABLE) from exc

    def channel(self, i: int) -> pyvips.Image:
        """Channel ``i`` as one lazy band; read it once, top to bottom, then call again."""
        if not 0 <= i < len(self.channels):
            raise IndexError(f"channel {i} out of range 0..{len(self.channels) - 1}")
        try:
            image = self.load_channel(i)
        except pyvips.Error as exc:
            raise CorruptImage(UNREADABLE) from exc
        return image.copy(interpretation="multiband")

    def bands(self, indices: Sequence[int]) -> pyvips.Image:
        """Channels ``indices`` as the bands of one lazy image, for single-pass work (read once)."""
        try:
            if self.load_bands is not None:
                image = self.load_bands(indices)
            else:
                bands = [self.load_channel(i) for i in indices]
                image = bands[0] if len(bands) == 1 else bands[0].bandjoin(bands[1:])
        except pyvips.Error as exc:
            raise CorruptImage(UNREADABLE) from exc
        return image.copy(interpretation="multiband")

    def close(self) -> None:
        """Release files and memory maps held by the source."""
        if self.on_close is not None:
            self.on_close()
            self.on_close = None

    def __enter__(self) -> ChannelSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def fail_on(loader: str) -> str:
    """How strictly libvips' ``loader`` must decode: "error", or "warning" for JPEG."""
    return _FAIL_ON.get(loader, "error")


def default_channels(count: int) -> list[ChannelInfo]:
    """Channels without metadata: "Channel 1", "Channel 2", ..."""
    return [ChannelInfo(i, f"Channel {i + 1}", None) for i in range(count)]


def rgb_channels() -> list[ChannelInfo]:
    """The three channels of an RGB photograph."""
    return [ChannelInfo(i, RGB_NAMES[i], RGB_COLORS[i]) for i in range(3)]


def check_dtype(dtype: str) -> str:
    """Return ``dtype`` if plexzoom can process it, else raise UnsupportedFormat."""
    if dtype in DTYPE_TO_VIPS:
        return dtype
    raise UnsupportedFormat(
        f"Pixels of type {dtype} are not supported. Save the image as 8-, 16- or 32-bit "
        "integers or as 32/64-bit floating point."
    )


def check_channel_count(count: int, options: ReadOptions) -> int:
    """Return ``count`` if it is within the configured limit, else raise ImageTooLarge."""
    if count > options.max_channels:
        raise ImageTooLarge(
            f"The image has {count} channels; this server accepts at most "
            f"{options.max_channels}. Split the channels into several files."
        )
    if count < 1:
        raise CorruptImage("The image has no channels.")
    return count


def check_header(
    width: int, height: int, channels: int, itemsize: int, options: ReadOptions
) -> None:
    """Refuse, from the header alone, an image beyond the configured limits."""
    check_size(width, height, options)
    check_pixel_depth(channels, itemsize, options)


def check_size(width: int, height: int, options: ReadOptions) -> None:
    """Refuse a width, height or pixel count beyond the limits (or an image of no pixels)."""
    if width < 1 or height < 1:
        raise CorruptImage(
            f"The header says the image is {width} x {height} pixels, which holds no image. "
            "Export it again and upload the new file."
        )
    if width > options.max_width or height > options.max_height:
        raise ImageTooLarge(
            f"The image is {width} x {height} pixels; this server accepts at most "
            f"{options.max_width} x {options.max_height}. Crop it or split it into tiles."
        )
    if width * height > options.max_pixels:
        raise ImageTooLarge(
            f"The image is {width} x {height} = {width * height:,} pixels; this server accepts "
            f"at most {options.max_pixels:,}. Crop it or split it into tiles."
        )


def check_pixel_depth(channels: int, itemsize: int, options: ReadOptions) -> None:
    """Refuse more channels, or more bytes per pixel over all channels, than configured."""
    check_channel_count(channels, options)
    if channels * itemsize > options.max_bytes_per_pixel:
        raise ImageTooLarge(
            f"Each pixel holds {channels} channels of {itemsize} bytes ({channels * itemsize} "
            f"bytes); this server accepts at most {options.max_bytes_per_pixel}. Save fewer "
            "channels per file or a smaller sample type (16-bit integers or 32-bit floats)."
        )


def check_memory(nbytes: int, options: ReadOptions, what: str) -> None:
    """Refuse arrays that would have to be decoded into more memory than configured."""
    if nbytes > options.max_in_memory_bytes:
        raise ImageTooLarge(
            f"{what} needs {nbytes / 1024**3:.1f} GiB of memory to decode; this server allows "
            f"{options.max_in_memory_bytes / 1024**3:.1f} GiB. Save it as a tiled OME-TIFF."
        )
