// @ts-check
// The per-tile compositor of the live channel mix: render settings -> tables -> every loaded tile
// drawn again from its channel codes (or the server's rendering), and who mixes: the browser or the
// server. The name says what it does to a tile; the tiles it draws come from channeltiles.js, and
// multichannel.js wires it to the page (where it is `window.plexzoom.mixer`).

/*
 * Browser mode mixes the visible channels' code tiles with render.js (renderInto), on load and on
 * every settings change, from codes already downloaded: a change only re-runs the tables and the
 * mix (OpenSeadragon's requestInvalidate -> 'tile-invalidated' -> setData), no network. A channel
 * made visible that a tile has not fetched yet is downloaded for that tile once, then kept.
 *
 * Server mode draws tiles rendered by the tile service (render_files/...png?c=...), fetched again
 * for each change. It is used when more than BROWSER_MAX_VISIBLE channels are visible. Measured
 * with bench/mixing.py (chromium, no GPU, 1920x1080, 54 tiles on screen; median from a slider
 * change to the next frame): browser mix 45 ms for 4 channels, 75 ms for 8, 105 ms for 16;
 * server mix of 16 channels ~940 ms. Eight is the most that stays well inside the 100 ms goal;
 * past it, mixing in the browser also costs one download per channel per tile and 64 KiB of
 * codes per channel per tile, where the server sends one tile.
 */

import { RECORD_TYPE, TileRecord, fetchCodes, fetchRendered } from "./channeltiles.js";
import { NO_TOKEN, tileAt, tilesBase } from "./deepzoom.js";
import { renderInto, settingsToQuery, visibleTables } from "./render.js";

export const BROWSER_MAX_VISIBLE = 8;

/** "browser" or "server": who mixes `settings` (`forced`, if one of the two, decides instead). */
export function mixModeOf(settings, forced = null) {
  if (forced === "browser" || forced === "server") return forced;
  const visible = settings.channels.filter((c) => c.visible !== false).length;
  return visible > BROWSER_MAX_VISIBLE ? "server" : "browser";
}

/** Draws every tile of the mix source under the current settings. */
export class Compositor {
  /**
   * @param {any} viewer OpenSeadragon viewer (tiles of the mix source drawn by this compositor)
   * @param {object} image GET /v1/images/{id} of a multi-channel image (channels with lut and dzi)
   * @param {object} geometry the channels' common DZI geometry (deepzoom.loadDzi)
   * @param {object} settings the render settings to start with
   * @param {object} options onWarn(message); forcedMode "browser" or "server" for comparisons;
   *   token: the tile token of a private image (deepzoom.TileToken)
   */
  constructor(viewer, image, geometry, settings, { onWarn = () => {}, forcedMode = null, token = NO_TOKEN } = {}) {
    this.viewer = viewer;
    this.geometry = geometry;
    this.settings = settings;
    this.onWarn = onWarn;
    this.forcedMode = forcedMode;
    this.token = token;
    this.luts = [];
    this.bases = new Map();
    for (const c of image.channels) {
      this.luts[c.index] = c.lut;
      this.bases.set(c.index, tilesBase(c.dzi));
    }
    this.renderBase = tilesBase(image.channels[0].dzi).replace(/[^/]+_files\/$/, "render_files/");
    this.records = new Map(); // "level/x_y" -> WeakRef(TileRecord), for values under the cursor
    this.images = new Map(); // "WxH" -> ImageData reused by every mix of that size
    this.stats = { draws: 0, downloads: 0, remixes: 0 }; // for tests and bench/mixing.py
    this.dirty = false;
    this.running = null;
    this.prepare();
    viewer.addHandler("tile-invalidated", (event) => this.onTileInvalidated(event));
  }

  /** The frame every tile is drawn with: mode, tables of the visible channels, query. */
  prepare() {
    this.frame = {
      mode: mixModeOf(this.settings, this.forcedMode),
      tables: visibleTables(this.settings, this.luts),
      query: settingsToQuery(this.settings),
    };
  }

  get mode() {
    return this.frame.mode;
  }

  /** Use new settings: every loaded tile is drawn again. The promise resolves once they are. */
  set(settings) {
    this.settings = settings;
    return this.remix();
  }

  /** Re-draw all loaded tiles; changes made meanwhile are coalesced into one more pass. */
  remix() {
    this.dirty = true;
    this.running ??= this.loop();
    return this.running;
  }

  async loop() {
    try {
      while (this.dirty) {
        this.dirty = false;
        this.prepare();
        this.stats.remixes += 1;
        await this.viewer.requestInvalidate(true);
      }
    } finally {
      this.running = null;
    }
  }

  /** Resolves when no re-draw is pending. */
  idle() {
    return this.running ?? Promise.resolve();
  }

  /** The tile source's loader: the codes it needs now (browser) or the rendered tile (server). */
  async load(level, x, y, signal) {
    const record = new TileRecord(level, x, y);
    this.records.set(`${level}/${x}_${y}`, new WeakRef(record));
    if (this.records.size > 4096) this.prune();
    await this.fetchFor(record, this.frame, signal);
    return record;
  }

  fetchFor(record, frame, signal) {
    if (frame.mode === "server") {
      this.stats.downloads += 1;
      return fetchRendered(record, frame.query, this.renderBase, signal, this.token);
    }
    const indexes = frame.tables.map(([index]) => index).filter((i) => !record.codes.has(i));
    this.stats.downloads += indexes.length;
    return indexes.length ? fetchCodes(record, indexes, this.bases, signal, this.token) : null;
  }

  prune() {
    for (const [key, ref] of this.records) if (!ref.deref()) this.records.delete(key);
  }

  /** OpenSeadragon asks for a tile's drawable data: on load and after requestInvalidate(). */
  async onTileInvalidated(event) {
    if (!event.tiledImage.source.load) return; // not a mix tile
    const record = await event.getData(RECORD_TYPE);
    if (!record?.codes || event.outdated()) {
      event.resetData();
      return;
    }
    const frame = this.frame;
    const needs = frame.mode === "server"
      ? record.rendered?.query !== frame.query
      : frame.tables.some(([index]) => !record.codes.has(index));
    if (needs) {
      try {
        await this.fetchFor(record, frame);
      } catch (err) {
        this.onWarn(`Tile ${record.level}/${record.x}_${record.y} could not be loaded (${err.message}).`);
      }
      if (event.outdated()) {
        event.resetData();
        return;
      }
    }
    await event.setData(this.draw(record, frame), "context2d");
  }

  /** A canvas context with `record` drawn under `frame`. */
  draw(record, frame) {
    this.stats.draws += 1;
    const canvas = document.createElement("canvas");
    Object.assign(canvas, { width: record.width || 1, height: record.height || 1 });
    const context = canvas.getContext("2d", { willReadFrequently: true });
    if (frame.mode === "server" && record.rendered) {
      context.drawImage(record.rendered.bitmap, 0, 0); // an older rendering if the new one failed
      return context;
    }
    if (frame.mode === "browser" && record.rendered) {
      record.rendered.bitmap.close(); // back in browser mode: free the server's tile
      record.rendered = null;
    }
    const shown = frame.tables.filter(([index]) => record.codes.has(index));
    const key = `${canvas.width}x${canvas.height}`;
    let pixels = this.images.get(key);
    if (!pixels) this.images.set(key, (pixels = new ImageData(canvas.width, canvas.height)));
    const codes = shown.map(([index]) => record.codes.get(index));
    if (codes.every((c) => c.length === canvas.width * canvas.height)) {
      renderInto(pixels.data, codes, shown.map(([, table]) => table), 1);
    } else {
      pixels.data.fill(0); // only when the tile's codes could not be downloaded
    }
    context.putImageData(pixels, 0, 0);
    return context;
  }

  /** Native value of each visible channel at full-image pixel (x, y), from the finest loaded codes. */
  valuesAt(x, y) {
    const values = new Map();
    const wanted = this.settings.channels.filter((c) => c.visible !== false).map((c) => c.index);
    for (let level = this.geometry.maxLevel; level >= 0 && values.size < wanted.length; level -= 1) {
      const spot = tileAt(this.geometry, level, x, y);
      if (!spot) return values;
      const record = this.records.get(`${level}/${spot.col}_${spot.row}`)?.deref();
      if (!record?.width) continue;
      const p = spot.top * record.width + spot.left;
      for (const index of wanted) {
        const codes = record.codes.get(index);
        if (!values.has(index) && codes && p < codes.length) {
          values.set(index, { value: this.luts[index][codes[p]], level });
        }
      }
    }
    return values;
  }
}
