// Unit tests of viewer/js/lib/uploadparts.js (the upload page's part layout, part URLs signed
// with each part's CRC-32, and retry rule). Run: node --test tests/viewer/*.test.mjs

import assert from "node:assert/strict";
import { test } from "node:test";

import { PartSigner, isTransient, partBytes } from "../../viewer/js/lib/uploadparts.js";

const MiB = 1024 * 1024;

test("every part but the last is part_size bytes; the last is the remainder", () => {
  const size = 12 * MiB + 7;
  assert.deepEqual([1, 2, 3].map((n) => partBytes(size, 5 * MiB, n)), [5 * MiB, 5 * MiB, 2 * MiB + 7]);
  assert.equal(partBytes(10 * MiB, 5 * MiB, 2), 5 * MiB);
  assert.equal(partBytes(1, 5 * MiB, 1), 1);
});

/** A fake POST /v1/uploads/{id}/parts that records the parts of each call. */
function fakeSign(calls, expiresIn = 3600) {
  return async (id, parts) => {
    calls.push(parts);
    return {
      parts: parts.map(({ number, crc32 }) => ({
        number, url: `http://s/${id}/${number}?v=${calls.length}`, size: 1, headers: { "x-amz-checksum-crc32": crc32 },
      })),
      expires_in: expiresIn,
    };
  };
}

test("parts asked for in one turn are signed by one call, each with its CRC-32, and no others", async () => {
  const calls = [];
  const signer = new PartSigner("u1", fakeSign(calls));
  const got = await Promise.all([3, 1, 2].map((n) => signer.get(n, `c${n}`)));
  assert.deepEqual(got.map((p) => p.url), ["http://s/u1/3?v=1", "http://s/u1/1?v=1", "http://s/u1/2?v=1"]);
  assert.deepEqual(got.map((p) => p.headers), [3, 1, 2].map((n) => ({ "x-amz-checksum-crc32": `c${n}` })));
  assert.deepEqual(calls, [[{ number: 1, crc32: "c1" }, { number: 2, crc32: "c2" }, { number: 3, crc32: "c3" }]]);
  await signer.get(4, "c4"); // not signed ahead: its bytes were not hashed yet
  assert.deepEqual(calls[1], [{ number: 4, crc32: "c4" }]);
});

test("a URL is reused for the same bytes only: other bytes of the part are signed anew", async () => {
  const calls = [];
  const signer = new PartSigner("u2", fakeSign(calls));
  const first = await signer.get(1, "aaa");
  assert.equal(await signer.get(1, "aaa"), first); // a retry of the same bytes: no call
  assert.equal(calls.length, 1);
  const other = await signer.get(1, "bbb");
  assert.equal(calls.length, 2);
  assert.deepEqual(other.headers, { "x-amz-checksum-crc32": "bbb" });
});

test("a refused URL is signed again; so is one past most of its life", async () => {
  const calls = [];
  const signer = new PartSigner("u3", fakeSign(calls, 0));
  await signer.get(1, "c");
  await signer.get(1, "c"); // expires_in 0: stale at once
  assert.equal(calls.length, 2);
  const fresh = new PartSigner("u4", fakeSign(calls));
  const first = await fresh.get(1, "c");
  assert.equal(fresh.forget(first.url), true);
  assert.notEqual((await fresh.get(1, "c")).url, first.url);
  assert.equal(fresh.forget("http://elsewhere/1"), false); // not one of this upload's URLs
});

test("a part refused again and again is no longer signed anew: the refusal is not about time", async () => {
  const signer = new PartSigner("u6", fakeSign([]));
  const answers = [];
  for (let i = 0; i < 4; i += 1) answers.push(signer.forget((await signer.get(1, "c")).url));
  assert.deepEqual(answers, [true, true, true, false]);
});

test("a failed signing call fails every waiting part, and the next get asks again", async () => {
  let fail = true;
  const calls = [];
  const ok = fakeSign(calls);
  const signer = new PartSigner("u5", async (id, parts) => {
    if (fail) throw Object.assign(new Error("down"), { status: 503 });
    return ok(id, parts);
  });
  const results = await Promise.allSettled([signer.get(1, "c1"), signer.get(2, "c2")]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  fail = false;
  assert.equal((await signer.get(2, "c2")).url, "http://s/u5/2?v=1");
});

test("network failures, timeouts, 429 and 5xx are worth a retry; refusals are not", () => {
  assert.equal(isTransient({ status: 0 }), true);
  assert.equal(isTransient({ status: 503 }), true);
  assert.equal(isTransient({ status: 429 }), true);
  assert.equal(isTransient({ source: { status: 0 } }), true); // an XHR that could not send
  assert.equal(isTransient({ source: { status: 502 } }), true);
  assert.equal(isTransient({ status: 413 }), false);
  assert.equal(isTransient({ status: 415 }), false);
  assert.equal(isTransient({ source: { status: 400 } }), false);
  assert.equal(isTransient(new Error("a bug")), false);
});
