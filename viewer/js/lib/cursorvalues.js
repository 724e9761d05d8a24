// @ts-check
// The value under the cursor. At once: the pixel's position and an approximation from the tiles
// on screen (8-bit display codes, possibly of a coarser level), marked as one. When the cursor
// rests on a pixel: the exact native values read from the original (GET /v1/images/{id}/values).

import { getValues } from "./api.js";

export const REST_MS = 120; // a cursor that stays this long on one pixel asks for exact values
const CACHE_SIZE = 256; // exact answers kept, so moving back and forth asks once

/**
 * @typedef {{x: number, y: number}} Pixel
 * @typedef {{pixel: Pixel, values: Map<number, number>, exact: boolean, error?: string}} Reading
 */

/**
 * The full-resolution pixel that holds image coordinate `point`, or null outside the image.
 * @param {{x: number, y: number}} point
 * @param {number} width
 * @param {number} height
 * @returns {Pixel | null}
 */
export function pixelAt(point, width, height) {
  const x = Math.floor(point.x);
  const y = Math.floor(point.y);
  return x >= 0 && y >= 0 && x < width && y < height ? { x, y } : null;
}

/**
 * "x 1234 · y 567", plus the pixel's calibrated position (its corner, as ImageJ gives it) in the
 * file's unit when the pixel size is known: "x 1234 · y 567 (308.5, 141.75 µm)".
 * @param {Pixel} pixel
 * @param {any} [physicalSize] [sizeX, sizeY, unit] as in the image's status
 */
export function describePosition(pixel, physicalSize) {
  const text = `x ${pixel.x} · y ${pixel.y}`;
  const [sizeX, sizeY, unit] = physicalSize || [];
  if (!(sizeX > 0) || !(sizeY > 0) || typeof unit !== "string") return text;
  const length = (/** @type {number} */ n) => String(Number(n.toPrecision(6)));
  return `${text} (${length(pixel.x * sizeX)}, ${length(pixel.y * sizeY)} ${unit})`;
}

/** Follows the cursor over one image and reports readings to `show`. */
export class CursorValues {
  /**
   * @param {object} options
   * @param {{id: string, width: number, height: number}} options.image
   * @param {() => number[]} options.channels the channel indices to read (the visible ones)
   * @param {(x: number, y: number) => Map<number, number>} [options.approximate] values from tiles
   * @param {(reading: Reading | null) => void} options.show
   * @param {typeof getValues} [options.lookup]
   * @param {number} [options.restMs]
   */
  constructor({ image, channels, approximate = () => new Map(), show, lookup = getValues, restMs = REST_MS }) {
    this.image = image;
    this.channels = channels;
    this.approximate = approximate;
    this.show = show;
    this.lookup = lookup;
    this.restMs = restMs;
    /** @type {Pixel | null} */
    this.pixel = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** @type {AbortController | null} */
    this.inFlight = null;
    /** @type {Map<string, Map<number, number>>} */
    this.cache = new Map();
  }

  /**
   * The cursor is over image coordinate `point` (fractional, full-resolution pixels).
   * @param {{x: number, y: number}} point
   */
  move(point) {
    const pixel = pixelAt(point, this.image.width, this.image.height);
    if (!pixel) return this.leave();
    if (this.pixel && pixel.x === this.pixel.x && pixel.y === this.pixel.y) return;
    this.cancel();
    this.pixel = pixel;
    const channels = this.channels();
    const known = this.cache.get(cacheKey(pixel, channels));
    if (known) {
      this.show({ pixel, values: known, exact: true });
      return;
    }
    this.show({ pixel, values: this.approximate(point.x, point.y), exact: false });
    this.timer = setTimeout(() => this.readExact(pixel, channels), this.restMs);
  }

  /** The cursor left the image. */
  leave() {
    this.cancel();
    this.pixel = null;
    this.show(null);
  }

  /** Read the current pixel again (after the visible channels changed). */
  refresh() {
    const pixel = this.pixel;
    if (!pixel) return;
    this.pixel = null;
    this.move({ x: pixel.x + 0.5, y: pixel.y + 0.5 });
  }

  cancel() {
    clearTimeout(this.timer);
    this.inFlight?.abort();
    this.inFlight = null;
  }

  /**
   * @param {Pixel} pixel
   * @param {number[]} channels
   */
  async readExact(pixel, channels) {
    const controller = new AbortController();
    this.inFlight = controller;
    try {
      const answer = await this.lookup(this.image.id, pixel.x, pixel.y, channels, controller.signal);
      const values = new Map(answer.values.map((v) => [v.index, v.value]));
      this.cache.set(cacheKey(pixel, channels), values);
      if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value ?? "");
      if (this.inFlight === controller) this.show({ pixel, values, exact: true });
    } catch (err) {
      if (controller.signal.aborted || this.inFlight !== controller) return;
      const values = this.approximate(pixel.x + 0.5, pixel.y + 0.5);
      this.show({ pixel, values, exact: false, error: err instanceof Error ? err.message : String(err) });
    } finally {
      if (this.inFlight === controller) this.inFlight = null;
    }
  }
}

/**
 * @param {Pixel} pixel
 * @param {number[]} channels
 */
function cacheKey(pixel, channels) {
  return `${pixel.x},${pixel.y}:${channels.join(",")}`;
}

/**
 * Follow the pointer over `viewer` and show readings: the position (and, for RGB images, the
 * three values) in `readout`; `showChannels(reading)` shows a multi-channel image's values in its
 * panel. `readout.dataset` carries x, y and exact ("1" or "0") for tests and scripts.
 * @param {any} viewer OpenSeadragon viewer
 * @param {any} image the image's status
 * @param {HTMLElement} readout
 * @param {object} options
 * @param {() => number[]} options.channels
 * @param {(x: number, y: number) => Map<number, number>} [options.approximate]
 * @param {(reading: Reading | null) => void} [options.showChannels]
 */
export function attachCursorValues(viewer, image, readout, { channels, approximate, showChannels }) {
  const position = /** @type {HTMLElement} */ (readout.querySelector(".readout-position"));
  const values = /** @type {HTMLElement} */ (readout.querySelector(".readout-values"));
  const kind = /** @type {HTMLElement} */ (readout.querySelector(".readout-kind"));
  const rgb = !showChannels;
  const show = (/** @type {Reading | null} */ reading) => {
    showChannels?.(reading);
    readout.hidden = !reading;
    if (!reading) return;
    Object.assign(readout.dataset, { x: reading.pixel.x, y: reading.pixel.y, exact: reading.exact ? "1" : "0" });
    position.textContent = describePosition(reading.pixel, image.physical_size);
    if (rgb) {
      values.textContent = reading.exact
        ? ["R", "G", "B"].map((name, i) => `${name} ${reading.values.get(i) ?? "–"}`).join(" ")
        : "…";
    }
    kind.textContent = reading.error ? "approximate: exact values unavailable" : reading.exact ? "exact" : "≈ approximate";
    kind.title = reading.error || (reading.exact ? "Read from the original file" : "From the display tiles; the exact value follows when the cursor rests");
  };
  const cursor = new CursorValues({ image, channels, approximate, show });
  let pending = /** @type {PointerEvent | null} */ (null);
  viewer.element.addEventListener("pointermove", (/** @type {PointerEvent} */ event) => {
    if (!pending) {
      requestAnimationFrame(() => {
        if (!pending || !viewer.world.getItemCount()) return;
        const box = viewer.element.getBoundingClientRect();
        const at = new window.OpenSeadragon.Point(pending.clientX - box.left, pending.clientY - box.top);
        pending = null;
        cursor.move(viewer.viewport.viewerElementToImageCoordinates(at));
      });
    }
    pending = event;
  });
  viewer.element.addEventListener("pointerleave", () => {
    pending = null;
    cursor.leave();
  });
  return cursor;
}
