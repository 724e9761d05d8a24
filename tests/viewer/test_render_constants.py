"""render.py and its JS twin render.js declare the same constants.

Limits, the gamma range, the default palette, the patterns of colours and render queries, and the
LUT size both accept: a constant changed, added or dropped on one side fails here. Node imports
render.js, so no browser is needed. test_render_agreement.py compares what the two compute
(pixels, tables, query text, error messages) in chromium.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plexzoom.core import render

RENDER_JS = Path(__file__).resolve().parents[2] / "viewer" / "js" / "lib" / "render.js"
CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")
LUT_SIZES = [255, 256, 257]

# render.js's exported constants as JSON (a RegExp as its source and flags), and, for LUTs of
# LUT_SIZES entries, the length of the table channelTable makes or null where it refuses the LUT.
NODE_SCRIPT = """
const { pathToFileURL } = await import("node:url");
const r = await import(pathToFileURL(process.argv[1]).href);
const sizes = JSON.parse(process.argv[2]);
const plain = (v) => (v instanceof RegExp ? { source: v.source, flags: v.flags } : v);
const constants = Object.fromEntries(Object.entries(r)
  .filter(([name]) => /^[A-Z][A-Z0-9_]*$/.test(name))
  .map(([name, value]) => [name, plain(value)]));
const setting = { index: 0, color: "#ffffff", min: 0, max: 255, gamma: 1 };
const tables = sizes.map((n) => {
  try {
    return r.channelTable(Array.from({ length: n }, (_, k) => k), setting).length;
  } catch (e) {
    if (e instanceof r.BadRenderSettings) return null;
    throw e;
  }
});
console.log(JSON.stringify({ constants, tables }));
"""


def python_constants() -> dict[str, Any]:
    """render.py's module-level constants under their JS names (no leading underscore).

    Python matches its patterns whole (fullmatch); render.js anchors its own with ^ and $.
    """
    found: dict[str, Any] = {}
    for name, value in vars(render).items():
        if not CONSTANT.fullmatch(name):
            continue
        if isinstance(value, re.Pattern):
            flags = "" if value.flags == re.UNICODE else f"python flags {value.flags}"
            value = {"source": f"^{value.pattern}$", "flags": flags}
        elif isinstance(value, tuple):
            value = list(value)
        found[name.lstrip("_")] = value
    return found


def python_tables() -> list[int | None]:
    """The size of channel_table's result for each of LUT_SIZES, None where it refuses the LUT."""
    setting = render.ChannelRender(index=0, color="#ffffff", min=0, max=255)
    sizes: list[int | None] = []
    for n in LUT_SIZES:
        try:
            sizes.append(render.channel_table([float(k) for k in range(n)], setting).size)
        except render.BadRenderSettings:
            sizes.append(None)
    return sizes


PYTHON = python_constants()


@pytest.fixture(scope="module")
def js() -> dict[str, Any]:
    """What NODE_SCRIPT prints about render.js."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: make test needs Node.js (see the README)")
    done = subprocess.run(
        [node, "--input-type=module", "-e", NODE_SCRIPT, str(RENDER_JS), json.dumps(LUT_SIZES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_both_sides_declare_the_same_constants(js: dict[str, Any]) -> None:
    only_js = sorted(js["constants"].keys() - PYTHON.keys())
    only_python = sorted(PYTHON.keys() - js["constants"].keys())
    assert (only_js, only_python) == ([], [])
    assert {"MAX_VISIBLE", "GAMMA_MIN", "GAMMA_MAX", "PALETTE", "HEX"} <= PYTHON.keys()


@pytest.mark.parametrize("name", sorted(PYTHON))
def test_constant_agrees(js: dict[str, Any], name: str) -> None:
    assert js["constants"].get(name) == PYTHON[name]


def test_both_sides_take_luts_of_256_values(js: dict[str, Any]) -> None:
    assert js["tables"] == python_tables() == [None, 256 * 3, None]
