// Unit tests of viewer/js/lib/checksum.js (hash-wasm's CRC-32 as the page sends it) against
// zlib's. Run: node --test tests/viewer/*.test.mjs

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { crc32 } from "node:zlib";

import { partCrc32 } from "../../viewer/js/lib/checksum.js";

/** What the protocol asks for: base64 of zlib's CRC-32 as 4 big-endian bytes. */
function expected(bytes) {
  const digest = Buffer.alloc(4);
  digest.writeUInt32BE(crc32(bytes));
  return digest.toString("base64");
}

test("the check value of CRC-32 and the empty part", async () => {
  const check = new TextEncoder().encode("123456789"); // CRC-32's check value: cbf43926
  assert.equal(await partCrc32(new Blob([check])), Buffer.from("cbf43926", "hex").toString("base64"));
  assert.equal(await partCrc32(new Blob([])), "AAAAAA==");
});

test("parts of several lengths, a part of 5 MiB among them, as zlib computes", async () => {
  for (const length of [1, 3, 4, 5, 1000, 5 * 1024 * 1024 + 3]) {
    const bytes = randomBytes(length);
    assert.equal(await partCrc32(new Blob([bytes])), expected(bytes), `length ${length}`);
  }
});

test("a CRC-32 with leading zero bytes keeps all four bytes", async () => {
  for (let i = 0; ; i += 1) {
    const bytes = Buffer.from(`part ${i}`);
    if (crc32(bytes) >= 0x01000000) continue; // a digest whose first byte is 0
    assert.equal(await partCrc32(new Blob([bytes])), expected(bytes));
    assert.equal(Buffer.from(await partCrc32(new Blob([bytes])), "base64").length, 4);
    return;
  }
});
