// Unit tests of viewer/js/lib/scalebar.js with node's test runner. Run: node --test tests/viewer/

import assert from "node:assert/strict";
import { test } from "node:test";

import { formatLength, roundLength, scaleBar } from "../../viewer/js/lib/scalebar.js";

test("round lengths are 1, 2 or 5 times a power of ten, never above the limit", () => {
  assert.deepEqual([7.3, 0.0031, 100, 2.5, 19.99].map(roundLength), [5, 0.002, 100, 2, 10]);
});

test("lengths are written in the unit that keeps the number readable", () => {
  assert.deepEqual([20e-6, 1500e-6, 5e-7, 2].map(formatLength), ["20 µm", "1.5 mm", "500 nm", "2 m"]);
});

test("the bar follows the zoom", () => {
  assert.deepEqual(scaleBar(0.5, "µm", 1), { px: 100, label: "50 µm" });
  assert.deepEqual(scaleBar(0.5, "µm", 0.01), { px: 100, label: "5 mm" });
  const bar = scaleBar(0.5, "µm", 0.03);
  assert.equal(bar.label, "2 mm");
  assert.ok(Math.abs(bar.px - 120) < 1e-9);
  assert.deepEqual(scaleBar(0.5, "um", 1).label, "50 µm");
  assert.deepEqual(scaleBar(2, "furlong", 1), { px: 100, label: "200 furlong" });
});
