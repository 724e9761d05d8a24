// @ts-check
// Deep Zoom pyramids in the browser, in one place: a descriptor's geometry and tile addresses, the
// tile tokens that sign tile URLs of private images, the OpenSeadragon tile source of a signed
// pyramid, and the one that reads a pyramid out of a zip archive with HTTP Range requests.

/*
 * DZI facts: {name}.dzi is <Image TileSize Overlap Format><Size Width Height/></Image>; tile
 * (col, row) of level L is {name}_files/L/col_row.{format}; level L is the image scaled by
 * 2^(L - maxLevel), maxLevel = ceil(log2(max(width, height))); a tile covers TileSize pixels plus
 * Overlap pixels on each side that has a neighbour.
 *
 * Tile tokens: the status response of a private image has links.token and links.token_expires_in
 * (seconds); links.dzi, channel dzi, pca and thumbnail already carry `?t=<token>`. Public images,
 * and every image of a server without API keys, have no token: URLs are left as they are.
 *
 * Range archive (presigned mode): the zip holds the tiles uncompressed, so every tile is one
 * contiguous byte range. The index JSON says where: {"version":1, "format":"jpeg",
 * "tile_size":254, "overlap":1, "width":W, "height":H, "levels":[{"cols":c, "rows":r,
 * "offsets":[...], "lengths":[...]}, ...]} where levels[L] is Deep Zoom level L (0 = 1x1 px, last =
 * full size) and tile (col, row) is entry row * cols + col: bytes [offset, offset + length).
 *
 * OpenSeadragon 6 API used by the Range source: a subclass of OpenSeadragon.TileSource overriding
 * getTileUrl (the archive), getTileAjaxHeaders (the Range header), getTileHashKey (archive path +
 * byte range, so the tile cache never confuses two tiles of the same URL), tileExists, and
 * downloadTileStart / downloadTileAbort, which fetch() the range (cross-origin, no credentials) and
 * hand the bytes to OpenSeadragon as a "rasterBlob" that it decodes and draws itself.
 */

/**
 * @typedef {object} DziGeometry a Deep Zoom pyramid's shape (loadDzi)
 * @property {number} width
 * @property {number} height
 * @property {number} tileSize
 * @property {number} overlap
 * @property {string} format tile file ending, e.g. "jpeg" or "png"
 * @property {number} maxLevel
 */

/**
 * What tile downloads need of a token: a TileToken, or NO_TOKEN for an image that needs none.
 * @typedef {object} Token
 * @property {string | null} value
 * @property {(url: string) => string} sign
 * @property {() => Promise<void>} ready
 * @property {() => Promise<void>} renew
 * @property {() => Promise<void> | null} renewAfterRefusal
 */

/**
 * The Range archive's tile index (see above).
 * @typedef {{version: number, format: string, tile_size: number, overlap: number, width: number,
 *   height: number, levels: {cols: number, rows: number, offsets: number[], lengths: number[]}[]}} TileIndex
 */

// --- Geometry and tile addresses ---

/** Deep Zoom max level of an image: ceil(log2(max(width, height))). */
export function maxLevelOf(width, height) {
  return Math.ceil(Math.log2(Math.max(width, height, 1)));
}

/**
 * Geometry of a Deep Zoom descriptor: {width, height, tileSize, overlap, format, maxLevel}.
 * @param {string} url
 * @returns {Promise<DziGeometry>}
 */
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
    maxLevel: 0,
  };
  if (!(geometry.width > 0 && geometry.height > 0 && geometry.tileSize > 0 && geometry.overlap >= 0)) {
    throw new Error(`The channel pyramid ${url} has no usable size.`);
  }
  geometry.maxLevel = maxLevelOf(geometry.width, geometry.height);
  return geometry;
}

/** "https://h/tiles/id/gen/c3.dzi" -> "https://h/tiles/id/gen/c3_files/". */
export function tilesBase(dziUrl) {
  return dziUrl.replace(/\.dzi(\?.*)?$/, "_files/");
}

/**
 * Where pixel (x, y) of the full image lies at `level`: {col, row, left, top} or null (off the image).
 * @param {DziGeometry} geometry
 */
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

/**
 * OpenSeadragon TileSource options for a Deep Zoom pyramid's geometry (from loadDzi).
 * @param {Omit<DziGeometry, "format">} geometry
 */
export function tileSourceOptions(geometry) {
  return {
    width: geometry.width,
    height: geometry.height,
    tileSize: geometry.tileSize,
    tileOverlap: geometry.overlap,
    minLevel: 0,
    maxLevel: geometry.maxLevel,
    ready: true,
  };
}

// --- Tile tokens of private images: every tile URL carries the current token (`t=...`), renewed
// (GET /v1/images/{id} again) well before it expires ---

const MIN_DELAY_MS = 500;
const FRESH_MS = 1000; // a tile request goes out with at least this much of its token left
const REFUSED_RENEW_MS = 5000; // after a refused tile, renew at most this often
const RETRY_MS = 2000;

/**
 * The token of an image that needs none (public, or a server without API keys).
 * @type {Token}
 */
export const NO_TOKEN = {
  value: null,
  renewAfterRefusal: () => Promise.resolve(),
  sign: (url) => url,
  ready: () => Promise.resolve(),
  renew: () => Promise.resolve(),
};

/**
 * `url` with its `t` query parameter set to `token` (or removed when there is none).
 * @param {string} url
 * @param {string | null} token
 */
export function withToken(url, token) {
  const [path, hash = ""] = url.split("#", 2);
  const [base, query = ""] = path.split("?", 2);
  const params = query.split("&").filter((p) => p && !p.startsWith("t="));
  if (token) params.push(`t=${encodeURIComponent(token)}`);
  return (params.length ? `${base}?${params.join("&")}` : base) + (hash ? `#${hash}` : "");
}

/**
 * The current tile token of one image, kept fresh by `refresh(id)` (GET /v1/images/{id}).
 * @implements {Token}
 */
export class TileToken {
  /**
   * @param {{id: string, links?: object}} image the image's status response
   * @param {(id: string) => Promise<any>} refresh gives a fresh status response
   * @param {{onRenew?: (image: any) => void, onError?: (err: Error) => void, now?: () => number}} [hooks]
   */
  constructor(image, refresh, { onRenew = () => {}, onError = () => {}, now = () => Date.now() } = {}) {
    this.id = image.id;
    this.refresh = refresh;
    this.onRenew = onRenew;
    this.onError = onError;
    this.now = now;
    /** @type {string | null} */
    this.value = null;
    this.expiresAt = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    /** @type {Promise<void> | null} */
    this.renewing = null;
    this.renewals = 0; // for tests
    this.renewedAt = now();
    this.update(image);
  }

  /** `url` with the current token (unchanged for public images). */
  sign(url) {
    return withToken(url, this.value);
  }

  /** Take the token of a fresh status response and plan the next renewal at a third of its
   * life (a busy server may take a while to answer, and queued tiles still use the old one). */
  update(image) {
    const links = image.links || {};
    this.value = links.token || null;
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.value || links.token_expires_in == null) return;
    const lifeMs = links.token_expires_in * 1000;
    this.expiresAt = this.now() + lifeMs;
    this.timer = setTimeout(() => this.renew(), Math.max(MIN_DELAY_MS, lifeMs / 3));
  }

  /** Resolves when the token has at least FRESH_MS left, renewing it first if it has not (a
   * renewal that is late on a busy server or in a background tab). */
  ready() {
    if (!this.value || this.expiresAt - this.now() > FRESH_MS) return Promise.resolve();
    return this.renew();
  }

  /** Fetch a new token now (concurrent callers share one request); retried on failure. */
  renew() {
    this.renewing ??= this.refresh(this.id)
      .then((image) => {
        this.renewals += 1;
        this.renewedAt = this.now();
        this.update(image);
        this.onRenew(image);
      })
      .catch((err) => {
        this.onError(err);
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.renew(), RETRY_MS);
      })
      .finally(() => {
        this.renewing = null;
      });
    return this.renewing;
  }

  /** Renew at once if the token has (nearly) run out: a tab woken from the background, whose
   * timers the browser slowed down. */
  renewIfStale() {
    if (!this.value) return null;
    const nearlyOut = this.expiresAt - this.now() < MIN_DELAY_MS;
    return nearlyOut || !this.timer ? this.renew() : null;
  }

  /** A tile was refused: renew now if the token is nearly out, or if the last renewal is a
   * while ago (a server restarted with another secret refuses tokens that have not expired). */
  renewAfterRefusal() {
    if (!this.value) return null;
    if (this.now() - this.renewedAt > REFUSED_RENEW_MS) return this.renew();
    return this.renewIfStale();
  }

  /** Stop renewing. */
  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * An OpenSeadragon tile source for a Deep Zoom pyramid of `geometry` (loadDzi) whose tiles are
 * fetched with the token current when each download starts: OpenSeadragon fixes a tile's URL when
 * it queues the download, which can be seconds before it runs (and again for a retry), so
 * downloadTileStart signs the URL afresh. The cache key leaves the token out.
 * @param {DziGeometry} geometry
 * @param {string} tilesBaseUrl the pyramid's tilesBase
 * @param {Token} token
 */
export function signedDziSource(geometry, tilesBaseUrl, token, OSD = globalThis.OpenSeadragon) {
  const base = tilesBaseUrl.split("?")[0];
  const source = new OSD.TileSource(tileSourceOptions(geometry));
  const download = source.downloadTileStart;
  Object.assign(source, {
    getTileUrl: (level, x, y) => token.sign(`${base}${level}/${x}_${y}.${geometry.format}`),
    getTileHashKey: (level, x, y) => `${base}${level}/${x}_${y}`,
    downloadTileStart(job) {
      const fail = job.fail;
      job.fail = (...args) => {
        token.renewAfterRefusal(); // OpenSeadragon's retry then goes out with a fresh token
        return fail.apply(job, args);
      };
      token.ready().then(() => {
        job.src = token.sign(job.src);
        download.call(this, job);
      });
    },
  });
  return source;
}

// --- A pyramid read out of one zip archive with HTTP Range requests (presigned mode) ---

const MEDIA_TYPES = { jpeg: "image/jpeg", jpg: "image/jpeg", png: "image/png", webp: "image/webp" };

/**
 * `{start, end}` (end exclusive) of tile (col, row) of `level` in the archive, or null if absent.
 * @param {TileIndex} index
 */
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

/**
 * Throw a readable error unless `index` has the shape this viewer understands.
 * @returns {TileIndex}
 */
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

/** Stop downloading a body we will not use (the whole archive, when Range was ignored). */
function discardBody(response) {
  response.body?.cancel().catch(() => {});
}

let RangeTileSource = null;

/** Define the subclass once OpenSeadragon (a classic script, global) is loaded. */
function rangeTileSourceClass(OSD) {
  if (RangeTileSource) return RangeTileSource;
  RangeTileSource = class extends OSD.TileSource {
    /**
     * @param {string} archiveUrl presigned URL of the zip
     * @param {TileIndex} index parsed index JSON
     * @param {(() => Promise<string>) | null} [renewUrl] gives a fresh archive URL when the old one expired
     */
    constructor(archiveUrl, index, renewUrl = null) {
      super(tileSourceOptions({
        width: index.width,
        height: index.height,
        tileSize: index.tile_size,
        overlap: index.overlap,
        maxLevel: index.levels.length - 1,
      }));
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

/**
 * Fetch and check the index JSON (a presigned URL on the storage server: no credentials).
 * @param {string} indexUrl
 * @param {{signal?: AbortSignal}} [options]
 */
export async function loadTileIndex(indexUrl, { signal } = {}) {
  let response;
  try {
    response = await fetch(indexUrl, { mode: "cors", credentials: "omit", signal });
  } catch (err) {
    throw new Error(`The pyramid's tile index could not be fetched (${err.message}). ` +
      "The storage server may be unreachable or not allow this site (CORS).", { cause: err });
  }
  if (!response.ok) throw new Error(`The pyramid's tile index could not be fetched: HTTP ${response.status}.`);
  return checkIndex(await response.json());
}

/**
 * Build the tile source of `pyramid = {archive, index}` (presigned URLs). `renewUrl`, if given,
 * returns a fresh archive URL; it is called when the storage server refuses an expired one.
 * @param {{archive: string, index: string}} pyramid
 * @param {{renewUrl?: (() => Promise<string>) | null, OSD?: any}} [options]
 */
export async function openRangeTileSource(pyramid, { renewUrl = null, OSD = window.OpenSeadragon } = {}) {
  const index = await loadTileIndex(pyramid.index);
  const Source = rangeTileSourceClass(OSD);
  return new Source(pyramid.archive, index, renewUrl);
}
