"""The one render model of multi-channel images; viewer/js/lib/render.js is its line-for-line twin.

A channel pyramid stores an 8-bit code per pixel and the manifest a ``lut``: 256 native values,
code k standing for ``lut[k]``. For each visible channel:

    v  = lut[code]                                   native units (e.g. uint16 counts)
    t  = clamp((v - min) / (max - min), 0, 1)        if max <= min: t = 1 if v >= max else 0
    t' = t ** (1 / gamma)                            gamma > 1 brightens dim values
    contribution = t' * colour                       colour components in 0..255

The contributions of the visible channels are added in list order, clamped to 255 and rounded
half up (floor(x + 0.5), JS Math.round). A contribution depends only on the code, so each channel
becomes a table of 256 x 3 float32 values (computed in double precision, then stored as float32)
and rendering is lookups and sums; sums are kept in double precision, in both languages, so
Python and JS give the same bytes.

Query encoding (server-rendered tile URLs and the viewer's shareable URL), visible channels only:
``c=0:ff00ff:120:3400:1,2:00ff00:0:255:0.8`` is index:colour:min:max:gamma (gamma optional).
Numbers are written as JS ``String(x)`` writes them, without the '+' of exponents.
"""

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from urllib.parse import parse_qs

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plexzoom.core.errors import BadRenderSettings

MAX_VISIBLE = 64  # channels mixed at once; more is noise to the eye and a slow tile
MAX_CHANNELS = 4096  # sanity bound on a settings list; readers default to at most 1024
MAX_QUERY = 8192
GAMMA_MIN, GAMMA_MAX = 0.05, 20.0
# Blue, green, red, magenta, cyan, yellow, orange, white: the usual fluorophore order (DAPI first).
PALETTE = ("#0000ff", "#00ff00", "#ff0000", "#ff00ff", "#00ffff", "#ffff00", "#ff8000", "#ffffff")
_HEX = re.compile(r"#[0-9a-fA-F]{6}")
_QUERY_HEX = re.compile(r"[0-9a-fA-F]{6}")
_INDEX = re.compile(r"[0-9]{1,4}")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FORMAT_HELP = "index:colour:min:max:gamma, e.g. 0:ff00ff:120:3400:1"

Table = npt.NDArray[np.float32]


class ChannelRender(BaseModel):
    """How one channel is drawn: visibility, colour, window in native units, gamma."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, lt=MAX_CHANNELS)
    visible: bool = True
    color: str
    min: float = Field(allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)
    gamma: float = Field(1.0, ge=GAMMA_MIN, le=GAMMA_MAX)

    @field_validator("color")
    @classmethod
    def _check_color(cls, value: str) -> str:
        if not _HEX.fullmatch(value):
            raise ValueError(
                f"colour must be '#rrggbb' (six hex digits), e.g. '#ff00ff', not {value!r}"
            )
        return value.lower()


class RenderSettings(BaseModel):
    """Render settings of every channel of an image (what GET/PUT /v1/images/{id}/render carry)."""

    model_config = ConfigDict(extra="forbid")

    channels: list[ChannelRender] = Field(max_length=MAX_CHANNELS)

    @model_validator(mode="after")
    def _check_channels(self) -> "RenderSettings":
        indexes = [c.index for c in self.channels]
        if len(set(indexes)) != len(indexes):
            twice = sorted({i for i in indexes if indexes.count(i) > 1})
            raise ValueError(f"each channel may be listed once; listed twice: {twice}")
        visible = sum(c.visible for c in self.channels)
        if visible > MAX_VISIBLE:
            raise ValueError(
                f"at most {MAX_VISIBLE} channels can be shown at once; {visible} are visible"
            )
        return self

    def visible(self) -> list[ChannelRender]:
        """The visible channels, in drawing order."""
        return [c for c in self.channels if c.visible]


def default_color(i: int) -> str:
    """The palette colour of the i-th channel ('#rrggbb'), cycling after eight."""
    return PALETTE[i % len(PALETTE)]


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """'#ff8000' -> (255, 128, 0)."""
    if not _HEX.fullmatch(color):
        raise BadRenderSettings(f"Colour '{color[:16]}' must be '#rrggbb', e.g. '#ff00ff'.")
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def channel_table(lut: Sequence[float], setting: ChannelRender) -> Table:
    """The (256, 3) float32 contribution of each code of one channel under ``setting``."""
    values = np.asarray(lut, dtype=np.float64)
    if values.shape != (256,) or not np.isfinite(values).all():
        raise BadRenderSettings(
            f"The intensity table of channel {setting.index} must hold 256 finite numbers; "
            "convert the image again."
        )
    low, high = setting.min, setting.max
    if high > low:
        t = np.clip((values - low) / (high - low), 0.0, 1.0)
    else:
        t = (values >= high).astype(np.float64)
    if setting.gamma != 1.0:
        t = t ** (1.0 / setting.gamma)
    rgb = np.array(hex_to_rgb(setting.color), dtype=np.float64)
    return (t[:, None] * rgb[None, :]).astype(np.float32)


def visible_tables(
    settings: RenderSettings, luts: Mapping[int, Sequence[float]] | Sequence[Sequence[float]]
) -> list[tuple[int, Table]]:
    """(channel index, table) of each visible channel, in drawing order; luts by channel index."""
    return [(c.index, channel_table(luts[c.index], c)) for c in settings.visible()]


def render(
    codes: Sequence[npt.NDArray[np.uint8]],
    tables: Sequence[Table],
    shape: tuple[int, int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Mix channels: (H, W) code arrays and their tables -> (H, W, 3) uint8 RGB.

    ``shape`` gives the size when no channel is visible (the result is black). Memory is
    24 bytes a pixel, so render tile by tile.
    """
    if len(codes) != len(tables):
        raise ValueError(f"{len(codes)} code arrays but {len(tables)} tables")
    if not codes:
        if shape is None:
            raise ValueError("no visible channel: pass shape to get a black image")
        return np.zeros((*shape, 3), dtype=np.uint8)
    first = codes[0].shape
    if any(c.dtype != np.uint8 or c.ndim != 2 or c.shape != first for c in codes):
        raise ValueError("codes must be 2-D uint8 arrays of one shape")
    if any(t.shape != (256, 3) or t.dtype != np.float32 for t in tables):
        raise ValueError("tables must be (256, 3) float32, from channel_table")
    total = np.take(tables[0], codes[0], axis=0).astype(np.float64)
    for code, table in zip(codes[1:], tables[1:], strict=True):
        total += np.take(table, code, axis=0)
    np.minimum(total, 255.0, out=total)
    total += 0.5
    return np.floor(total, out=total).astype(np.uint8)


def settings_to_query(settings: RenderSettings) -> str:
    """``c=`` plus the visible channels as index:colour:min:max:gamma, comma separated."""
    items = [
        f"{c.index}:{c.color[1:]}:{format_number(c.min)}:{format_number(c.max)}:"
        f"{format_number(c.gamma)}"
        for c in settings.visible()
    ]
    return "c=" + ",".join(items)


def settings_from_query(query: str, defaults: RenderSettings) -> RenderSettings:
    """Apply a query's ``c`` to ``defaults``: listed channels shown as given, the rest hidden.

    Without ``c`` the defaults are returned unchanged; other parameters are ignored.
    """
    if len(query) > MAX_QUERY:
        raise BadRenderSettings(f"The render query is longer than {MAX_QUERY} characters.")
    values = parse_qs(query.removeprefix("?"), keep_blank_values=True).get("c")
    if values is None:
        return defaults
    if len(values) > 1:
        raise BadRenderSettings("The render query has more than one 'c' parameter; keep one.")
    listed = _parse_channels(values[0], defaults)
    channels = [
        listed.get(c.index, c.model_copy(update={"visible": False})) for c in defaults.channels
    ]
    try:
        return RenderSettings(channels=channels)
    except ValidationError as exc:
        raise BadRenderSettings(f"Render settings: {exc.errors()[0]['msg']}.") from exc


def _parse_channels(text: str, defaults: RenderSettings) -> dict[int, ChannelRender]:
    """The channels a ``c`` value lists, by index."""
    items = text.split(",") if text else []
    if len(items) > MAX_VISIBLE:
        raise BadRenderSettings(
            f"At most {MAX_VISIBLE} channels can be shown at once; the query lists {len(items)}."
        )
    known = {c.index for c in defaults.channels}
    listed: dict[int, ChannelRender] = {}
    for item in items:
        channel = _parse_channel(item, known)
        if channel.index in listed:
            raise BadRenderSettings(f"Channel {channel.index} is listed twice in the query.")
        listed[channel.index] = channel
    return listed


def _parse_channel(item: str, known: set[int]) -> ChannelRender:
    """One index:colour:min:max[:gamma] entry."""
    fields = item.split(":")
    if len(fields) not in (4, 5) or not _INDEX.fullmatch(fields[0]):
        raise BadRenderSettings(f"Channel entry '{item[:40]}' must be {_FORMAT_HELP}.")
    index = int(fields[0])
    if index not in known:
        raise BadRenderSettings(
            f"Channel {index} does not exist; this image has channels 0 to {max(known, default=0)}."
        )
    if not _QUERY_HEX.fullmatch(fields[1]):
        raise BadRenderSettings(
            f"Colour of channel {index} must be six hex digits like ff00ff; got '{fields[1][:16]}'."
        )
    low = _parse_number(fields[2], "min", index)
    high = _parse_number(fields[3], "max", index)
    gamma = _parse_number(fields[4], "gamma", index) if len(fields) == 5 else 1.0
    if not GAMMA_MIN <= gamma <= GAMMA_MAX:
        raise BadRenderSettings(
            f"Gamma of channel {index} must be between {GAMMA_MIN} and {GAMMA_MAX:g}; "
            f"got {format_number(gamma)}."
        )
    return ChannelRender(index=index, color="#" + fields[1].lower(), min=low, max=high, gamma=gamma)


def _parse_number(text: str, name: str, index: int) -> float:
    """A finite decimal number; no hex, no 'inf', no '_', no spaces."""
    value = float(text) if len(text) <= 32 and _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise BadRenderSettings(
            f"{name} of channel {index} must be a finite number like 120 or 0.5; got '{text[:32]}'."
        )
    return value


def format_number(x: float) -> str:
    """Shortest round-trip text of ``x`` as JS ``String(x)`` writes it, but 'e21' for 'e+21'."""
    if not math.isfinite(x):
        raise ValueError(f"{x} is not a finite number")
    if x == 0:
        return "0"
    _, digits, exponent = Decimal(repr(abs(x))).normalize().as_tuple()
    assert isinstance(exponent, int)
    s = "".join(map(str, digits))
    k, n = len(s), exponent + len(s)  # value = 0.s * 10**n
    if k <= n <= 21:
        body = s + "0" * (n - k)
    elif 0 < n <= 21:
        body = f"{s[:n]}.{s[n:]}"
    elif -6 < n <= 0:
        body = "0." + "0" * -n + s
    else:
        body = (f"{s[0]}.{s[1:]}" if k > 1 else s) + f"e{n - 1}"
    return ("-" if x < 0 else "") + body
