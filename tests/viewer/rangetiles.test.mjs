// Unit tests of viewer/js/rangetiles.js (index math and the Range tile source) with node's test runner.
// Run: node --test tests/viewer/   (no browser, no npm packages: OpenSeadragon and fetch are stubbed)

import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import {
  checkIndex,
  maxLevelOf,
  openRangeTileSource,
  rangeHeader,
  tileRange,
} from "../../viewer/js/rangetiles.js";

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
