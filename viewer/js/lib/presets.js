// @ts-check
// Colour presets of the channel panel: pure functions from the image's channels and the current
// render settings to new render settings (the render model of render.js does the drawing).

/*
 * Every preset stays inside the render model: each channel adds t' x colour with a non-negative
 * colour of 8-bit components, so a preset is a choice of visible channels, colours and windows.
 * PCA to RGB is not offered: principal components have negative weights, which an additive,
 * non-negative mix of channels cannot express.
 */

export const PRIMARIES = ["#ff0000", "#00ff00", "#0000ff"];
export const MAX_BANDS = 64; // render.js MAX_VISIBLE: the most channels mixed at once
const GREY = 255;

// CIE 1931 2-degree colour matching functions, multi-lobe piecewise-Gaussian fit of
// C. Wyman, P.-P. Sloan, P. Shirley, "Simple Analytic Approximations to the CIE XYZ Color Matching
// Functions", Journal of Computer Graphics Techniques 2(2), 2013, table 1: [weight, mean nm,
// sigma below the mean, sigma above it].
const CMF = {
  x: [[1.056, 599.8, 37.9, 31.0], [0.362, 442.0, 16.0, 26.7], [-0.065, 501.1, 20.4, 26.2]],
  y: [[0.821, 568.8, 46.9, 40.5], [0.286, 530.9, 16.3, 31.1]],
  z: [[1.217, 437.0, 11.8, 36.0], [0.681, 459.0, 26.0, 13.8]],
};

// XYZ -> linear sRGB (IEC 61966-2-1, D65 white).
const XYZ_TO_SRGB = [
  [3.2406, -1.5372, -0.4986],
  [-0.9689, 1.8758, 0.0415],
  [0.0557, -0.204, 1.057],
];

function lobes(nm, fit) {
  return fit.reduce((sum, [weight, mean, below, above]) => {
    const t = (nm - mean) / (nm < mean ? below : above);
    return sum + weight * Math.exp(-0.5 * t * t);
  }, 0);
}

/** [x̄, ȳ, z̄] of the CIE 1931 2° observer at a wavelength in nm (Wyman, Sloan & Shirley 2013). */
export function cieXyz(nm) {
  return [lobes(nm, CMF.x), lobes(nm, CMF.y), lobes(nm, CMF.z)];
}

/** Linear sRGB of an XYZ colour (components may be negative: out of gamut). */
export function xyzToLinearSrgb(xyz) {
  return XYZ_TO_SRGB.map((row) => row[0] * xyz[0] + row[1] * xyz[1] + row[2] * xyz[2]);
}

/** The linear sRGB of one band, clipped to >= 0 (the model adds colours; it cannot subtract). */
export function bandColour(nm) {
  return xyzToLinearSrgb(cieXyz(nm)).map((v) => Math.max(0, v));
}

/**
 * Integers proportional to `weights` that add up to exactly `total` (largest remainder), so that
 * many small colours still sum to a full 255. All zero weights give all zeros.
 */
export function apportion(weights, total = GREY) {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) return weights.map(() => 0);
  const exact = weights.map((w) => (w * total) / sum);
  const parts = exact.map(Math.floor);
  let left = total - parts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - parts[i], i]).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (left <= 0) break;
    parts[i] += 1;
    left -= 1;
  }
  return parts;
}

/** [r, g, b] (0..255) -> "#rrggbb". */
export function toHex(rgb) {
  return `#${rgb.map((v) => Math.max(0, Math.min(255, Math.round(v))).toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The true colour of each band: its clipped linear sRGB, scaled per component so that an
 * equal-energy spectrum (every band at full intensity) adds up to white (255, 255, 255).
 */
export function trueColourRgb(wavelengths) {
  const colours = wavelengths.map(bandColour);
  const components = [0, 1, 2].map((c) => apportion(colours.map((rgb) => rgb[c])));
  return wavelengths.map((_, i) => components.map((parts) => parts[i]));
}

/** Group of each band: 0 (short, blue), 1 (middle, green), 2 (long, red), by equal wavelength thirds. */
export function bandGroups(wavelengths) {
  const low = Math.min(...wavelengths);
  const span = Math.max(...wavelengths) - low;
  return wavelengths.map((nm) => (span > 0 ? Math.min(2, Math.floor((3 * (nm - low)) / span)) : 1));
}

/** Each band's colour for "band groups summed into R/G/B": the group's primary split n ways. */
export function bandGroupRgb(wavelengths) {
  const groups = bandGroups(wavelengths);
  const shares = [0, 1, 2].map((g) => apportion(groups.map((x) => (x === g ? 1 : 0))));
  // short wavelengths to blue (component 2), long ones to red (component 0)
  return groups.map((g, i) => [0, 1, 2].map((c) => (c === 2 - g ? shares[g][i] : 0)));
}

/** True when every channel has a wavelength (a hyperspectral cube). */
export function hasWavelengths(channels) {
  return channels.length > 0 && channels.every((c) => Number.isFinite(c.wavelength_nm));
}

/** True when some band lies where the eye sees (else true colour is black). */
export function hasVisibleBands(channels) {
  return hasWavelengths(channels) && channels.some((c) => c.wavelength_nm >= 380 && c.wavelength_nm <= 780);
}

/** One window for all bands (the widest of their default windows), so band ratios survive. */
export function commonWindow(channels) {
  const lows = channels.map((c) => c.window?.min ?? c.stats?.min ?? 0);
  const highs = channels.map((c) => c.window?.max ?? c.stats?.max ?? 1);
  return { min: Math.min(...lows), max: Math.max(...highs) };
}

/** Channels `picks` = [r, g, b] (channel index or null) shown in red, green, blue; others hidden. */
export function rgbPreset(settings, picks) {
  return {
    channels: settings.channels.map((c) => {
      const slot = picks.indexOf(c.index);
      return slot < 0 ? { ...c, visible: false } : { ...c, visible: true, color: PRIMARIES[slot] };
    }),
  };
}

/** At most `max` bands, evenly spaced over the list (a coarser sampling of the same spectrum). */
export function spectralSubset(channels, max = MAX_BANDS) {
  if (channels.length <= max) return channels;
  return Array.from({ length: max }, (_, k) => channels[Math.round((k * (channels.length - 1)) / (max - 1))]);
}

function spectralPreset(settings, channels, colours) {
  const window = commonWindow(channels);
  const byIndex = new Map(channels.map((c, i) => [c.index, colours[i]]));
  return {
    channels: settings.channels.map((c) => {
      const rgb = byIndex.get(c.index);
      if (!rgb || rgb.every((v) => v === 0)) return { ...c, visible: false };
      return { ...c, visible: true, color: toHex(rgb), min: window.min, max: window.max, gamma: 1 };
    }),
  };
}

/** Hyperspectral bands summed in three wavelength groups into blue, green and red. */
export function bandGroupPreset(settings, channels) {
  const bands = spectralSubset(channels);
  return spectralPreset(settings, bands, bandGroupRgb(bands.map((c) => c.wavelength_nm)));
}

/** Hyperspectral bands coloured by the CIE 1931 observer: the colour the eye would see. */
export function trueColourPreset(settings, channels) {
  const bands = spectralSubset(channels);
  return spectralPreset(settings, bands, trueColourRgb(bands.map((c) => c.wavelength_nm)));
}

/** The presets that fit an image's channels: [{id, label}]. */
export function presetsFor(channels) {
  const list = [];
  if (channels.length >= 2) list.push({ id: "rgb", label: "Any three channels → R/G/B" });
  if (hasWavelengths(channels) && channels.length >= 3) {
    list.push({ id: "groups", label: "Band groups summed into R/G/B" });
  }
  if (hasVisibleBands(channels)) list.push({ id: "truecolour", label: "True colour (CIE 1931)" });
  return list;
}
