// Unit tests of viewer/js/lib/deepzoom.js with node's test runner: DZI geometry, tile tokens (token in
// tile URLs, renewal), the signed DZI source and the Range tile source. Run: node --test tests/viewer/
// No browser and no npm packages: OpenSeadragon and fetch are stubbed, `refresh` is a stub, and
// renewal timers run on node's mock clock, so no test depends on how fast the machine is.

import assert from "node:assert/strict";
import { beforeEach, describe, mock, test } from "node:test";

import {
  TileToken,
  checkIndex,
  maxLevelOf,
  openRangeTileSource,
  rangeHeader,
  signedDziSource,
  tileAt,
  tileRange,
  tilesBase,
  withToken,
} from "../../viewer/js/lib/deepzoom.js";

describe("DZI geometry", () => {
  test("a descriptor's tiles live in its _files folder, query dropped", () => {
    assert.equal(tilesBase("https://h/tiles/id/gen/c3.dzi"), "https://h/tiles/id/gen/c3_files/");
    assert.equal(tilesBase("/tiles/id/gen/image.dzi?t=abc"), "/tiles/id/gen/image_files/");
  });

  test("tileAt finds a full-image pixel's tile and its place inside, overlap included", () => {
    const geometry = { width: 1000, height: 500, tileSize: 254, overlap: 1, format: "png", maxLevel: 10 };
    assert.deepEqual(tileAt(geometry, 10, 0, 0), { col: 0, row: 0, left: 0, top: 0 });
    assert.deepEqual(tileAt(geometry, 10, 300, 260), { col: 1, row: 1, left: 47, top: 7 });
    assert.deepEqual(tileAt(geometry, 9, 600, 20), { col: 1, row: 0, left: 47, top: 10 });
    assert.equal(tileAt(geometry, 10, 1000, 0), null);
    assert.equal(tileAt(geometry, 10, -1, 0), null);
  });
});

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

// --- The Range tile source (presigned mode) ---

const TILE = 254;

/** An index like plexzoom.core.pyramid.index_archive writes, with made-up byte ranges. */
function makeIndex(width, height) {
  const levels = [];
  let offset = 100;
  const max = maxLevelOf(width, height);
  for (let level = 0; level <= max; level += 1) {
    const w = Math.ceil(width / 2 ** (max - level));
    const h = Math.ceil(height / 2 ** (max - level));
    const cols = Math.ceil(w / TILE);
    const rows = Math.ceil(h / TILE);
    const offsets = [];
    const lengths = [];
    for (let i = 0; i < cols * rows; i += 1) {
      offsets.push(offset);
      lengths.push(10 + i);
      offset += 10 + i + 40;
    }
    levels.push({ cols, rows, offsets, lengths });
  }
  return { version: 1, format: "jpeg", tile_size: TILE, overlap: 1, width, height, levels };
}

/** Minimal stand-in of OpenSeadragon.TileSource: keeps options, knows tile counts. */
class FakeTileSource {
  constructor(options) {
    Object.assign(this, options);
  }

  tileExists(level, x, y) {
    const entry = this.index?.levels[level];
    return Boolean(entry) && x >= 0 && y >= 0 && x < entry.cols && y < entry.rows;
  }
}

/** A job like OpenSeadragon's ImageJob; resolves when finish() or fail() is called. */
function makeJob(level, x, y) {
  let settle;
  const done = new Promise((resolve) => {
    settle = resolve;
  });
  return {
    tile: { level, x, y },
    userData: {},
    finish: (data, request, dataType) => settle({ data, dataType }),
    fail: (message) => settle({ error: message }),
    done,
  };
}

describe("index math", () => {
  test("max level is ceil(log2(longest side))", () => {
    assert.equal(maxLevelOf(2000, 1500), 11);
    assert.equal(maxLevelOf(1024, 1), 10);
    assert.equal(maxLevelOf(1025, 1), 11);
    assert.equal(maxLevelOf(1, 1), 0);
  });

  test("tile (col, row) is entry row * cols + col", () => {
    const index = makeIndex(2000, 1500);
    const top = index.levels[11];
    assert.equal(top.cols, 8);
    assert.equal(top.rows, 6);
    const i = 2 * 8 + 3;
    assert.deepEqual(tileRange(index, 11, 3, 2), { start: top.offsets[i], end: top.offsets[i] + top.lengths[i] });
  });

  test("absent tiles have no range", () => {
    const index = makeIndex(2000, 1500);
    assert.equal(tileRange(index, 12, 0, 0), null);
    assert.equal(tileRange(index, 11, 8, 0), null);
    assert.equal(tileRange(index, 11, 0, 6), null);
    assert.equal(tileRange(index, 11, -1, 0), null);
    index.levels[11].lengths[0] = 0;
    assert.equal(tileRange(index, 11, 0, 0), null);
  });

  test("HTTP ranges are inclusive", () => {
    assert.equal(rangeHeader({ start: 100, end: 110 }), "bytes=100-109");
  });

  test("checkIndex accepts a good index and rejects broken ones", () => {
    assert.ok(checkIndex(makeIndex(300, 200)));
    assert.throws(() => checkIndex({ ...makeIndex(300, 200), version: 2 }), /version/);
    const short = makeIndex(300, 200);
    short.levels.pop();
    assert.throws(() => checkIndex(short), /levels/);
    const wrong = makeIndex(300, 200);
    wrong.levels[9].offsets.pop();
    assert.throws(() => checkIndex(wrong), /tile count/);
  });
});

describe("Range tile source", () => {
  const archive = new Uint8Array(20000).map((_, i) => i % 251);
  const index = makeIndex(2000, 1500);
  let requests;
  let mode;

  beforeEach(() => {
    requests = [];
    mode = "ok";
    globalThis.window = { location: { href: "http://viewer.test/view.html?id=x" } };
    globalThis.fetch = async (url, options = {}) => {
      requests.push({ url, range: options.headers?.Range, credentials: options.credentials });
      if (url.includes("index.json")) return new Response(JSON.stringify(index), { status: 200 });
      if (url.includes("sig=old") && mode === "expire") return new Response("expired", { status: 403 });
      if (mode === "ignore-range") return new Response(archive, { status: 200 });
      const [, a, b] = /bytes=(\d+)-(\d+)/.exec(options.headers.Range);
      return new Response(archive.slice(Number(a), Number(b) + 1), { status: 206 });
    };
  });

  async function open(renewUrl = null) {
    return openRangeTileSource(
      { archive: "https://s3.test/b/image.zip?sig=old", index: "https://s3.test/b/image.index.json?sig=1" },
      { renewUrl, OSD: { TileSource: FakeTileSource } },
    );
  }

  test("is configured from the index", async () => {
    const source = await open();
    assert.equal(source.width, 2000);
    assert.equal(source.height, 1500);
    assert.equal(source.tileSize, TILE);
    assert.equal(source.tileOverlap, 1);
    assert.equal(source.maxLevel, 11);
    assert.equal(requests[0].credentials, "omit");
  });

  test("every tile has its own cache key and Range header, on the archive URL", async () => {
    const source = await open();
    const keys = new Set();
    for (let y = 0; y < 6; y += 1) for (let x = 0; x < 8; x += 1) keys.add(source.getTileHashKey(11, x, y));
    assert.equal(keys.size, 48);
    const range = tileRange(index, 11, 1, 1);
    assert.equal(source.getTileHashKey(11, 1, 1), `https://s3.test/b/image.zip#${range.start}-${range.end}`);
    assert.deepEqual(source.getTileAjaxHeaders(11, 1, 1), { Range: rangeHeader(range) });
    assert.equal(source.getTileUrl(11, 1, 1), "https://s3.test/b/image.zip?sig=old");
  });

  test("downloads a tile's bytes with one ranged request, as an image blob", async () => {
    const source = await open();
    const job = makeJob(11, 3, 2);
    source.downloadTileStart(job);
    const { data, dataType } = await job.done;
    assert.equal(dataType, "rasterBlob");
    assert.equal(data.type, "image/jpeg");
    const range = tileRange(index, 11, 3, 2);
    assert.deepEqual(new Uint8Array(await data.arrayBuffer()), archive.slice(range.start, range.end));
    assert.equal(requests.at(-1).range, rangeHeader(range));
    assert.equal(requests.at(-1).credentials, "omit");
  });

  test("fails clearly when the server ignores Range", async () => {
    const source = await open();
    mode = "ignore-range";
    const job = makeJob(11, 0, 0);
    source.downloadTileStart(job);
    assert.match((await job.done).error, /ignored the Range header/);
  });

  test("renews an expired presigned URL once and retries", async () => {
    let renewals = 0;
    const source = await open(async () => {
      renewals += 1;
      return "https://s3.test/b/image.zip?sig=new";
    });
    mode = "expire";
    const jobs = [makeJob(11, 0, 0), makeJob(11, 1, 0), makeJob(11, 2, 0)];
    for (const job of jobs) source.downloadTileStart(job);
    const results = await Promise.all(jobs.map((job) => job.done));
    assert.ok(results.every((r) => r.dataType === "rasterBlob"), JSON.stringify(results.map((r) => r.error)));
    assert.equal(renewals, 1);
    assert.equal(source.getTileUrl(11, 0, 0), "https://s3.test/b/image.zip?sig=new");
  });
});
