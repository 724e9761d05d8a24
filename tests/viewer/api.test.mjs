// Unit tests of the gallery's describing helpers in viewer/js/lib/api.js. Run: node --test tests/viewer/

import assert from "node:assert/strict";
import { test } from "node:test";

import { describeContent, formatDate } from "../../viewer/js/lib/api.js";

const lut = new Array(256).fill(0);

test("a card says what an image holds: channels, type and pixel size", () => {
  const image = {
    channels: [{ lut }, { lut }, { lut }], dtype: "uint16", physical_size: [0.325, 0.325, "µm"],
  };
  assert.equal(describeContent(image), "3 channels · uint16 · 0.325 µm/px");
  assert.equal(describeContent({ channels: [{}, {}, {}], dtype: "uint8", physical_size: null }), "RGB · uint8");
  assert.equal(describeContent({ channels: [{}], dtype: "uint8" }), "greyscale · uint8");
  assert.equal(describeContent({ channels: [], dtype: null, physical_size: null }), ""); // still converting
});

test("upload times are written to the minute, in local time; nonsense gives nothing", () => {
  const when = new Date(2026, 11, 1, 9, 5);
  assert.equal(formatDate(when.toISOString()), "2026-12-01 09:05");
  assert.equal(formatDate("not a date"), "");
});
