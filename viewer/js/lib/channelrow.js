// @ts-check
// One row of the channel panel: visibility, colour, solo, min/max over the histogram, gamma, value.

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

/** Draw the 256-bin histogram (log counts), bins inside the window in the channel's hue. */
function drawHistogram(canvas, channel, range, setting) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const counts = channel.stats?.histogram || [];
  const top = Math.log1p(Math.max(1, ...counts));
  const lo = channel.stats?.min ?? range.low;
  const span = (channel.stats?.max ?? range.high) - lo || 1;
  const bin = width / Math.max(1, counts.length);
  const hue = brightest(setting.color);
  counts.forEach((count, i) => {
    const value = lo + ((i + 0.5) / counts.length) * span;
    context.fillStyle = value >= setting.min && value <= setting.max ? hue : "#4a5262";
    const h = (Math.log1p(count) / top) * (height - 2);
    context.fillRect(i * bin, height - h, Math.max(1, bin - 0.2), h);
  });
  context.fillStyle = "#e8ebf0";
  for (const mark of [setting.min, setting.max]) {
    const x = ((mark - range.low) / (range.high - range.low)) * width;
    if (x >= 0 && x <= width) context.fillRect(Math.min(width - 1, Math.round(x)), 0, 1, height);
  }
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
  const element = el("li", { className: "channel-row", dataset: { index: String(i), testid: `channel-row-${i}` } },
    el("div", { className: "row-head" }, visible, colour, el("span", { className: "channel-name", textContent: name,
      title: name }), value, autoButton, soloButton),
    el("div", { className: "window" }, histogram, lowSlider, highSlider),
    el("div", { className: "row-numbers" }, el("label", {}, "min ", lowNumber), el("label", {}, "max ", highNumber),
      el("label", { className: "gamma-label" }, "gamma ", gamma, gammaText)));
  let current = null;

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
      else show(current, soloButton.getAttribute("aria-pressed") === "true");
    });
  }
  // Arrow keys move a window edge by one native unit (Shift: ten), on the slider and in the box,
  // where a slider pixel is several units wide on a 16-bit channel.
  const unit = range.integer ? 1 : range.step;
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

  function show(setting, soloed) {
    current = setting;
    element.classList.toggle("is-hidden", setting.visible === false);
    visible.checked = setting.visible !== false;
    colour.value = setting.color;
    soloButton.setAttribute("aria-pressed", String(soloed));
    lowSlider.value = String(setting.min);
    highSlider.value = String(setting.max);
    for (const [input, v] of [[lowNumber, setting.min], [highNumber, setting.max]]) {
      if (document.activeElement !== input) input.value = range.integer ? String(v) : String(Number(v.toPrecision(6)));
    }
    gamma.value = String(Math.log10(setting.gamma ?? 1));
    gammaText.value = (setting.gamma ?? 1).toFixed(2);
    drawHistogram(histogram, channel, range, setting);
  }

  function showValue(native) {
    value.value = native === undefined ? "" : formatValue(native, channel.dtype);
  }

  return { element, show, showValue };
}
