// Unit tests of viewer/js/lib/render.js (the render model's JS twin) with node's test runner.
// Run: node --test tests/viewer/    (its speed: node bench/render_speed.mjs)

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  BadRenderSettings,
  MAX_VISIBLE,
  PALETTE,
  channelTable,
  defaultColor,
  formatNumber,
  hexToRgb,
  renderInto,
  settingsFromQuery,
  settingsToQuery,
  visibleTables,
} from "../../viewer/js/lib/render.js";

const LINEAR = Array.from({ length: 256 }, (_, k) => k);
const UINT16 = Array.from({ length: 256 }, (_, k) => k * 257);

function channel(changes = {}) {
  return { index: 0, visible: true, color: "#ffffff", min: 0, max: 255, gamma: 1, ...changes };
}

function fiveChannels() {
  return {
    channels: Array.from({ length: 5 }, (_, i) => channel({ index: i, color: defaultColor(i), max: 65535 })),
  };
}

/** Rows [k] of a table as [r, g, b]. */
function row(table, k) {
  return Array.from(table.subarray(3 * k, 3 * k + 3));
}

/** Render grey code arrays (stride 1) into a fresh RGBA buffer; returns [[r, g, b], ...]. */
function mix(codeArrays, tables) {
  const n = codeArrays.length ? codeArrays[0].length : 1;
  const out = renderInto(new Uint8ClampedArray(n * 4), codeArrays.map((c) => Uint8Array.from(c)), tables, 1);
  return Array.from({ length: n }, (_, p) => {
    assert.equal(out[4 * p + 3], 255);
    return Array.from(out.subarray(4 * p, 4 * p + 3));
  });
}

describe("channelTable", () => {
  test("the window maps min to black and max to the full colour", () => {
    const table = channelTable(UINT16, channel({ color: "#ff8000", min: 257 * 50, max: 257 * 150 }));
    assert.ok(table instanceof Float32Array && table.length === 768);
    for (let k = 0; k <= 50; k += 1) assert.deepEqual(row(table, k), [0, 0, 0]);
    for (let k = 150; k < 256; k += 1) assert.deepEqual(row(table, k), [255, 128, 0]);
    assert.deepEqual(row(table, 100), [127.5, 64, 0]);
  });

  test("gamma above one brightens dim values", () => {
    const bright = channelTable(LINEAR, channel({ gamma: 2 }));
    const dark = channelTable(LINEAR, channel({ gamma: 0.5 }));
    const t = 64 / 255;
    assert.equal(bright[3 * 64], Math.fround(255 * Math.sqrt(t)));
    assert.ok(Math.abs(dark[3 * 64] - 255 * t * t) < 1e-4);
    assert.ok(bright[3 * 64] > 255 / 4 && dark[3 * 64] < 255 / 4);
  });

  test("max not above min is a threshold at max", () => {
    for (const [min, max] of [[100, 100], [200, 100]]) {
      const table = channelTable(LINEAR, channel({ min, max }));
      assert.equal(table[3 * 99 + 1], 0);
      assert.equal(table[3 * 100 + 1], 255);
    }
  });

  test("a bad lut or colour is refused", () => {
    assert.throws(() => channelTable(LINEAR.slice(1), channel()), BadRenderSettings);
    assert.throws(() => channelTable([...LINEAR.slice(1), NaN], channel()), /256 finite numbers/);
    assert.throws(() => channelTable(LINEAR, channel({ color: "red" })), /#rrggbb/);
  });
});

describe("renderInto", () => {
  test("adds channels, clamps and rounds half up", () => {
    const red = channelTable(LINEAR, channel({ color: "#ff0000" }));
    const magenta = channelTable(LINEAR, channel({ color: "#ff00ff" }));
    const got = mix([[0, 51, 255, 1], [0, 102, 255, 0]], [red, magenta]);
    assert.deepEqual(got, [[0, 0, 0], [153, 0, 102], [255, 0, 255], [1, 0, 0]]);
    const half = new Float32Array(768);
    half.set([0.5, 1.5, 2.49, 254.5, 255.4, 300], 3);
    assert.deepEqual(mix([[1, 2]], [half]), [[1, 2, 2], [255, 255, 255]]);
  });

  test("no channel is black", () => {
    const out = renderInto(new Uint8ClampedArray(8).fill(7), [], []);
    assert.deepEqual(Array.from(out), [0, 0, 0, 255, 0, 0, 0, 255]);
  });

  test("reads codes from RGBA tiles and writes unaligned outputs alike", () => {
    const n = 5000; // more than one chunk
    const codes = Uint8Array.from({ length: n }, (_, p) => (p * 7) % 256);
    const rgba = new Uint8ClampedArray(n * 4);
    codes.forEach((c, p) => rgba.set([c, c, c, 255], 4 * p));
    const tables = [channelTable(UINT16, channel({ color: "#00ffff", min: 1000, max: 60000, gamma: 2.2 }))];
    const a = renderInto(new Uint8ClampedArray(n * 4), [codes], tables, 1);
    const b = renderInto(new Uint8ClampedArray(n * 4), [rgba], tables, 4);
    const unaligned = new Uint8ClampedArray(n * 4 + 1).subarray(1);
    renderInto(unaligned, [rgba], tables, 4);
    assert.deepEqual(b, a);
    assert.deepEqual(unaligned, a);
    assert.equal(a[4 * 255 + 1], Math.round(tables[0][3 * ((255 * 7) % 256) + 1]));
  });

  test("refuses mismatched inputs", () => {
    const table = channelTable(LINEAR, channel());
    assert.throws(() => renderInto(new Uint8ClampedArray(16), [new Uint8Array(4)], []), /tables/);
    assert.throws(() => renderInto(new Uint8ClampedArray(16), [new Uint8Array(3)], [table], 1), /shorter/);
    assert.throws(() => renderInto(new Uint8ClampedArray(16), [new Uint8Array(4)], [new Float32Array(3)], 1), /768/);
  });
});

describe("settings and the query", () => {
  test("visible tables skip hidden channels", () => {
    const settings = fiveChannels();
    settings.channels[1].visible = false;
    const got = visibleTables(settings, Array(5).fill(UINT16));
    assert.deepEqual(got.map(([i]) => i), [0, 2, 3, 4]);
    assert.deepEqual(row(got[1][1], 255), [255, 0, 0]);
  });

  test("palette and hex", () => {
    assert.deepEqual([0, 1, 2, 8].map(defaultColor), ["#0000ff", "#00ff00", "#ff0000", "#0000ff"]);
    assert.equal(new Set(PALETTE).size, PALETTE.length);
    assert.deepEqual(hexToRgb("#FF8000"), [255, 128, 0]);
    assert.throws(() => hexToRgb("ff8000"), /#rrggbb/);
  });

  test("round trip", () => {
    const defaults = fiveChannels();
    const settings = settingsFromQuery("c=0:ff00ff:120:3400:1,2:00FF00:-0.5:1e-7:0.8,4:ffffff:0:1e21:2.2", defaults);
    assert.deepEqual(settings.channels.map((c) => c.visible), [true, false, true, false, true]);
    assert.deepEqual(settings.channels[0], channel({ color: "#ff00ff", min: 120, max: 3400 }));
    assert.deepEqual(settings.channels[1], { ...defaults.channels[1], visible: false });
    const text = settingsToQuery(settings);
    assert.equal(text, "c=0:ff00ff:120:3400:1,2:00ff00:-0.5:1e-7:0.8,4:ffffff:0:1e21:2.2");
    assert.deepEqual(settingsFromQuery(text, defaults), settings);
    assert.deepEqual(settingsFromQuery(`?${text}&format=png`, defaults), settings);
    assert.equal(settingsFromQuery("x=1", defaults), defaults);
    assert.deepEqual(settingsFromQuery("c=", defaults).channels.filter((c) => c.visible), []);
    const encoded = settingsFromQuery("c=3%3Aff0000%3A1%3A2%2C1%3A00ff00%3A0%3A9", defaults);
    assert.deepEqual(encoded.channels.filter((c) => c.visible).map((c) => [c.index, c.gamma]), [[1, 1], [3, 1]]);
  });

  test("numbers are written as render.py writes them", () => {
    const cases = [[0, "0"], [-0, "0"], [120, "120"], [-3400.5, "-3400.5"], [1 / 3, "0.3333333333333333"],
      [1e-6, "0.000001"], [1e-7, "1e-7"], [1e21, "1e21"], [-2.5e300, "-2.5e300"], [5e-324, "5e-324"]];
    for (const [x, text] of cases) assert.equal(formatNumber(x), text);
  });

  test("bad queries say what to fix", () => {
    const bad = [
      ["c=0:ff00ff:1:2&c=1:ff00ff:1:2", "more than one 'c'"],
      ["c=0:ff00ff:1", "must be index:colour:min:max:gamma"],
      ["c=-1:ff00ff:1:2", "must be index:colour"],
      ["c=7:ff00ff:1:2", "Channel 7 does not exist; this image has channels 0 to 4"],
      ["c=0:red:1:2", "six hex digits"],
      ["c=0:ff00ff:nan:2", "min of channel 0 must be a finite number"],
      ["c=0:ff00ff:1:Infinity", "max of channel 0"],
      ["c=0:ff00ff:1:1e999", "max of channel 0"],
      ["c=0:ff00ff:0x10:2", "min of channel 0"],
      ["c=0:ff00ff:1e+5:2", "min of channel 0"],
      ["c=0:ff00ff:1:2:0", "Gamma of channel 0 must be between 0.05 and 20; got 0."],
      ["c=0:ff00ff:1:2,0:00ff00:1:2", "Channel 0 is listed twice"],
      [`c=${Array(MAX_VISIBLE + 1).fill("0:ff00ff:1:2").join(",")}`, `At most ${MAX_VISIBLE} channels`],
      [`c=${"0".repeat(9000)}`, "longer than 8192"],
    ];
    for (const [query, message] of bad) {
      assert.throws(() => settingsFromQuery(query, fiveChannels()), (err) => {
        assert.ok(err instanceof BadRenderSettings, query);
        assert.ok(err.message.includes(message), `${query}: ${err.message}`);
        return true;
      });
    }
  });
});
