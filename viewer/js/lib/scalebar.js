// @ts-check
// Scale bar overlay: a round physical length (1, 2 or 5 x 10^n) from the image's pixel size.

const METRES = { nm: 1e-9, "µm": 1e-6, um: 1e-6, "μm": 1e-6, micron: 1e-6, mm: 1e-3, cm: 1e-2, m: 1 };
/** @type {[string, number][]} */
const NAMES = [["nm", 1e-9], ["µm", 1e-6], ["mm", 1e-3], ["m", 1]];

/** The largest 1, 2 or 5 x 10^n that is not above `limit` (> 0). */
export function roundLength(limit) {
  const decade = 10 ** Math.floor(Math.log10(limit));
  const step = [5, 2, 1].find((s) => s * decade <= limit * (1 + 1e-9));
  return step * decade;
}

/** "20 µm", "1.5 mm": a length in metres written in the unit that keeps the number in 1..999. */
export function formatLength(metres) {
  const [name, size] = [...NAMES].reverse().find(([, s]) => metres >= s * (1 - 1e-9)) ?? NAMES[0];
  return `${Number((metres / size).toPrecision(3))} ${name}`;
}

/**
 * The bar for a pixel of `pixelSize` `unit` shown at `zoom` screen px per image px, at most
 * `maxPx` long: {px, label}. Unknown units are kept as they are, without conversion.
 */
export function scaleBar(pixelSize, unit, zoom, maxPx = 120) {
  const perScreenPx = pixelSize / zoom;
  const length = roundLength(perScreenPx * maxPx);
  const px = length / perScreenPx;
  const metres = METRES[unit];
  const label = metres ? formatLength(length * metres) : `${Number(length.toPrecision(3))} ${unit}`;
  return { px, label };
}

/** Keep the overlay `element` (a .scalebar with a bar and a label) in step with the viewer. */
export function attachScaleBar(viewer, element, physicalSize) {
  const [size, , unit] = physicalSize || [];
  if (!(size > 0) || typeof unit !== "string") return;
  const bar = element.querySelector(".scalebar-bar");
  const label = element.querySelector(".scalebar-label");
  const update = () => {
    const zoom = viewer.viewport.viewportToImageZoom(viewer.viewport.getZoom(true));
    if (!(zoom > 0)) return;
    const { px, label: text } = scaleBar(size, unit, zoom);
    bar.style.width = `${px.toFixed(1)}px`;
    label.textContent = text;
    element.hidden = false;
  };
  viewer.addHandler("open", update);
  viewer.addHandler("viewport-change", update);
}
