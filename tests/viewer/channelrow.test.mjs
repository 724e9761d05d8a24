// Unit tests of the pure parts of viewer/js/lib/channelrow.js. Run: node --test tests/viewer/*.test.mjs

import assert from "node:assert/strict";
import { test } from "node:test";

import { tickLabel, valueTicks, zoomedRange } from "../../viewer/js/lib/channelrow.js";

/** Whether `step` (a difference of two ticks, so 0.0999999 for 0.1) is 1, 2 or 5 times a power of ten. */
function isRound(step) {
  const mantissa = Number((step / 10 ** Math.floor(Math.log10(step * 1.000001))).toPrecision(4));
  return [1, 2, 5].includes(mantissa);
}

test("ticks are round native values over the range", () => {
  assert.deepEqual(valueTicks(0, 65535), [0, 20000, 40000, 60000]);
  assert.deepEqual(valueTicks(100, 4000), [1000, 2000, 3000, 4000]);
  assert.deepEqual(valueTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(valueTicks(-3, 3), [-2, 0, 2]);
  assert.deepEqual(valueTicks(0.1, 0.7), [0.2, 0.4, 0.6], "no binary rounding left over");
  assert.deepEqual(valueTicks(1_000_003, 1_000_011), [1_000_004, 1_000_006, 1_000_008, 1_000_010]);
});

test("an empty or degenerate range has no ticks", () => {
  assert.deepEqual(valueTicks(5, 5), []);
  assert.deepEqual(valueTicks(5, 1), []);
  assert.deepEqual(valueTicks(0, Infinity), []);
});

test("3 to 6 ticks with a 1-2-5 step, 7 only where step 5 would leave 2", () => {
  // Spans of 12 to 15 steps of 2: step 2 gives 7 ticks here, step 5 only 5 and 10.
  assert.deepEqual(valueTicks(0.1, 14.9), [2, 4, 6, 8, 10, 12, 14]);
  let seed = 7;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  for (let n = 0; n < 2000; n++) {
    // Spans from 1e-6 to 1e6, at most a million spans away from zero (float64 keeps ticks apart).
    const span = 10 ** (random() * 12 - 6);
    const low = (random() - 0.3) * span * 10 ** (random() * 6);
    const high = low + span;
    const ticks = valueTicks(low, high);
    assert.ok(ticks.length >= 3 && ticks.length <= 7, `${low}..${high}: ${ticks}`);
    assert.ok(ticks[0] >= low - 1e-9 * (high - low) && ticks.at(-1) <= high + 1e-9 * (high - low));
    assert.ok(isRound(ticks[1] - ticks[0]), `${low}..${high}: ${ticks}`);
    if (ticks.length === 7) assert.ok(isRound((ticks[1] - ticks[0]) * 2.5), "7 only with step 2 x 10^n");
  }
});

test("tick labels stay short", () => {
  const labels = [0, 0.2, 5000, -5000, 20000, 1_000_010, 1_500_000, 2e9, 1e-7].map(tickLabel);
  assert.deepEqual(labels, ["0", "0.2", "5000", "-5000", "20k", "1.00001M", "1.5M", "2e+9", "1e-7"]);
});

const FULL = { low: 100, high: 65535, integer: true };
const PERCENTILES = { "0.1": 100, 1: 100, 50: 100, 99: 3800, "99.9": 4000 };

test("zoom spans the populated values and the window, padded by a twentieth, in whole numbers", () => {
  assert.deepEqual(zoomedRange(PERCENTILES, { min: 300, max: 3000 }, FULL), { low: 100, high: 4195 });
  assert.deepEqual(zoomedRange(PERCENTILES, { min: 300, max: 10000 }, FULL), { low: 100, high: 10495 });
  const float = { low: -1, high: 1, integer: false };
  assert.deepEqual(zoomedRange({ "0.1": 0, "99.9": 0.5 }, { min: 0.1, max: 0.2 }, float), { low: -0.025, high: 0.525 });
});

test("a window outside the full range is never clipped by the zoom", () => {
  assert.deepEqual(zoomedRange(PERCENTILES, { min: 50, max: 120000 }, FULL), { low: 50, high: 120000 });
});

test("a constant channel zooms to its full range", () => {
  const flat = { "0.1": 7, "99.9": 7 };
  assert.deepEqual(zoomedRange(flat, { min: 7, max: 7 }, { low: 6, high: 8, integer: true }), { low: 6, high: 8 });
  assert.deepEqual(zoomedRange(undefined, { min: 0, max: 1 }, { low: 0, high: 1, integer: false }), { low: 0, high: 1 });
});
