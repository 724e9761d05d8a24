// Unit tests of viewer/js/tiletoken.js (token in tile URLs, renewal) with node's test runner.
// Run: node --test tests/viewer/   (refresh is a stub; renewal timers run on node's mock clock, so
// no test depends on how fast the machine is)

import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";

import { TileToken, signedDziSource, withToken } from "../../viewer/js/tiletoken.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const settle = () => new Promise((resolve) => setImmediate(resolve)); // pending promises run

/** Run `body(advance)` with setTimeout on a mock clock; `advance(ms)` moves it and settles. */
async function withMockTimers(body) {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    await body(async (ms) => {
      mock.timers.tick(ms);
      await settle();
    });
  } finally {
    mock.timers.reset();
  }
}
const status = (token, seconds = 1) => ({
  id: "img",
  links: { token, token_expires_in: token ? seconds : null },
});

describe("withToken", () => {
  test("sets, replaces and removes t, keeping other parameters and the hash", () => {
    assert.equal(withToken("/tiles/a/g/image_files/1/0_0.jpeg", "9.x"), "/tiles/a/g/image_files/1/0_0.jpeg?t=9.x");
    assert.equal(withToken("/r.png?c=0:ff0000:0:1:1&t=old", "new"), "/r.png?c=0:ff0000:0:1:1&t=new");
    assert.equal(withToken("/a.dzi?t=old", null), "/a.dzi");
    assert.equal(withToken("/a.dzi?tx=1#h", "k"), "/a.dzi?tx=1&t=k#h");
    assert.equal(withToken("/a.dzi", null), "/a.dzi");
  });
});

describe("TileToken", () => {
  test("a public image has no token and no renewals", () => {
    const token = new TileToken(status(null), () => assert.fail("no refresh for public images"));
    assert.equal(token.sign("/t.jpeg?x=1"), "/t.jpeg?x=1");
    assert.equal(token.timer, null);
    assert.equal(token.renewIfStale(), null);
  });

  test("renews at a third of the token's life (at least 500 ms) and signs with the newest token", async () => {
    await withMockTimers(async (advance) => {
      let calls = 0;
      const refresh = async (id) => {
        assert.equal(id, "img");
        calls += 1;
        return status(`tok${calls}`);
      };
      const token = new TileToken(status("tok0"), refresh);
      assert.equal(token.sign("/t.png"), "/t.png?t=tok0");
      await advance(499); // 1 s left: the first renewal is due after 500 ms
      assert.equal(calls, 0);
      await advance(1);
      assert.equal(calls, 1);
      assert.equal(token.sign("/t.png"), "/t.png?t=tok1");
      await advance(499);
      assert.equal(calls, 1);
      await advance(1);
      assert.equal(calls, 2);
      assert.equal(token.renewals, 2);
      token.stop();
    });
  });

  test("a failed renewal is reported and retried; concurrent renewals share one request", async () => {
    await withMockTimers(async (advance) => {
      let calls = 0;
      const errors = [];
      const refresh = async () => {
        calls += 1;
        if (calls === 1) throw new Error("offline");
        return status("fresh", 3600);
      };
      const token = new TileToken(status("old", 3600), refresh, { onError: (e) => errors.push(e.message) });
      await Promise.all([token.renew(), token.renew()]);
      assert.equal(calls, 1);
      assert.deepEqual(errors, ["offline"]);
      assert.equal(token.value, "old");
      await advance(1999); // retried after 2 s
      assert.equal(calls, 1);
      await advance(1);
      assert.equal(calls, 2);
      assert.equal(token.value, "fresh");
      token.stop();
    });
  });

  test("ready() waits for a renewal only when the token has less than a second left", async () => {
    let now = 0;
    let calls = 0;
    const token = new TileToken(status("a", 60), async () => {
      calls += 1;
      return status("b", 60);
    }, { now: () => now });
    await token.ready();
    assert.equal(calls, 0);
    now = 59_500;
    await token.ready();
    assert.equal(calls, 1);
    assert.equal(token.value, "b");
    token.stop();
  });

  test("renewIfStale renews only a token that has (nearly) run out", async () => {
    let now = 0;
    let calls = 0;
    const token = new TileToken(status("a", 60), async () => {
      calls += 1;
      return status("b", 60);
    }, { now: () => now });
    assert.equal(token.renewIfStale(), null);
    now = 59_800;
    await token.renewIfStale();
    assert.equal(calls, 1);
    assert.equal(token.value, "b");
    token.stop();
  });
});

describe("refused tiles", () => {
  test("a refused tile renews a fresh token too, at most every 5 s", async () => {
    let now = 0;
    let calls = 0;
    const token = new TileToken(status("a", 3600), async () => {
      calls += 1;
      return status(`b${calls}`, 3600);
    }, { now: () => now });
    assert.equal(token.renewAfterRefusal(), null); // just issued: a real refusal, not a stale token
    now = 6000; // say the server restarted with another secret
    await token.renewAfterRefusal();
    assert.equal(token.value, "b1");
    now = 7000;
    assert.equal(token.renewAfterRefusal(), null);
    assert.equal(calls, 1);
    token.stop();
  });
});

describe("signedDziSource", () => {
  test("each download is signed with the token current when it starts", async () => {
    const started = [];
    class TileSource {
      constructor(options) {
        Object.assign(this, options);
      }

      downloadTileStart(job) {
        started.push(job.src);
      }
    }
    const token = new TileToken(status("one", 3600), async () => status("two", 3600));
    const geometry = { width: 1000, height: 500, tileSize: 254, overlap: 1, format: "jpeg", maxLevel: 10 };
    const source = signedDziSource(geometry, "/tiles/i/g/image_files/?t=one", token, { TileSource });
    assert.equal(source.maxLevel, 10);
    const queued = { src: source.getTileUrl(10, 2, 1), fail: () => {} };
    assert.equal(queued.src, "/tiles/i/g/image_files/10/2_1.jpeg?t=one");
    token.value = "two"; // renewed while the download waited in OpenSeadragon's queue
    source.downloadTileStart(queued);
    await sleep(0);
    assert.deepEqual(started, ["/tiles/i/g/image_files/10/2_1.jpeg?t=two"]);
    assert.equal(source.getTileHashKey(10, 2, 1), "/tiles/i/g/image_files/10/2_1");
    token.stop();
  });
});
