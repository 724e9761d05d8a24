// @ts-check
// The one render model of multi-channel images; services/core/render.py is its twin, line for line
// (their constants: tests/viewer/test_render_constants.py; what they compute: test_render_agreement.py).

/*
 * A channel pyramid stores an 8-bit code per pixel and the manifest a `lut`: 256 native values,
 * code k standing for lut[k]. For each visible channel:
 *
 *   v  = lut[code]                                 native units (e.g. uint16 counts)
 *   t  = clamp((v - min) / (max - min), 0, 1)      if max <= min: t = 1 if v >= max else 0
 *   t' = t ** (1 / gamma)                          gamma > 1 brightens dim values
 *   contribution = t' * colour                     colour components in 0..255
 *
 * The contributions of the visible channels are added in list order, clamped to 255 and rounded
 * half up (Math.round). A contribution depends only on the code, so each channel becomes a table
 * of 256 x 3 float32 values (computed in double precision, stored as float32, interleaved r, g, b)
 * and rendering is lookups and sums. Sums are kept in double precision, as in Python, so both give
 * the same bytes; tests/viewer/test_render_agreement.py checks it in chromium.
 *
 * Query encoding (server-rendered tile URLs and the viewer's shareable URL), visible channels
 * only: c=0:ff00ff:120:3400:1,2:00ff00:0:255:0.8 is index:colour:min:max:gamma (gamma optional).
 * Numbers are written as String(x) writes them, without the '+' of exponents.
 *
 * Speed of renderInto on this machine (2-core AMD EPYC VM), 1920 x 1080 RGBA viewport, codes read
 * from RGBA tiles (stride 4), median ms for 1 / 2 / 3 / 4 / 8 / 16 channels:
 *   chromium (headless, in page):  10 / 15 / 14 / 16.5 / 29 / 55
 *   node 20 (`PLEXZOOM_RENDER_BENCH=1 node --test tests/viewer/render.test.mjs`):
 *                                  8.5 / 12.6 / 16.3 / 20.2 / 36 / 67
 * About 3.5-4 ms a channel plus 5 ms to write the output: within one 60 fps frame (16.7 ms) up to
 * four channels can be re-mixed over a full-HD viewport; eight run at ~35 fps, sixteen at ~18 fps.
 * Only tiles on screen need mixing, and only when a setting changes.
 */

export const MAX_VISIBLE = 64;
export const MAX_CHANNELS = 4096;
export const MAX_QUERY = 8192;
export const GAMMA_MIN = 0.05;
export const GAMMA_MAX = 20;
// Blue, green, red, magenta, cyan, yellow, orange, white: the usual fluorophore order (DAPI first).
export const PALETTE = ["#0000ff", "#00ff00", "#ff0000", "#ff00ff", "#00ffff", "#ffff00", "#ff8000", "#ffffff"];

// The grammar of colours and render queries, the same as render.py's (exported for
// tests/viewer/test_render_constants.py, which compares every exported constant with its twin).
export const HEX = /^#[0-9a-fA-F]{6}$/;
export const QUERY_HEX = /^[0-9a-fA-F]{6}$/;
export const INDEX = /^[0-9]{1,4}$/;
export const NUMBER = /^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
export const FORMAT_HELP = "index:colour:min:max:gamma, e.g. 0:ff00ff:120:3400:1";

const CHUNK = 2048; // pixels mixed per pass: the sums (48 KiB) stay in the L1/L2 cache
const SUMS = new Float64Array(CHUNK * 3);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Render settings or a render query that cannot be used. */
export class BadRenderSettings extends Error {
  constructor(message) {
    super(message);
    this.name = "BadRenderSettings";
  }
}

/** The palette colour of the i-th channel ("#rrggbb"), cycling after eight. */
export function defaultColor(i) {
  return PALETTE[i % PALETTE.length];
}

/** "#ff8000" -> [255, 128, 0]. */
export function hexToRgb(color) {
  if (typeof color !== "string" || !HEX.test(color)) {
    throw new BadRenderSettings(`Colour '${String(color).slice(0, 16)}' must be '#rrggbb', e.g. '#ff00ff'.`);
  }
  return [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
}

/** The contribution of each code of one channel: Float32Array(768), code k at [3k, 3k + 3). */
export function channelTable(lut, setting) {
  if (!lut || lut.length !== 256 || !Array.from(lut).every(Number.isFinite)) {
    throw new BadRenderSettings(
      `The intensity table of channel ${setting.index} must hold 256 finite numbers; convert the image again.`,
    );
  }
  const [r, g, b] = hexToRgb(setting.color);
  const low = setting.min;
  const high = setting.max;
  const span = high - low;
  const gamma = setting.gamma ?? 1;
  const exponent = 1 / gamma;
  const table = new Float32Array(768);
  for (let k = 0; k < 256; k += 1) {
    const v = lut[k];
    let t;
    if (high > low) {
      t = (v - low) / span;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
    } else {
      t = v >= high ? 1 : 0;
    }
    if (gamma !== 1) t = Math.pow(t, exponent);
    table[3 * k] = t * r;
    table[3 * k + 1] = t * g;
    table[3 * k + 2] = t * b;
  }
  return table;
}

/** [channel index, table] of each visible channel, in drawing order; luts by channel index. */
export function visibleTables(settings, luts) {
  return settings.channels.filter((c) => c.visible !== false).map((c) => [c.index, channelTable(luts[c.index], c)]);
}

/**
 * Mix channels into `out` (RGBA, e.g. ImageData.data; alpha set to 255).
 *
 * codeArrays[i] holds channel i's code of pixel p at [p * stride]: stride 4 reads the R byte of an
 * RGBA tile (R = G = B = code), stride 1 a plain grey array. tables[i] comes from channelTable.
 * No channel gives black. Allocates nothing; call it on every slider change.
 */
export function renderInto(out, codeArrays, tables, stride = 4) {
  const n = out.length >> 2;
  const m = codeArrays.length;
  if (tables.length !== m) throw new RangeError(`${m} code arrays but ${tables.length} tables`);
  for (let c = 0; c < m; c += 1) {
    if (codeArrays[c].length < n * stride) throw new RangeError(`code array ${c} is shorter than the output`);
    if (tables[c].length !== 768) throw new RangeError(`table ${c} must be a Float32Array(768) from channelTable`);
  }
  const words = LITTLE_ENDIAN && out.byteOffset % 4 === 0 ? new Uint32Array(out.buffer, out.byteOffset, n) : null;
  for (let start = 0; start < n; start += CHUNK) {
    const length = Math.min(CHUNK, n - start);
    if (m === 0) SUMS.fill(0, 0, length * 3);
    for (let c = 0; c < m; c += 1) {
      if (c === 0) setSums(SUMS, codeArrays[c], tables[c], start * stride, length, stride);
      else addSums(SUMS, codeArrays[c], tables[c], start * stride, length, stride);
    }
    if (words) writeWords(words, SUMS, start, length);
    else writeBytes(out, SUMS, start, length);
  }
  return out;
}

function setSums(sums, codes, table, q, length, stride) {
  for (let i = 0, j = 0; i < length; i += 1, j += 3, q += stride) {
    const k = codes[q] * 3;
    sums[j] = table[k];
    sums[j + 1] = table[k + 1];
    sums[j + 2] = table[k + 2];
  }
}

function addSums(sums, codes, table, q, length, stride) {
  for (let i = 0, j = 0; i < length; i += 1, j += 3, q += stride) {
    const k = codes[q] * 3;
    sums[j] += table[k];
    sums[j + 1] += table[k + 1];
    sums[j + 2] += table[k + 2];
  }
}

/** Clamp to 255 and round half up: floor(x + 0.5), as Math.round and render.py do (x >= 0). */
function toByte(x) {
  const v = (x + 0.5) | 0;
  return v - ((v - 255) & ((255 - v) >> 31)); // min(v, 255) without a branch: saturation is common
}

function writeWords(words, sums, start, length) {
  for (let i = 0, j = 0, p = start; i < length; i += 1, j += 3, p += 1) {
    words[p] = (toByte(sums[j]) | (toByte(sums[j + 1]) << 8) | (toByte(sums[j + 2]) << 16) | 0xff000000);
  }
}

function writeBytes(out, sums, start, length) {
  for (let i = 0, j = 0, o = start * 4; i < length; i += 1, j += 3, o += 4) {
    out[o] = toByte(sums[j]);
    out[o + 1] = toByte(sums[j + 1]);
    out[o + 2] = toByte(sums[j + 2]);
    out[o + 3] = 255;
  }
}

/** Shortest round-trip text of x as String(x) writes it, but "e21" for "e+21" (URL-safe). */
export function formatNumber(x) {
  if (!Number.isFinite(x)) throw new RangeError(`${x} is not a finite number`);
  return String(x).replace("e+", "e");
}

/** "c=" plus the visible channels as index:colour:min:max:gamma, comma separated. */
export function settingsToQuery(settings) {
  const items = settings.channels
    .filter((c) => c.visible !== false)
    .map((c) => {
      hexToRgb(c.color);
      const numbers = [c.min, c.max, c.gamma ?? 1].map(formatNumber);
      return [c.index, c.color.slice(1).toLowerCase(), ...numbers].join(":");
    });
  return `c=${items.join(",")}`;
}

/**
 * Apply a query's `c` to `defaults`: listed channels shown as given, the rest hidden.
 *
 * Takes a query string ("?c=..." or "c=...&x=1") or URLSearchParams. Without `c` the defaults are
 * returned unchanged; other parameters are ignored. Throws BadRenderSettings on bad input.
 */
export function settingsFromQuery(query, defaults) {
  if (typeof query === "string" && query.length > MAX_QUERY) {
    throw new BadRenderSettings(`The render query is longer than ${MAX_QUERY} characters.`);
  }
  const values = new URLSearchParams(query).getAll("c");
  if (values.length === 0) return defaults;
  if (values.length > 1) throw new BadRenderSettings("The render query has more than one 'c' parameter; keep one.");
  const listed = parseChannels(values[0], defaults);
  return {
    channels: defaults.channels.map((c) => listed.get(c.index) ?? { ...c, visible: false }),
  };
}

function parseChannels(text, defaults) {
  const items = text ? text.split(",") : [];
  if (items.length > MAX_VISIBLE) {
    throw new BadRenderSettings(
      `At most ${MAX_VISIBLE} channels can be shown at once; the query lists ${items.length}.`,
    );
  }
  const known = new Set(defaults.channels.map((c) => c.index));
  const listed = new Map();
  for (const item of items) {
    const channel = parseChannel(item, known);
    if (listed.has(channel.index)) {
      throw new BadRenderSettings(`Channel ${channel.index} is listed twice in the query.`);
    }
    listed.set(channel.index, channel);
  }
  return listed;
}

function parseChannel(item, known) {
  const fields = item.split(":");
  if ((fields.length !== 4 && fields.length !== 5) || !INDEX.test(fields[0])) {
    throw new BadRenderSettings(`Channel entry '${item.slice(0, 40)}' must be ${FORMAT_HELP}.`);
  }
  const index = Number(fields[0]);
  if (!known.has(index)) {
    const last = known.size ? Math.max(...known) : 0;
    throw new BadRenderSettings(`Channel ${index} does not exist; this image has channels 0 to ${last}.`);
  }
  if (!QUERY_HEX.test(fields[1])) {
    throw new BadRenderSettings(
      `Colour of channel ${index} must be six hex digits like ff00ff; got '${fields[1].slice(0, 16)}'.`,
    );
  }
  const min = parseNumber(fields[2], "min", index);
  const max = parseNumber(fields[3], "max", index);
  const gamma = fields.length === 5 ? parseNumber(fields[4], "gamma", index) : 1;
  if (!(gamma >= GAMMA_MIN && gamma <= GAMMA_MAX)) {
    throw new BadRenderSettings(
      `Gamma of channel ${index} must be between ${GAMMA_MIN} and ${GAMMA_MAX}; got ${formatNumber(gamma)}.`,
    );
  }
  return { index, visible: true, color: `#${fields[1].toLowerCase()}`, min, max, gamma };
}

function parseNumber(text, name, index) {
  const value = text.length <= 32 && NUMBER.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(value)) {
    throw new BadRenderSettings(
      `${name} of channel ${index} must be a finite number like 120 or 0.5; got '${text.slice(0, 32)}'.`,
    );
  }
  return value;
}
