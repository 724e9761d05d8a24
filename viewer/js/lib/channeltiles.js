// @ts-check
// Channel tiles of the live mix: a TileRecord per tile with each channel's 8-bit codes (or, in
// server mode, the server's rendered tile), their downloads from the channels' DZI URLs, and the
// OpenSeadragon tile source that hands the records on. The name says what it holds: mixing the
// records is compositor.js, wiring the multi-channel page is multichannel.js.

/*
 * Channel pyramids are 8-bit grey PNGs whose value is the channel's code; every channel of an
 * image has the same geometry as c0 (deepzoom.js: loadDzi, and the DZI naming of tiles).
 *
 * OpenSeadragon 6 API used: a subclass of OpenSeadragon.TileSource whose downloadTileStart hands
 * a TileRecord to job.finish(record, null, RECORD_TYPE). That custom data type is never drawn as
 * is: the viewer's 'tile-invalidated' handler (compositor.js) turns it into a "context2d" with
 * event.setData, on load and after every settings change (viewer.requestInvalidate()). The
 * record stays the tile's original cache data, so a re-mix needs no download.
 */

import { NO_TOKEN, tileSourceOptions } from "./deepzoom.js";

export const RECORD_TYPE = "plexzoom-tile";

/** One tile: the codes of the channels fetched so far and, in server mode, the rendered tile. */
export class TileRecord {
  constructor(level, x, y) {
    this.level = level;
    this.x = x;
    this.y = y;
    this.width = 0;
    this.height = 0;
    this.codes = new Map(); // channel index -> Uint8Array(width * height)
    this.pending = new Map(); // channel index -> Promise of a download in flight
    this.rendered = null; // {query, bitmap} of the server-rendered tile
  }

  getType() {
    return RECORD_TYPE;
  }
}

let scratch = null; // one canvas to read decoded pixels back; decoding is synchronous after the bitmap

/** The codes of a grey PNG tile: its first (R) component, one byte a pixel. */
export async function decodeCodes(blob) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const { width, height } = bitmap;
  scratch ??= new OffscreenCanvas(width, height).getContext("2d", { willReadFrequently: true });
  if (scratch.canvas.width !== width || scratch.canvas.height !== height) {
    Object.assign(scratch.canvas, { width, height });
  }
  scratch.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = scratch.getImageData(0, 0, width, height).data;
  const codes = new Uint8Array(width * height);
  for (let p = 0, q = 0; p < codes.length; p += 1, q += 4) codes[p] = rgba[q];
  return { codes, width, height };
}

/** A tile's bytes, with the current tile token; a refused token is renewed and tried once more. */
async function fetchBlob(url, signal, token) {
  await token.ready();
  const used = token.value;
  let response = await fetch(token.sign(url), { credentials: "same-origin", signal });
  if ((response.status === 401 || response.status === 403) && used) {
    response.body?.cancel().catch(() => {});
    if (token.value === used) await token.renewAfterRefusal(); // else another tile renewed it
    response = await fetch(token.sign(url), { credentials: "same-origin", signal });
  }
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${new URL(url, window.location.href).pathname}`);
  return response.blob();
}

/**
 * Download the codes of `indexes` that `record` lacks (bases: channel index -> tilesBase);
 * `token` (deepzoom.TileToken) signs the URLs of a private image.
 */
export function fetchCodes(record, indexes, bases, signal, token = NO_TOKEN) {
  const { level, x, y } = record;
  return Promise.all(indexes.map((index) => {
    if (record.codes.has(index)) return null;
    if (!record.pending.has(index)) {
      const url = `${bases.get(index)}${level}/${x}_${y}.png`;
      const download = fetchBlob(url, signal, token).then(decodeCodes).then((tile) => {
        Object.assign(record, { width: tile.width, height: tile.height });
        record.codes.set(index, tile.codes);
      }).finally(() => record.pending.delete(index));
      record.pending.set(index, download);
    }
    return record.pending.get(index);
  }));
}

/** Download the server's rendering of `record` under `query` ("c=..."); renderBase ends in "render_files/". */
export async function fetchRendered(record, query, renderBase, signal, token = NO_TOKEN) {
  if (record.rendered?.query === query) return;
  const { level, x, y } = record;
  const blob = await fetchBlob(`${renderBase}${level}/${x}_${y}.png?${query}`, signal, token);
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  record.rendered?.bitmap.close();
  record.rendered = { query, bitmap };
  Object.assign(record, { width: bitmap.width, height: bitmap.height });
}

let MixSource = null;

/** The tile source class, defined once OpenSeadragon (a classic script, global) is loaded. */
function mixSourceClass(OSD) {
  MixSource ??= class extends OSD.TileSource {
    /** @param {object} geometry from loadDzi; @param {(level, x, y, signal) => Promise<TileRecord>} load */
    constructor(geometry, key, load) {
      super(tileSourceOptions(geometry));
      Object.assign(this, { geometry, key, load });
    }

    supports() {
      return false; // built explicitly, never picked by OpenSeadragon's type sniffing
    }

    getTileUrl(level, x, y) {
      return `${this.key}/${level}/${x}_${y}`; // a name, never fetched by OpenSeadragon itself
    }

    getTileHashKey(level, x, y) {
      return this.getTileUrl(level, x, y);
    }

    hasTransparency() {
      return false;
    }

    equals(other) {
      return other === this;
    }

    downloadTileStart(job) {
      const { level, x, y } = job.tile;
      const controller = new AbortController();
      job.userData.controller = controller;
      this.load(level, x, y, controller.signal).then(
        (record) => job.finish(record, null, RECORD_TYPE),
        (err) => {
          if (err.name !== "AbortError") job.fail(`Tile ${level}/${x}_${y}: ${err.message}`, null);
        },
      );
    }

    downloadTileAbort(job) {
      job.userData.controller?.abort();
    }
  };
  return MixSource;
}

/** A tile source of the image's geometry whose tiles come from `load(level, x, y, signal)`. */
export function createMixSource(geometry, key, load, OSD = window.OpenSeadragon) {
  // Records are shared, never copied: a copy would lose the point of keeping the codes.
  OSD.converter.learn(RECORD_TYPE, RECORD_TYPE, (tile, record) => record, 0, 1);
  const Source = mixSourceClass(OSD);
  return new Source(geometry, key, load);
}
