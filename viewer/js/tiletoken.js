// Tile tokens of private images: every tile URL the viewer builds carries the current token
// (`t=...`), and the token is renewed (GET /v1/images/{id} again) well before it expires.

/*
 * The status response of a private image has links.token and links.token_expires_in (seconds);
 * links.dzi, channel dzi, pca and thumbnail already carry `?t=<token>`. Public images, and every
 * image of a server without API keys, have no token: URLs are left as they are.
 */

const MIN_DELAY_MS = 500;
const FRESH_MS = 1000; // a tile request goes out with at least this much of its token left
const REFUSED_RENEW_MS = 5000; // after a refused tile, renew at most this often

/** The token of an image that needs none (public, or a server without API keys). */
export const NO_TOKEN = {
  value: null,
  renewAfterRefusal: () => Promise.resolve(),
  sign: (url) => url,
  ready: () => Promise.resolve(),
  renew: () => Promise.resolve(),
};
const RETRY_MS = 2000;

/** `url` with its `t` query parameter set to `token` (or removed when there is none). */
export function withToken(url, token) {
  const [path, hash = ""] = url.split("#", 2);
  const [base, query = ""] = path.split("?", 2);
  const params = query.split("&").filter((p) => p && !p.startsWith("t="));
  if (token) params.push(`t=${encodeURIComponent(token)}`);
  return (params.length ? `${base}?${params.join("&")}` : base) + (hash ? `#${hash}` : "");
}

/** The current tile token of one image, kept fresh by `refresh(id)` (GET /v1/images/{id}). */
export class TileToken {
  constructor(image, refresh, { onRenew = () => {}, onError = () => {}, now = () => Date.now() } = {}) {
    Object.assign(this, { id: image.id, refresh, onRenew, onError, now });
    this.value = null;
    this.expiresAt = 0;
    this.timer = null;
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

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}

/** OpenSeadragon TileSource options for a Deep Zoom pyramid's geometry (from loadDzi). */
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

/**
 * An OpenSeadragon tile source for a Deep Zoom pyramid of `geometry` (mixsource.loadDzi) whose
 * tiles are fetched with the token current when each download starts: OpenSeadragon fixes a
 * tile's URL when it queues the download, which can be seconds before it runs (and again for a
 * retry), so downloadTileStart signs the URL afresh. The cache key leaves the token out.
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
