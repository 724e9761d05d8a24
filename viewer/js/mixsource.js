// Tiles of the live channel mix: the OpenSeadragon tile source, and the tile records it loads
// (each channel's 8-bit codes, or the server's rendered tile), fetched from standard DZI URLs.

/*
 * DZI facts used here: {name}.dzi is <Image TileSize Overlap Format><Size Width Height/></Image>;
 * tile (col, row) of level L is {name}_files/L/col_row.{format}; level L is the image scaled by
 * 2^(L - maxLevel), maxLevel = ceil(log2(max(width, height))); a tile covers TileSize pixels plus
 * Overlap pixels on each side that has a neighbour. Channel pyramids are 8-bit grey PNGs whose
 * value is the channel's code; every channel of an image has the same geometry as c0.
 *
 * OpenSeadragon 6 API used: a subclass of OpenSeadragon.TileSource whose downloadTileStart hands
 * a TileRecord to job.finish(record, null, RECORD_TYPE). That custom data type is never drawn as
 * is: the viewer's 'tile-invalidated' handler (mixer.js) turns it into a "context2d" with
 * event.setData, on load and after every settings change (viewer.requestInvalidate()). The
 * record stays the tile's original cache data, so a re-mix needs no download.
 */

import { NO_TOKEN, tileSourceOptions } from "./tiletoken.js";

export const RECORD_TYPE = "plexzoom-tile";

/** One tile: the codes of the channels fetched so far and, in server mode, the rendered tile. */
export class TileRecord {
  constructor(level, x, y) {
    Object.assign(this, { level, x, y, width: 0, height: 0 });
    this.codes = new Map(); // channel index -> Uint8Array(width * height)
    this.pending = new Map(); // channel index -> Promise of a download in flight
    this.rendered = null; // {query, bitmap} of the server-rendered tile
  }

  getType() {
    return RECORD_TYPE;
  }
}

/** Geometry of a Deep Zoom descriptor: {width, height, tileSize, overlap, format, maxLevel}. */
export async function loadDzi(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`The channel pyramid ${url} answered HTTP ${response.status}.`);
  const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
  const image = xml.getElementsByTagName("Image")[0];
  const size = xml.getElementsByTagName("Size")[0];
  const geometry = {
    width: Number(size?.getAttribute("Width")),
    height: Number(size?.getAttribute("Height")),
    tileSize: Number(image?.getAttribute("TileSize")),
    overlap: Number(image?.getAttribute("Overlap")),
    format: image?.getAttribute("Format"),
  };
  if (!(geometry.width > 0 && geometry.height > 0 && geometry.tileSize > 0 && geometry.overlap >= 0)) {
    throw new Error(`The channel pyramid ${url} has no usable size.`);
  }
  geometry.maxLevel = Math.ceil(Math.log2(Math.max(geometry.width, geometry.height)));
  return geometry;
}

/** "https://h/tiles/id/gen/c3.dzi" -> "https://h/tiles/id/gen/c3_files/". */
export function tilesBase(dziUrl) {
  return dziUrl.replace(/\.dzi(\?.*)?$/, "_files/");
}

/** Where pixel (x, y) of the full image lies at `level`: {col, row, offset} or null (off the image). */
export function tileAt(geometry, level, x, y) {
  const scale = 2 ** (level - geometry.maxLevel);
  const px = Math.floor(x * scale);
  const py = Math.floor(y * scale);
  const width = Math.ceil(geometry.width * scale);
  const height = Math.ceil(geometry.height * scale);
  if (px < 0 || py < 0 || px >= width || py >= height) return null;
  const { tileSize, overlap } = geometry;
  const col = Math.floor(px / tileSize);
  const row = Math.floor(py / tileSize);
  const left = px - col * tileSize + (col > 0 ? overlap : 0);
  const top = py - row * tileSize + (row > 0 ? overlap : 0);
  return { col, row, left, top };
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
 * `token` (tiletoken.js) signs the URLs of a private image.
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
