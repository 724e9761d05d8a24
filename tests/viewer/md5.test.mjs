// Unit tests of viewer/js/lib/md5.js (hash-wasm's MD5 as the page uses it) against node's MD5. Run: node --test tests/viewer/*.test.mjs

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";

import { contentMd5, md5 } from "../../viewer/js/lib/md5.js";

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const nodeMd5 = (bytes) => createHash("md5").update(bytes).digest();

test("RFC 1321's test suite", async () => {
  const suite = {
    "": "d41d8cd98f00b204e9800998ecf8427e",
    a: "0cc175b9c0f1b6a831c399e269772661",
    abc: "900150983cd24fb0d6963f7d28e17f72",
    "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
    "12345678901234567890123456789012345678901234567890123456789012345678901234567890":
      "57edf4a22be3c955ac49da2e2107b67a",
  };
  for (const [text, digest] of Object.entries(suite)) {
    assert.equal(hex(await md5(new TextEncoder().encode(text))), digest);
  }
});

test("every length around the block and padding edges, and a part of 5 MiB, as node computes", async () => {
  for (const length of [55, 56, 57, 63, 64, 65, 119, 120, 128, 1000]) {
    const bytes = randomBytes(length);
    assert.equal(hex(await md5(bytes)), nodeMd5(bytes).toString("hex"), `length ${length}`);
  }
  const part = randomBytes(5 * 1024 * 1024 + 3);
  assert.equal(hex(await md5(part)), nodeMd5(part).toString("hex"));
  const offset = new Uint8Array(part.buffer, part.byteOffset + 1, 1001); // not at a word boundary
  assert.equal(hex(await md5(offset)), nodeMd5(offset).toString("hex"));
});

test("a Blob's Content-MD5 header is the base64 of the digest", async () => {
  const bytes = randomBytes(70_000);
  const { base64, hex: digest } = await contentMd5(new Blob([bytes]));
  assert.equal(base64, nodeMd5(bytes).toString("base64"));
  assert.equal(digest, nodeMd5(bytes).toString("hex"));
});
