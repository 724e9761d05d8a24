"""The render model: channel tables, mixing, the query encoding and its validation."""

import math

import numpy as np
import pytest
from pydantic import ValidationError

from plexzoom.core.errors import BadRenderSettings, PlexzoomError
from plexzoom.core.render import (
    MAX_VISIBLE,
    PALETTE,
    ChannelRender,
    RenderSettings,
    channel_table,
    default_color,
    format_number,
    hex_to_rgb,
    render,
    settings_from_query,
    settings_to_query,
    visible_tables,
)

LINEAR = [float(k) for k in range(256)]  # code k stands for native value k
UINT16 = [float(k * 257) for k in range(256)]  # 0..65535


def channel(**changes: object) -> ChannelRender:
    """A white channel windowed 0..255 with gamma 1, changed as given."""
    values: dict[str, object] = {"index": 0, "color": "#ffffff", "min": 0, "max": 255, "gamma": 1}
    return ChannelRender.model_validate(values | changes)


def five_channels() -> RenderSettings:
    """Defaults of a five-channel image: palette colours, full window, all visible."""
    return RenderSettings(
        channels=[
            ChannelRender(index=i, color=default_color(i), min=0, max=65535) for i in range(5)
        ]
    )


def test_table_window_maps_min_to_zero_and_max_to_full_colour() -> None:
    table = channel_table(UINT16, channel(color="#ff8000", min=257 * 50, max=257 * 150))
    assert table.shape == (256, 3) and table.dtype == np.float32
    assert table[:51].tolist() == [[0, 0, 0]] * 51  # at and below min: black
    assert table[150:].tolist() == [[255, 128, 0]] * 106  # at and above max: the colour
    assert table[100] == pytest.approx([127.5, 64, 0])  # half way
    assert np.all(np.diff(table[:, 0]) >= 0)


def test_table_gamma_above_one_brightens_dim_values() -> None:
    quarter = 255 * 0.25
    bright = channel_table(LINEAR, channel(gamma=2.0))
    dark = channel_table(LINEAR, channel(gamma=0.5))
    k = 64
    t = k / 255
    assert bright[k, 0] == pytest.approx(255 * t**0.5, rel=1e-6)
    assert dark[k, 0] == pytest.approx(255 * t**2, rel=1e-6)
    assert bright[k, 0] > quarter > dark[k, 0]
    assert bright[0, 0] == dark[0, 0] == 0 and bright[255, 0] == dark[255, 0] == 255


def test_table_with_max_not_above_min_is_a_threshold() -> None:
    for low, high in ((100, 100), (200, 100)):
        table = channel_table(LINEAR, channel(min=low, max=high))
        assert table[:100, 1].tolist() == [0] * 100
        assert table[100:, 1].tolist() == [255] * 156


def test_table_works_in_native_float_units() -> None:
    lut = [-1.0 + 2.0 * k / 255 for k in range(256)]  # a float channel spanning -1..1
    table = channel_table(lut, channel(color="#00ff00", min=0.0, max=1.0))
    assert table[127, 1] == 0  # -0.0039 is below the window
    assert table[191, 1] == pytest.approx(255 * lut[191], rel=1e-6)
    assert table[:, 0].max() == table[:, 2].max() == 0


@pytest.mark.parametrize("last", [None, math.nan, math.inf])
def test_table_refuses_a_bad_lut(last: float | None) -> None:
    lut = LINEAR[:255] if last is None else [*LINEAR[:255], last]
    with pytest.raises(BadRenderSettings, match="256 finite numbers"):
        channel_table(lut, channel())


def test_render_adds_channels_clamps_and_rounds_half_up() -> None:
    red = channel_table(LINEAR, channel(color="#ff0000"))
    magenta = channel_table(LINEAR, channel(color="#ff00ff"))
    a = np.array([[0, 51, 255, 1]], np.uint8)
    b = np.array([[0, 102, 255, 0]], np.uint8)
    rgb = render([a, b], [red, magenta])
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 1].tolist() == [153, 0, 102]  # 51 + 102 red, 102 blue
    assert rgb[0, 2].tolist() == [255, 0, 255]  # 510 red clamps
    assert rgb[0, 3].tolist() == [1, 0, 0]
    half = np.zeros((256, 3), np.float32)
    half[1], half[2] = [0.5, 1.5, 2.49], [254.5, 255.4, 300]
    got = render([np.array([[1, 2]], np.uint8)], [half])
    assert got.tolist() == [[[1, 2, 2], [255, 255, 255]]]  # floor(x + 0.5), not half to even


def test_render_of_no_channel_is_black() -> None:
    assert render([], [], shape=(2, 3)).tolist() == [[[0, 0, 0]] * 3] * 2
    with pytest.raises(ValueError, match="shape"):
        render([], [])


def test_render_refuses_mismatched_inputs() -> None:
    table = channel_table(LINEAR, channel())
    codes = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="tables"):
        render([codes, codes], [table])
    with pytest.raises(ValueError, match="one shape"):
        render([codes, np.zeros((4, 5), np.uint8)], [table, table])
    with pytest.raises(ValueError, match="uint8"):
        render([codes.astype(np.uint16)], [table])
    with pytest.raises(ValueError, match="float32"):
        render([codes], [table.astype(np.float64)])


def test_visible_tables_skip_hidden_channels_and_keep_order() -> None:
    settings = five_channels()
    settings.channels[1].visible = False
    got = visible_tables(settings, {i: UINT16 for i in range(5)})
    assert [i for i, _ in got] == [0, 2, 3, 4]
    assert got[1][1][255].tolist() == [255, 0, 0]  # channel 2 is red


def test_palette_and_hex() -> None:
    assert [default_color(i) for i in (0, 1, 2, 8)] == ["#0000ff", "#00ff00", "#ff0000", "#0000ff"]
    assert len(set(PALETTE)) == len(PALETTE)
    assert hex_to_rgb("#FF8000") == (255, 128, 0)
    with pytest.raises(BadRenderSettings, match="#rrggbb"):
        hex_to_rgb("ff8000")


def test_query_round_trip() -> None:
    defaults = five_channels()
    query = "c=0:ff00ff:120:3400:1,2:00FF00:-0.5:1e-7:0.8,4:ffffff:0:1e21:2.2"
    settings = settings_from_query(query, defaults)
    assert [c.visible for c in settings.channels] == [True, False, True, False, True]
    assert settings.channels[0] == ChannelRender(
        index=0, color="#ff00ff", min=120, max=3400, gamma=1
    )
    assert settings.channels[2].color == "#00ff00" and settings.channels[2].max == 1e-7
    assert settings.channels[1] == defaults.channels[1].model_copy(update={"visible": False})
    text = settings_to_query(settings)
    assert text == "c=0:ff00ff:120:3400:1,2:00ff00:-0.5:1e-7:0.8,4:ffffff:0:1e21:2.2"
    assert settings_from_query(text, defaults) == settings
    assert settings_from_query("?" + text + "&format=png", defaults) == settings


def test_query_percent_encoded_gamma_optional_and_absent() -> None:
    defaults = five_channels()
    encoded = settings_from_query("c=3%3Aff0000%3A1%3A2%2C1%3A00ff00%3A0%3A9", defaults)
    assert [(c.index, c.gamma) for c in encoded.visible()] == [(1, 1), (3, 1)]
    assert settings_from_query("x=1", defaults) is defaults
    assert settings_from_query("c=", defaults).visible() == []
    assert settings_to_query(settings_from_query("c=", defaults)) == "c="


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (120.0, "120"),
        (-3400.5, "-3400.5"),
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e21, "1e21"),
        (-2.5e300, "-2.5e300"),
        (5e-324, "5e-324"),
    ],
)
def test_numbers_are_written_as_javascript_writes_them(x: float, text: str) -> None:
    assert format_number(x) == text
    assert float(text) == x


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("c=0:ff00ff:1:2&c=1:ff00ff:1:2", "more than one 'c'"),
        ("c=0:ff00ff:1", "must be index:colour:min:max:gamma"),
        ("c=0:ff00ff:1:2:1:1", "must be index:colour:min:max:gamma"),
        ("c=-1:ff00ff:1:2", "must be index:colour"),
        ("c=x:ff00ff:1:2", "must be index:colour"),
        ("c=7:ff00ff:1:2", "Channel 7 does not exist; this image has channels 0 to 4"),
        ("c=0:red:1:2", "six hex digits"),
        ("c=0:%23ff00ff:1:2", "six hex digits"),
        ("c=0:ff00ff:nan:2", "min of channel 0 must be a finite number"),
        ("c=0:ff00ff:1:inf", "max of channel 0"),
        ("c=0:ff00ff:1:1e999", "max of channel 0"),
        ("c=0:ff00ff:1_0:2", "min of channel 0"),
        ("c=0:ff00ff:0x10:2", "min of channel 0"),
        ("c=0:ff00ff:1e+5:2", "min of channel 0"),  # '+' is a space in a query
        ("c=0:ff00ff: 1:2", "min of channel 0"),
        ("c=0:ff00ff:1:2:0", "Gamma of channel 0 must be between 0.05 and 20; got 0."),
        ("c=0:ff00ff:1:2:25", "got 25"),
        ("c=0:ff00ff:1:2,0:00ff00:1:2", "Channel 0 is listed twice"),
        ("c=" + ",".join(["0:ff00ff:1:2"] * 65), f"At most {MAX_VISIBLE} channels"),
        ("c=" + "0" * 9000, "longer than 8192"),
    ],
)
def test_bad_queries_say_what_to_fix(query: str, message: str) -> None:
    with pytest.raises(BadRenderSettings, match=message.replace("(", r"\(")) as info:
        settings_from_query(query, five_channels())
    assert isinstance(info.value, ValueError) and isinstance(info.value, PlexzoomError)


def test_settings_validation_messages() -> None:
    with pytest.raises(ValidationError, match="colour must be '#rrggbb'"):
        channel(color="red")
    with pytest.raises(ValidationError, match=r"greater than or equal to 0\.05"):
        channel(gamma=0.01)
    with pytest.raises(ValidationError, match="finite number"):
        channel(max=math.inf)
    with pytest.raises(ValidationError, match="Extra inputs"):
        channel(colour="#ffffff")
    with pytest.raises(ValidationError, match=r"listed twice: \[0\]"):
        RenderSettings(channels=[channel(), channel()])
    many = [channel(index=i) for i in range(MAX_VISIBLE + 1)]
    with pytest.raises(ValidationError, match=f"at most {MAX_VISIBLE} channels"):
        RenderSettings(channels=many)
    many[0].visible = False
    assert len(RenderSettings(channels=many).visible()) == MAX_VISIBLE
    assert channel(color="#FF00FF").color == "#ff00ff"
