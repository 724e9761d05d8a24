// Unit tests of viewer/js/lib/presets.js (colour presets of the channel panel) with node's test runner.
// Run: node --test tests/viewer/

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  PRIMARIES,
  apportion,
  bandColour,
  bandGroupPreset,
  bandGroupRgb,
  bandGroups,
  cieXyz,
  commonWindow,
  hasVisibleBands,
  presetsFor,
  rgbPreset,
  spectralSubset,
  toHex,
  trueColourPreset,
  trueColourRgb,
  xyzToLinearSrgb,
} from "../../viewer/js/lib/presets.js";

const BANDS = Array.from({ length: 31 }, (_, i) => 400 + 10 * i);

function cube(wavelengths = BANDS) {
  return wavelengths.map((nm, i) => ({
    index: i,
    name: `${nm} nm`,
    wavelength_nm: nm,
    window: { min: 0.01 * i, max: 0.5 + 0.01 * i },
  }));
}

function settingsOf(channels) {
  return {
    channels: channels.map((c) => ({
      index: c.index, visible: c.index < 3, color: "#ffffff", min: 0, max: 1, gamma: 1.5,
    })),
  };
}

function sum(colours) {
  return colours.reduce((acc, rgb) => acc.map((v, c) => v + rgb[c]), [0, 0, 0]);
}

function argmax(values) {
  return values.indexOf(Math.max(...values));
}

describe("CIE 1931 colour matching", () => {
  test("the fit peaks where the tabulated functions do", () => {
    assert.ok(Math.abs(cieXyz(555)[1] - 1) < 0.01, "ȳ(555) is about 1");
    assert.ok(Math.abs(cieXyz(600)[0] - 1.06) < 0.02, "x̄(600) is about 1.06");
    assert.ok(Math.abs(cieXyz(445)[2] - 1.78) < 0.03, "z̄(445) is about 1.78");
    assert.ok(cieXyz(830).every((v) => v < 1e-3) && cieXyz(360).every((v) => v < 1e-2));
  });

  test("XYZ of D65 white is sRGB white", () => {
    const rgb = xyzToLinearSrgb([0.9505, 1, 1.089]);
    for (const v of rgb) assert.ok(Math.abs(v - 1) < 2e-3, `${rgb}`);
  });

  test("450 nm is bluish, 550 nm greenish, 650 nm reddish", () => {
    assert.equal(argmax(bandColour(450)), 2);
    assert.equal(argmax(bandColour(550)), 1);
    assert.equal(argmax(bandColour(650)), 0);
    assert.ok(bandColour(550).every((v) => v >= 0));
  });
});

describe("true colour preset", () => {
  test("an equal-energy spectrum adds up to white, with non-negative integer colours", () => {
    const colours = trueColourRgb(BANDS);
    assert.deepEqual(sum(colours), [255, 255, 255]);
    for (const rgb of colours) for (const v of rgb) assert.ok(Number.isInteger(v) && v >= 0 && v <= 255);
  });

  test("within a cube, each band keeps its hue", () => {
    const colours = trueColourRgb(BANDS);
    assert.equal(argmax(colours[BANDS.indexOf(450)]), 2);
    assert.equal(argmax(colours[BANDS.indexOf(550)]), 1);
    assert.equal(argmax(colours[BANDS.indexOf(650)]), 0);
  });

  test("settings: all visible bands, one common window, gamma 1", () => {
    const channels = cube();
    const out = trueColourPreset(settingsOf(channels), channels);
    const shown = out.channels.filter((c) => c.visible);
    assert.ok(shown.length >= 29, "nearly every band between 400 and 700 nm adds colour");
    for (const c of shown) {
      assert.equal(c.min, 0);
      assert.equal(c.max, 0.8);
      assert.equal(c.gamma, 1);
      assert.match(c.color, /^#[0-9a-f]{6}$/);
    }
    const total = sum(shown.map((c) => [1, 3, 5].map((k) => parseInt(c.color.slice(k, k + 2), 16))));
    assert.deepEqual(total, [255, 255, 255]);
  });

  test("bands the eye cannot see are hidden; all-infrared cubes get no true colour", () => {
    const channels = cube([550, 900, 1000]);
    const out = trueColourPreset(settingsOf(channels), channels);
    assert.deepEqual(out.channels.map((c) => c.visible), [true, false, false]);
    assert.equal(hasVisibleBands(cube([900, 1000, 1100])), false);
    assert.deepEqual(presetsFor(cube([900, 1000, 1100])).map((p) => p.id), ["rgb", "groups"]);
  });
});

describe("band groups preset", () => {
  test("bands split into three wavelength ranges, short to blue", () => {
    const groups = bandGroups(BANDS);
    assert.equal(groups[0], 0);
    assert.equal(groups[30], 2);
    assert.deepEqual([0, 1, 2].map((g) => groups.filter((x) => x === g).length), [10, 10, 11]);
  });

  test("each group sums to its full primary", () => {
    const colours = bandGroupRgb(BANDS);
    const groups = bandGroups(BANDS);
    const expected = [[0, 0, 255], [0, 255, 0], [255, 0, 0]];
    for (const g of [0, 1, 2]) {
      assert.deepEqual(sum(colours.filter((_, i) => groups[i] === g)), expected[g]);
    }
    assert.deepEqual(sum(colours), [255, 255, 255]);
  });

  test("settings use one window for every band", () => {
    const channels = cube();
    const out = bandGroupPreset(settingsOf(channels), channels);
    assert.ok(out.channels.every((c) => c.visible && c.min === 0 && c.max === 0.8));
    assert.deepEqual(commonWindow(channels), { min: 0, max: 0.8 });
  });
});

describe("three channels to R/G/B", () => {
  test("picked channels become red, green, blue; the rest hidden", () => {
    const settings = settingsOf(cube().slice(0, 6));
    const out = rgbPreset(settings, [4, 0, 2]);
    assert.deepEqual(out.channels.map((c) => c.visible), [true, false, true, false, true, false]);
    assert.equal(out.channels[4].color, PRIMARIES[0]);
    assert.equal(out.channels[0].color, PRIMARIES[1]);
    assert.equal(out.channels[2].color, PRIMARIES[2]);
    assert.equal(out.channels[4].gamma, 1.5, "windows and gamma are kept");
  });

  test("an empty slot leaves that primary dark", () => {
    const out = rgbPreset(settingsOf(cube().slice(0, 3)), [1, null, null]);
    assert.deepEqual(out.channels.map((c) => c.visible), [false, true, false]);
  });
});

describe("helpers", () => {
  test("apportion sums to the total and keeps proportions", () => {
    assert.deepEqual(apportion([1, 1, 1]), [85, 85, 85]);
    assert.equal(apportion(Array(7).fill(1)).reduce((a, b) => a + b), 255);
    assert.deepEqual(apportion([0, 0]), [0, 0]);
    assert.deepEqual(apportion([3, 1], 4), [3, 1]);
  });

  test("toHex clamps and pads", () => {
    assert.equal(toHex([255, 8, 0]), "#ff0800");
    assert.equal(toHex([300, -2, 15.6]), "#ff0010");
  });

  test("cubes of more than 64 bands are sampled evenly, still summing to white", () => {
    const waves = Array.from({ length: 128 }, (_, i) => 400 + (300 * i) / 127);
    const subset = spectralSubset(cube(waves));
    assert.equal(subset.length, 64);
    assert.equal(subset[0].wavelength_nm, 400);
    assert.equal(subset[63].wavelength_nm, 700);
    const channels = cube(waves);
    const out = trueColourPreset(settingsOf(channels), channels);
    const shown = out.channels.filter((c) => c.visible);
    assert.ok(shown.length <= 64 && shown.length > 50);
    const total = sum(shown.map((c) => [1, 3, 5].map((k) => parseInt(c.color.slice(k, k + 2), 16))));
    assert.deepEqual(total, [255, 255, 255]);
  });

  test("presets offered depend on the channels", () => {
    assert.deepEqual(presetsFor(cube()).map((p) => p.id), ["rgb", "groups", "truecolour"]);
    const plain = [{ index: 0 }, { index: 1 }, { index: 2 }];
    assert.deepEqual(presetsFor(plain).map((p) => p.id), ["rgb"]);
    assert.deepEqual(presetsFor([{ index: 0 }]), []);
  });
});
