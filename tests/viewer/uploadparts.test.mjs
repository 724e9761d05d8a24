// Unit tests of viewer/js/lib/uploadparts.js (the upload page's part layout, batched part URLs
// and retry rule). Run: node --test tests/viewer/*.test.mjs

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

/** A fake POST /v1/uploads/{id}/parts that records the numbers of each call. */
function fakeSign(calls, expiresIn = 3600) {
  return async (id, numbers) => {
    calls.push(numbers);
    return {
      parts: numbers.map((number) => ({ number, url: `http://s/${id}/${number}?v=${calls.length}`, size: 1, headers: {} })),
      expires_in: expiresIn,
    };
  };
}

test("part URLs asked for in one turn come from one call, which signs the next parts too", async () => {
  const calls = [];
  const signer = new PartSigner("u1", 40, fakeSign(calls));
  const got = await Promise.all([3, 1, 2].map((n) => signer.get(n)));
  assert.deepEqual(got.map((p) => p.url), ["http://s/u1/3?v=1", "http://s/u1/1?v=1", "http://s/u1/2?v=1"]);
  assert.deepEqual(calls, [Array.from({ length: 16 }, (_, i) => i + 1)]);
  assert.equal((await signer.get(16)).url, "http://s/u1/16?v=1"); // kept: no second call
  assert.equal(calls.length, 1);
});

test("no part number past the upload's last is asked for", async () => {
  const calls = [];
  const signer = new PartSigner("u2", 3, fakeSign(calls));
  await signer.get(2);
  assert.deepEqual(calls, [[2, 3]]);
});

test("a refused URL is signed again; so is one past most of its life", async () => {
  const calls = [];
  const signer = new PartSigner("u3", 2, fakeSign(calls, 0));
  await signer.get(1);
  await signer.get(1); // expires_in 0: stale at once
  assert.equal(calls.length, 2);
  const fresh = new PartSigner("u4", 1, fakeSign(calls));
  const first = await fresh.get(1);
  assert.equal(fresh.forget(first.url), true);
  assert.notEqual((await fresh.get(1)).url, first.url);
  assert.equal(fresh.forget("http://elsewhere/1"), false); // not one of this upload's URLs
});

test("a part refused again and again is no longer signed anew: the refusal is not about time", async () => {
  const signer = new PartSigner("u6", 1, fakeSign([]));
  const answers = [];
  for (let i = 0; i < 4; i += 1) answers.push(signer.forget((await signer.get(1)).url));
  assert.deepEqual(answers, [true, true, true, false]);
});

test("a failed signing call fails every waiting part, and the next get asks again", async () => {
  let fail = true;
  const calls = [];
  const ok = fakeSign(calls);
  const signer = new PartSigner("u5", 4, async (id, numbers) => {
    if (fail) throw Object.assign(new Error("down"), { status: 503 });
    return ok(id, numbers);
  });
  const results = await Promise.allSettled([signer.get(1), signer.get(2)]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  fail = false;
  assert.equal((await signer.get(2)).url, "http://s/u5/2?v=1");
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
