// Unit tests of the gallery's describing helpers in viewer/js/lib/api.js. Run: node --test tests/viewer/

import assert from "node:assert/strict";
import { test } from "node:test";

import { describeContent, formatDate, isMultiChannel } from "../../viewer/js/lib/api.js";

const lut = new Array(256).fill(0);
const channel = (index) => ({ index, lut, dzi: `/tiles/x/g/c${index}.dzi` }); // as the API lists them

test("a card says what an image holds: channels, type and pixel size", () => {
  const image = {
    channels: [channel(0), channel(1), channel(2)], dtype: "uint16", physical_size: [0.325, 0.325, "µm"],
  };
  assert.equal(describeContent(image), "3 channels · uint16 · 0.325 µm/px");
  assert.equal(describeContent({ channels: [{}, {}, {}], dtype: "uint8", physical_size: null }), "RGB · uint8");
  assert.equal(describeContent({ channels: [{}], dtype: "uint8" }), "greyscale · uint8");
  assert.equal(describeContent({ channels: [], dtype: null, physical_size: null }), ""); // still converting
});

test("multi-channel means every channel has a code table of 256 and a pyramid", () => {
  assert.equal(isMultiChannel({ channels: [channel(0)] }), true);
  assert.equal(isMultiChannel({ channels: [channel(0), { ...channel(1), dzi: undefined }] }), false);
  assert.equal(isMultiChannel({ channels: [{ ...channel(0), lut: [1, 2] }] }), false);
  assert.equal(isMultiChannel({ channels: [] }), false);
});

test("upload times are written to the minute, in local time; nonsense gives nothing", () => {
  const when = new Date(2026, 11, 1, 9, 5);
  assert.equal(formatDate(when.toISOString()), "2026-12-01 09:05");
  assert.equal(formatDate("not a date"), "");
});
