// The browser's mixing loop (viewer/js/render.js renderInto) on a 1920 x 1080 viewport, in node:
// median of 12 renders for 1 to 16 channels. Run: node bench/render_speed.mjs
import { channelTable, defaultColor, renderInto } from "../viewer/js/lib/render.js";

const UINT16 = Array.from({ length: 256 }, (_, k) => k * 257);
const n = 1920 * 1080;
const out = new Uint8ClampedArray(n * 4);
for (const count of [1, 2, 3, 4, 8, 16]) {
  const codes = Array.from({ length: count }, () => Uint8ClampedArray.from({ length: n * 4 }, () => Math.random() * 256));
  const settings = (i) => ({ index: i, visible: true, color: defaultColor(i), min: 0, max: 40000, gamma: 1.5 });
  const tables = codes.map((_, i) => channelTable(UINT16, settings(i)));
  const times = [];
  for (let i = 0; i < 12; i += 1) {
    const start = performance.now();
    renderInto(out, codes, tables, 4);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times[6];
  console.log(`renderInto ${count} channel(s), 1920x1080 RGBA: median ${median.toFixed(1)} ms, ` +
    `${(median / count).toFixed(1)} ms a channel, best ${times[0].toFixed(1)} ms`);
}
