// @ts-check
// One row of the channel panel: visibility, colour, solo, min/max over the histogram (full range or
// zoomed onto the populated values, with round value ticks), gamma, value.

import { el } from "./dom.js";
import { GAMMA_MAX, GAMMA_MIN } from "./render.js";

const GAMMA_LOW = 0.1;
const GAMMA_HIGH = 5;
const INTEGER = /^u?int/;

/** A native value as people read it: integers for integer data, four significant digits else. */
export function formatValue(value, dtype) {
  if (!Number.isFinite(value)) return "";
  if (INTEGER.test(dtype || "")) return String(Math.round(value));
  return String(Number(value.toPrecision(4)));
}

/** Slider range and step of a channel's window in native units. */
function rangeOf(channel) {
  let low = channel.stats?.min ?? channel.window?.min ?? 0;
  let high = channel.stats?.max ?? channel.window?.max ?? 1;
  if (!(high > low)) [low, high] = [low - 1, low + 1];
  const integer = INTEGER.test(channel.dtype || "");
  const step = integer ? 1 : 10 ** (Math.floor(Math.log10(high - low)) - 3);
  return { low, high, step, integer };
}

/**
 * The populated part of a channel's range (`full`, from rangeOf): its 0.1th to 99.9th percentile,
 * widened to hold `window` ({min, max}) and by a twentieth on each side, but not beyond `full`
 * unless the window is. Whole numbers for integer data (the slider steps from its min).
 */
export function zoomedRange(percentiles, window, full) {
  const low = Math.min(percentiles?.["0.1"] ?? full.low, window.min);
  const high = Math.max(percentiles?.["99.9"] ?? full.high, window.max);
  const pad = (high - low) / 20;
  const zoomed = {
    low: Math.min(window.min, Math.max(full.low, low - pad)),
    high: Math.max(window.max, Math.min(full.high, high + pad)),
  };
  if (full.integer) [zoomed.low, zoomed.high] = [Math.floor(zoomed.low), Math.ceil(zoomed.high)];
  return zoomed.high > zoomed.low ? zoomed : { low: full.low, high: full.high };
}

/**
 * Round values to label a histogram over [low, high]: the multiples in range of the finest step of
 * 1, 2 or 5 x 10^n that gives at most `most` of them, so 3 to 6 by default; 7 on the spans of 12 to
 * 15 steps of 2 x 10^n, where 5 x 10^n would leave 2.
 */
export function valueTicks(low, high, most = 6) {
  if (!(high > low) || !Number.isFinite(high - low)) return [];
  let previous = [];
  for (let power = 10 ** Math.floor(Math.log10((high - low) / most)); ; power *= 10) {
    for (const factor of [1, 2, 5]) {
      const ticks = multiples(low, high, factor * power);
      if (ticks.length <= most) return ticks.length >= 3 || !previous.length ? ticks : previous;
      previous = ticks;
    }
  }
}

/** A tick's label, short enough for six under a histogram: 20k for 20000, 1.5M for 1500000. */
export function tickLabel(value) {
  const size = Math.abs(value);
  if (size >= 1e9) return value.toExponential();
  if (size >= 1e6) return `${Number((value / 1e6).toPrecision(12))}M`;
  if (size >= 1e4) return `${Number((value / 1e3).toPrecision(12))}k`;
  return String(value);
}

/** The multiples of `step` in [low, high], free of binary rounding (0.6, not 0.6000000000000001). */
function multiples(low, high, step) {
  const values = [];
  for (let k = Math.ceil(low / step - 1e-9); k * step <= high + step * 1e-9; k++) {
    values.push(Number((k * step).toPrecision(15)));
  }
  return values;
}

function snap(value, range) {
  return range.integer ? Math.round(value) : Number((Math.round(value / range.step) * range.step).toPrecision(12));
}

/** Gamma from the slider's log10 position, to three significant digits. */
function gammaAt(position) {
  return Number((10 ** position).toPrecision(3));
}

/** The hue of "#rrggbb" at full brightness (dim preset colours stay readable), grey for black. */
function brightest(color) {
  const rgb = [1, 3, 5].map((k) => parseInt(color.slice(k, k + 2), 16));
  const top = Math.max(...rgb);
  return top ? `rgb(${rgb.map((v) => Math.round((255 * v) / top)).join(" ")})` : "#9aa3b2";
}

/**
 * Draw the 256-bin histogram (log counts; bins span the channel's stats min..max) over `view`, the
 * slider's range, bins inside the window in the channel's hue, the window's edges and `ticks`.
 */
function drawHistogram(canvas, channel, view, setting, ticks) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const counts = channel.stats?.histogram || [];
  const top = Math.log1p(Math.max(1, ...counts));
  const lo = channel.stats?.min ?? view.low;
  const span = (channel.stats?.max ?? view.high) - lo || 1;
  const x = (value) => ((value - view.low) / (view.high - view.low)) * width;
  const hue = brightest(setting.color);
  counts.forEach((count, i) => {
    const [left, right] = [x(lo + (i / counts.length) * span), x(lo + ((i + 1) / counts.length) * span)];
    if (right < 0 || left > width) return;
    const value = lo + ((i + 0.5) / counts.length) * span;
    context.fillStyle = value >= setting.min && value <= setting.max ? hue : "#4a5262";
    const h = (Math.log1p(count) / top) * (height - 2);
    context.fillRect(left, height - h, Math.max(1, right - left - 0.2), h);
  });
  context.fillStyle = "rgb(232 235 240 / 0.45)";
  for (const tick of ticks) context.fillRect(Math.min(width - 1, Math.round(x(tick))), height - 4, 1, 4);
  context.fillStyle = "#e8ebf0";
  for (const mark of [setting.min, setting.max]) {
    if (x(mark) >= 0 && x(mark) <= width) context.fillRect(Math.min(width - 1, Math.round(x(mark))), 0, 1, height);
  }
}

/** Labels of `ticks` under the histogram, each where its value lies on the slider (5 px insets). */
function labelTicks(box, ticks, view) {
  box.replaceChildren(...ticks.map((tick) => {
    const at = (tick - view.low) / (view.high - view.low);
    const label = el("span", { textContent: tickLabel(tick) });
    // Shifted by its own width times its place: flush left at the left end, right at the right.
    label.style.left = `calc(5px + ${at} * (100% - 10px))`;
    label.style.transform = `translateX(${-100 * at}%)`;
    return label;
  }));
}

/**
 * The row of `channel` (an entry of the image's channels). `update(index, changes)` gets each
 * edit, `solo(index)` the solo button. Returns {element, show(setting, soloed), showValue(text)}.
 */
export function createChannelRow(channel, { update, solo }) {
  const i = channel.index;
  const name = channel.name || `Channel ${i + 1}`;
  const range = rangeOf(channel);
  const control = (tag, what, props) => el(tag, { ...props, dataset: { testid: `channel-${what}-${i}` } });
  const visible = control("input", "visible", { type: "checkbox", title: `Show ${name}` });
  const colour = control("input", "color", { type: "color", className: "swatch-input", title: `Colour of ${name}` });
  const value = control("output", "value", { className: "channel-value", title: "Value under the cursor" });
  const soloButton = control("button", "solo", {
    type: "button", className: "solo", textContent: "S", title: `Show only ${name}; again to undo`,
    ariaLabel: `Solo ${name}`,
  });
  const autoButton = control("button", "auto", {
    type: "button", className: "solo", textContent: "A", disabled: !channel.window,
    title: `Auto contrast of ${name}: from just above its background to its 99.9th percentile`,
    ariaLabel: `Auto contrast ${name}`,
  });
  const zoomButton = control("button", "zoom", {
    type: "button", className: "solo", textContent: "Z", disabled: !channel.stats?.percentiles,
    title: `Zoom the histogram and sliders of ${name} to its data (0.1th to 99.9th percentile and the ` +
      "window), for finer steps; again for the full range",
    ariaLabel: `Zoom histogram to data of ${name}`,
  });
  const windowSlider = (what) => control("input", `${what}-range`, {
    type: "range", min: range.low, max: range.high, step: range.integer ? 1 : "any",
    className: `range-${what}`, title: `${what} of ${name} (native units)`,
  });
  const lowSlider = windowSlider("min");
  const highSlider = windowSlider("max");
  const number = (what) => control("input", what, {
    type: "number", step: "any", className: "window-number", title: `${what} of ${name} (native units)`,
  });
  const lowNumber = number("min");
  const highNumber = number("max");
  const gamma = control("input", "gamma", {
    type: "range", min: Math.log10(GAMMA_LOW), max: Math.log10(GAMMA_HIGH), step: 0.01, className: "gamma",
    title: `Gamma of ${name} (above 1 brightens dim values)`,
  });
  const gammaText = control("output", "gamma-value", { className: "gamma-value" });
  const histogram = el("canvas", { width: 256, height: 36, className: "histogram" });
  const tickLabels = control("div", "ticks", { className: "histogram-ticks", "aria-hidden": "true" });
  const windowBox = el("div", { className: "window" }, histogram, lowSlider, highSlider);
  const element = el("li", { className: "channel-row", dataset: { index: String(i), testid: `channel-row-${i}` } },
    el("div", { className: "row-head" }, visible, colour, el("span", { className: "channel-name", textContent: name,
      title: name }), value, autoButton, soloButton, zoomButton),
    windowBox, tickLabels,
    el("div", { className: "row-numbers" }, el("label", {}, "min ", lowNumber), el("label", {}, "max ", highNumber),
      el("label", { className: "gamma-label" }, "gamma ", gamma, gammaText)));
  let current = null;
  let soloed = false;
  let zoomed = false;
  let view = null; // the sliders' range now

  visible.addEventListener("change", () => update(i, { visible: visible.checked }));
  colour.addEventListener("input", () => update(i, { color: colour.value }));
  soloButton.addEventListener("click", () => solo(i));
  autoButton.addEventListener("click", () => update(i, { min: channel.window.min, max: channel.window.max }));
  lowSlider.addEventListener("input", () => {
    update(i, { min: Math.min(snap(Number(lowSlider.value), range), current.max) });
  });
  highSlider.addEventListener("input", () => {
    update(i, { max: Math.max(snap(Number(highSlider.value), range), current.min) });
  });
  for (const [input, key] of [[lowNumber, "min"], [highNumber, "max"]]) {
    input.addEventListener("change", () => {
      const v = Number(input.value);
      if (input.value !== "" && Number.isFinite(v)) update(i, { [key]: v });
      else show(current, soloed);
    });
  }
  // Arrow keys move a window edge by one native unit (Shift: ten), on the slider and in the box,
  // where a slider pixel is several units wide on a 16-bit channel.
  const unit = range.integer ? 1 : range.step;
  const edges = [lowSlider, highSlider, lowNumber, highNumber];
  for (const [input, key] of [[lowSlider, "min"], [highSlider, "max"], [lowNumber, "min"], [highNumber, "max"]]) {
    // In a number box, left and right move the text cursor.
    const steps = input.type === "number" ? { ArrowUp: 1, ArrowDown: -1 }
      : { ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1 };
    input.addEventListener("keydown", (event) => {
      const sign = steps[event.key];
      if (!sign) return;
      event.preventDefault();
      const value = snap(current[key] + sign * unit * (event.shiftKey ? 10 : 1), range);
      update(i, { [key]: key === "min" ? Math.min(value, current.max) : Math.max(value, current.min) });
    });
  }
  gamma.addEventListener("input", () => {
    update(i, { gamma: Math.min(GAMMA_MAX, Math.max(GAMMA_MIN, gammaAt(Number(gamma.value)))) });
  });

  zoomButton.addEventListener("click", () => {
    zoomed = !zoomed;
    show(current, soloed);
  });

  /**
   * The sliders' range for `setting`: full or zoomed, always holding the window (never clipped).
   * While one of this row's edges has the focus it only widens, so a dragged thumb stays put.
   */
  function rangeFor(setting) {
    const base = zoomed ? zoomedRange(channel.stats.percentiles, setting, range) : range;
    const from = edges.includes(/** @type {HTMLInputElement} */ (document.activeElement)) ? view ?? base : base;
    return { low: Math.min(from.low, setting.min), high: Math.max(from.high, setting.max) };
  }

  function show(setting, isSoloed) {
    current = setting;
    soloed = isSoloed;
    element.classList.toggle("is-hidden", setting.visible === false);
    visible.checked = setting.visible !== false;
    colour.value = setting.color;
    soloButton.setAttribute("aria-pressed", String(soloed));
    const next = rangeFor(setting);
    const ticks = valueTicks(next.low, next.high);
    if (next.low !== view?.low || next.high !== view?.high) labelTicks(tickLabels, ticks, next);
    view = next;
    for (const slider of [lowSlider, highSlider]) [slider.min, slider.max] = [String(view.low), String(view.high)];
    zoomButton.setAttribute("aria-pressed", String(zoomed));
    windowBox.classList.toggle("is-zoomed", zoomed);
    lowSlider.value = String(setting.min);
    highSlider.value = String(setting.max);
    for (const [input, v] of [[lowNumber, setting.min], [highNumber, setting.max]]) {
      if (document.activeElement !== input) input.value = range.integer ? String(v) : String(Number(v.toPrecision(6)));
    }
    gamma.value = String(Math.log10(setting.gamma ?? 1));
    gammaText.value = (setting.gamma ?? 1).toFixed(2);
    drawHistogram(histogram, channel, view, setting, ticks);
  }

  function showValue(native) {
    value.value = native === undefined ? "" : formatValue(native, channel.dtype);
  }

  return { element, show, showValue };
}
