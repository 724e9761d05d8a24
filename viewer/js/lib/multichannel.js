// @ts-check
// The viewer page's multi-channel mode: wires the channel panel, the compositor and the channel
// tile source into one OpenSeadragon viewer, keeps the channel settings in the URL, and lays the
// PCA layer over the mix. Named for the kind of image it opens; the parts it wires are
// channelpanel.js, compositor.js and channeltiles.js.

import { getRender, putRender } from "./api.js";
import { ChannelPanel } from "./channelpanel.js";
import { createMixSource } from "./channeltiles.js";
import { Compositor, mixModeOf } from "./compositor.js";
import { loadDzi, signedDziSource, tilesBase } from "./deepzoom.js";
import { BadRenderSettings, settingsFromQuery, settingsToQuery } from "./render.js";
import { hashParams, setRenderQuery } from "./viewstate.js";

/** The converter's own settings (and the fallback should GET /render fail): its windows and
 * colours, every channel shown, as the server's defaults before any were saved. */
function manifestDefaults(image) {
  return {
    channels: image.channels.map((c) => ({
      index: c.index, visible: true, color: c.color, min: c.window.min, max: c.window.max, gamma: 1,
    })),
  };
}

/** The hash's channel settings over `defaults`; a bad `c` is reported and ignored. */
function settingsFromHash(defaults, warn) {
  try {
    return settingsFromQuery(hashParams(), defaults);
  } catch (err) {
    if (!(err instanceof BadRenderSettings)) throw err;
    warn(`The channel settings in the address were ignored: ${err.message}`);
    return defaults;
  }
}

/**
 * Open `image` mixed live: the panel in `root` edits the settings, then `createViewer()` makes the
 * viewer (not yet opened) that shows the mix source; `token` (deepzoom.TileToken) signs every tile URL.
 * The panel is laid out first so that the viewer measures its final size: a view from the address
 * applied before the panel narrowed the viewer lost zoom by the panel's share of the width.
 * Returns {viewer, compositor, panel, source}; the caller opens the viewer with `source`.
 */
export async function openMixed(image, root, { warn, token, createViewer }) {
  const [geometry, saved] = await Promise.all([
    loadDzi(image.channels[0].dzi),
    getRender(image.id).catch(() => manifestDefaults(image)),
  ]);
  const settings = settingsFromHash(saved, warn);
  // ?mix=browser|server in the address overrides the choice by channel count (comparisons, bench)
  const forcedMode = new URLSearchParams(window.location.search).get("mix");
  let viewer = null;
  let compositor = null;
  const showMode = (s) => {
    const mode = mixModeOf(s, forcedMode);
    document.body.dataset.mixMode = mode;
    document.body.dataset.drawer = viewer.drawer?.getType?.() || "";
    panel.showMode(mode, document.body.dataset.drawer);
  };
  const panel = new ChannelPanel(root, image, settings, {
    defaults: saved,
    converterDefaults: manifestDefaults(image),
    showPca: (on) => showPcaLayer(viewer, image.links.pca, on, token).catch(
      (err) => warn(`The PCA layer could not be shown: ${err.message}`),
    ),
    save: (s) => putRender(image.id, s),
    onChange: (s) => {
      compositor.set(s).catch((err) => warn(`The channels could not be drawn again: ${err.message}`));
      setRenderQuery(settingsToQuery(s), viewer);
      showMode(s);
    },
  });
  viewer = createViewer();
  compositor = new Compositor(viewer, image, geometry, settings, { onWarn: warn, forcedMode, token });
  const source = createMixSource(geometry, `plexzoom-mix:${image.id}`, (...args) => compositor.load(...args));
  setRenderQuery(settingsToQuery(settings), viewer);
  viewer.addHandler("open", () => showMode(panel.settings));
  window.addEventListener("hashchange", () => {
    if (!hashParams().has("c")) return;
    const wanted = settingsFromHash(panel.defaults, warn);
    if (settingsToQuery(wanted) !== settingsToQuery(panel.settings)) panel.apply(wanted);
  });
  return { viewer, compositor, panel, source };
}

/** Lay the server-rendered PCA pyramid over the mix (on), or take it away (off). */
async function showPcaLayer(viewer, dzi, on, token) {
  const layers = viewer.world.getItemCount();
  if (!on) {
    if (layers > 1) viewer.world.removeItem(viewer.world.getItemAt(layers - 1));
    document.body.dataset.pca = "0";
    return;
  }
  if (layers > 1) return;
  const geometry = await loadDzi(token.sign(dzi));
  viewer.addTiledImage({
    tileSource: signedDziSource(geometry, tilesBase(dzi), token),
    success: () => { document.body.dataset.pca = "1"; },
  });
}
