// OpenSeadragon tile source that reads Deep Zoom tiles out of one zip archive with HTTP Range requests (presigned mode).

/*
 * The archive holds the tiles uncompressed, so every tile is one contiguous byte range. The index
 * JSON says where: {"version":1, "format":"jpeg", "tile_size":254, "overlap":1, "width":W,
 * "height":H, "levels":[{"cols":c, "rows":r, "offsets":[...], "lengths":[...]}, ...]} where
 * levels[L] is Deep Zoom level L (0 = 1x1 px, last = full size) and tile (col, row) is entry
 * row * cols + col: bytes [offset, offset + length) of the archive.
 *
 * OpenSeadragon 6 API used: a subclass of OpenSeadragon.TileSource overriding getTileUrl (the
 * archive), getTileAjaxHeaders (the Range header), getTileHashKey (archive path + byte range, so
 * the tile cache never confuses two tiles of the same URL), tileExists, and downloadTileStart /
 * downloadTileAbort, which fetch() the range (cross-origin, no credentials) and hand the bytes to
 * OpenSeadragon as a "rasterBlob" that it decodes and draws itself.
 */

const MEDIA_TYPES = { jpeg: "image/jpeg", jpg: "image/jpeg", png: "image/png", webp: "image/webp" };

/** Deep Zoom max level of an image: ceil(log2(max(width, height))). */
export function maxLevelOf(width, height) {
  return Math.ceil(Math.log2(Math.max(width, height, 1)));
}

/** `{start, end}` (end exclusive) of tile (col, row) of `level` in the archive, or null if absent. */
export function tileRange(index, level, col, row) {
  const entry = index.levels[level];
  if (!entry || col < 0 || row < 0 || col >= entry.cols || row >= entry.rows) return null;
  const i = row * entry.cols + col;
  const length = entry.lengths[i];
  if (!length) return null;
  return { start: entry.offsets[i], end: entry.offsets[i] + length };
}

/** The HTTP Range header value of a byte range (HTTP ranges are inclusive). */
export function rangeHeader(range) {
  return `bytes=${range.start}-${range.end - 1}`;
}

/** Throw a readable error unless `index` has the shape this viewer understands. */
export function checkIndex(index) {
  const fail = (why) => {
    throw new Error(`The pyramid's tile index is not usable: ${why}.`);
  };
  if (!index || index.version !== 1) fail(`version ${index?.version} is not 1`);
  if (!(index.width > 0 && index.height > 0 && index.tile_size > 0)) fail("no image or tile size");
  if (!Array.isArray(index.levels) || index.levels.length !== maxLevelOf(index.width, index.height) + 1) {
    fail("its levels do not match the image size");
  }
  for (const level of index.levels) {
    const count = level.cols * level.rows;
    if (level.offsets?.length !== count || level.lengths?.length !== count) fail("a level has the wrong tile count");
  }
  return index;
}

/** The archive URL without its query (presigned signatures change; the object does not). */
function stableKey(url) {
  const parsed = new URL(url, window.location.href);
  return parsed.origin + parsed.pathname;
}

let RangeTileSource = null;

/** Define the subclass once OpenSeadragon (a classic script, global) is loaded. */
function rangeTileSourceClass(OSD) {
  if (RangeTileSource) return RangeTileSource;
  RangeTileSource = class extends OSD.TileSource {
    /**
     * @param {string} archiveUrl presigned URL of the zip
     * @param {object} index parsed index JSON
     * @param {() => Promise<string>} [renewUrl] gives a fresh archive URL when the old one expired
     */
    constructor(archiveUrl, index, renewUrl = null) {
      super({
        width: index.width,
        height: index.height,
        tileSize: index.tile_size,
        tileOverlap: index.overlap,
        minLevel: 0,
        maxLevel: index.levels.length - 1,
        ready: true,
      });
      this.archiveUrl = archiveUrl;
      this.index = index;
      this.mediaType = MEDIA_TYPES[index.format] || "application/octet-stream";
      this.cacheKey = stableKey(archiveUrl);
      this.renewUrl = renewUrl;
      this.renewing = null;
    }

    supports() {
      return false; // only built explicitly, never picked by OpenSeadragon's type sniffing
    }

    getTileUrl() {
      return this.archiveUrl;
    }

    getTileAjaxHeaders(level, x, y) {
      const range = tileRange(this.index, level, x, y);
      return range ? { Range: rangeHeader(range) } : {};
    }

    getTileHashKey(level, x, y) {
      const range = tileRange(this.index, level, x, y);
      return range ? `${this.cacheKey}#${range.start}-${range.end}` : `${this.cacheKey}#${level}/${x}_${y}`;
    }

    tileExists(level, x, y) {
      return super.tileExists(level, x, y) && tileRange(this.index, level, x, y) !== null;
    }

    hasTransparency() {
      return this.index.format === "png";
    }

    equals(other) {
      return other instanceof RangeTileSource && other.cacheKey === this.cacheKey;
    }

    downloadTileStart(job) {
      const { level, x, y } = job.tile;
      const range = tileRange(this.index, level, x, y);
      if (!range) {
        job.fail(`Tile ${level}/${x}_${y} is not in the pyramid index.`, null);
        return;
      }
      const controller = new AbortController();
      job.userData.controller = controller;
      this.fetchTile(range, controller.signal).then(
        (blob) => job.finish(blob, null, "rasterBlob"),
        (err) => {
          if (err.name !== "AbortError") job.fail(`Tile ${level}/${x}_${y}: ${err.message}`, null);
        },
      );
    }

    downloadTileAbort(job) {
      job.userData.controller?.abort();
    }

    /** The tile's bytes as an image Blob; renews an expired presigned URL once. */
    async fetchTile(range, signal) {
      const url = this.archiveUrl;
      let response = await this.fetchRange(url, range, signal);
      if ((response.status === 403 || response.status === 401) && this.renewUrl) {
        if (this.archiveUrl === url) await this.renewArchiveUrl(); // else another tile renewed it
        response = await this.fetchRange(this.archiveUrl, range, signal);
      }
      if (response.status === 200) {
        discardBody(response);
        throw new Error("the storage server ignored the Range header (answered 200, not 206)");
      }
      if (response.status !== 206) throw new Error(`the storage server answered HTTP ${response.status}`);
      const blob = await response.blob();
      if (blob.size !== range.end - range.start) {
        throw new Error(`expected ${range.end - range.start} bytes, got ${blob.size}`);
      }
      return blob.slice(0, blob.size, this.mediaType);
    }

    fetchRange(url, range, signal) {
      return fetch(url, {
        headers: { Range: rangeHeader(range) },
        mode: "cors",
        credentials: "omit",
        signal,
      });
    }

    /** Ask for a fresh archive URL; concurrent tiles share one renewal. */
    renewArchiveUrl() {
      this.renewing ??= this.renewUrl()
        .then((url) => {
          if (url) this.archiveUrl = url;
        })
        .finally(() => {
          this.renewing = null;
        });
      return this.renewing;
    }
  };
  return RangeTileSource;
}

/** Stop downloading a body we will not use (the whole archive, when Range was ignored). */
function discardBody(response) {
  response.body?.cancel().catch(() => {});
}

/** Fetch and check the index JSON (a presigned URL on the storage server: no credentials). */
export async function loadTileIndex(indexUrl, { signal } = {}) {
  let response;
  try {
    response = await fetch(indexUrl, { mode: "cors", credentials: "omit", signal });
  } catch (err) {
    throw new Error(`The pyramid's tile index could not be fetched (${err.message}). ` +
      "The storage server may be unreachable or not allow this site (CORS).");
  }
  if (!response.ok) throw new Error(`The pyramid's tile index could not be fetched: HTTP ${response.status}.`);
  return checkIndex(await response.json());
}

/**
 * Build the tile source of `pyramid = {archive, index}` (presigned URLs). `renewUrl`, if given,
 * returns a fresh archive URL; it is called when the storage server refuses an expired one.
 */
export async function openRangeTileSource(pyramid, { renewUrl = null, OSD = window.OpenSeadragon } = {}) {
  const index = await loadTileIndex(pyramid.index);
  const Source = rangeTileSourceClass(OSD);
  return new Source(pyramid.archive, index, renewUrl);
}
