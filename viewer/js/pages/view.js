// @ts-check
// The page script of view.html: follow one image until it is ready, open it in OpenSeadragon
// (multi-channel images mixed live, with the channel panel: lib/multichannel.js), keep the view and
// the channel settings in the URL hash.

import { describeStatus, formatBytes, formatDimensions, getImage, isMultiChannel, isPending } from "../lib/api.js";
import { TileToken, loadDzi, openRangeTileSource, signedDziSource, tilesBase } from "../lib/deepzoom.js";
import { el } from "../lib/dom.js";
import { STATE_TEXT, followImage } from "../lib/events.js";
import { showMetadata } from "../lib/metadata.js";
import { openMixed } from "../lib/multichannel.js";
import { addFullPageButton, createViewer, makeButtonsFocusable } from "../lib/osdviewer.js";
import { attachCursorValues } from "../lib/cursorvalues.js";
import { attachScaleBar } from "../lib/scalebar.js";
import { attachSnapshot } from "../lib/snapshot.js";
import { applyView, writeHash } from "../lib/viewstate.js";

const $ = (id) => document.getElementById(id);
const ui = {
  title: $("view-title"),
  details: $("view-details"),
  channels: $("view-channels"),
  status: $("view-status"),
  progressPanel: $("view-progress-panel"),
  progressLabel: $("view-progress-label"),
  progress: /** @type {HTMLProgressElement} */ ($("view-progress")),
  error: $("view-error"),
  warning: $("view-warning"),
  panel: $("channel-panel"),
  scaleBar: $("scalebar"),
  readout: $("pixel-readout"),
  viewer: $("viewer"),
  workspace: /** @type {HTMLElement} */ (document.querySelector(".workspace")),
};

// For tests and the console: `await plexzoom.ready` resolves (with the viewer) once the first view
// is fully drawn; document.body.dataset.viewerReady is "1" whenever the current view is fully drawn.
const readiness = {};
window.plexzoom = {
  viewer: null,
  image: null,
  mode: null, // "proxy" (links.dzi), "range" (links.pyramid) or "mix" (channels mixed live)
  // in "mix" mode, the compositor (lib/compositor.js): `await plexzoom.mixer.idle()` waits for a
  // settings change to be drawn
  mixer: null,
  token: null, // the tile token of a private image, renewed before it expires (lib/deepzoom.js)
  panel: null,
  cursor: null, // the values under the cursor (lib/cursorvalues.js)
  ready: new Promise((resolve, reject) => Object.assign(readiness, { resolve, reject })),
};
window.plexzoom.ready.catch(() => {}); // a failure is shown on the page; not an unhandled rejection

function fail(message) {
  if (ui.status.textContent === "loading") {
    ui.status.textContent = "not available"; // a bad or deleted id: nothing is loading any more
    ui.status.className = "badge badge-failed";
  }
  ui.error.textContent = message;
  ui.error.hidden = false;
  ui.progressPanel.hidden = true;
  document.body.dataset.viewerError = "1";
  readiness.reject(new Error(message));
}

function warn(message) {
  ui.warning.textContent = message;
  ui.warning.hidden = false;
}

/** Title, dimensions, size and channels of the image. */
function showInfo(image) {
  const name = image.filename || image.id;
  ui.title.textContent = name;
  document.title = `${name} — plexzoom`;
  ui.details.textContent = [formatDimensions(image), formatBytes(image.size), image.format?.toUpperCase()]
    .filter(Boolean).join(" · ");
  const channels = image.channels || [];
  ui.channels.replaceChildren(...channels.map(channelItem));
  ui.channels.hidden = channels.length === 0;
}

function channelItem(channel) {
  const swatch = el("span", { className: "swatch" });
  swatch.style.backgroundColor = channel.color; // an invalid colour is simply ignored
  return el("li", { title: `Channel ${channel.index}` }, swatch, channel.name || `Channel ${channel.index}`);
}

const PENDING_LABELS = {
  uploading: "The image is still being uploaded",
  queued: "Waiting for a converter",
  processing: "Converting the image into a pyramid",
};

function showStatus(image) {
  window.plexzoom.image = image;
  ui.status.textContent = describeStatus(image);
  ui.status.className = `badge badge-${image.status}`;
  document.body.dataset.status = image.status;
  if (isPending(image)) {
    ui.progressPanel.hidden = false;
    ui.progressLabel.textContent = PENDING_LABELS[image.status];
    ui.progress.value = image.progress || 0;
  } else {
    ui.progressPanel.hidden = true;
  }
  if (image.status === "failed") fail(image.error || "The conversion of this image failed.");
}

/**
 * The tileSources value: the standard DZI (proxy mode; with the current token in every tile URL
 * for a private image) or the Range tile source (presigned mode).
 */
async function tileSourceOf(image, token) {
  const links = image.links || {};
  if (links.pyramid?.archive && links.pyramid?.index) {
    window.plexzoom.mode = "range";
    const renewUrl = async () => (await getImage(image.id)).links?.pyramid?.archive;
    return openRangeTileSource(links.pyramid, { renewUrl });
  }
  if (links.dzi) {
    window.plexzoom.mode = "proxy";
    if (!token.value) return links.dzi;
    return signedDziSource(await loadDzi(links.dzi), tilesBase(links.dzi), token);
  }
  throw new Error("The image is ready but the server gave no pyramid link for it.");
}

/** Mirror the fully-loaded flag into the page and resolve `plexzoom.ready` the first time. */
function watchLoading(viewer) {
  const item = viewer.world.getItemAt(0);
  const update = (fullyLoaded) => {
    document.body.dataset.viewerReady = fullyLoaded ? "1" : "0";
    if (fullyLoaded) readiness.resolve(viewer);
  };
  item.addHandler("fully-loaded-change", (event) => update(event.fullyLoaded));
  update(item.getFullyLoaded());
}

function attach(viewer) {
  let failedTiles = 0;
  viewer.addHandler("open", () => {
    applyView(viewer, true);
    watchLoading(viewer);
  });
  viewer.addHandler("open-failed", (event) => fail(`The pyramid could not be opened: ${event.message}`));
  viewer.addHandler("tile-load-failed", (event) => {
    // Fired after every failed try; OpenSeadragon tries again (tileRetryMax) unless maxReached.
    // A private tile whose token ran out while it waited is retried with the renewed token.
    if (event.maxReached === false) return;
    failedTiles += 1;
    warn(`${failedTiles} tile${failedTiles > 1 ? "s" : ""} could not be loaded (${event.message}).`);
  });
  viewer.addHandler("animation-finish", () => writeHash(viewer));
  window.addEventListener("hashchange", () => applyView(viewer, false));
}

/** Keep the image's tile token fresh while the page is open. */
function followToken(image) {
  const token = new TileToken(image, (id) => getImage(id), {
    onError: (err) => warn(`The tile token could not be renewed: ${err.message}`),
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") token.renewIfStale();
  });
  window.plexzoom.token = token;
  return token;
}

async function openImage(image) {
  const token = followToken(image);
  let viewer;
  let tileSource;
  if (isMultiChannel(image)) {
    window.plexzoom.mode = "mix";
    // The page takes its final layout before the viewer measures itself: the panel lists the
    // channels instead of the header, and is built before the viewer (see openMixed).
    ui.channels.hidden = true;
    const mixed = await openMixed(image, ui.panel, {
      warn, token, createViewer: () => createViewer(ui.viewer, "canvas", token),
    });
    Object.assign(window.plexzoom, { mixer: mixed.compositor, panel: mixed.panel });
    ({ viewer, source: tileSource } = mixed);
  } else {
    viewer = createViewer(ui.viewer, "auto", token);
    tileSource = await tileSourceOf(image, token);
  }
  window.plexzoom.viewer = viewer;
  makeButtonsFocusable(viewer);
  addFullPageButton(viewer, ui.workspace, warn);
  attach(viewer); // before open(), so that no event is missed
  attachScaleBar(viewer, ui.scaleBar, image.physical_size);
  window.plexzoom.cursor = trackValues(viewer, image);
  viewer.open(tileSource);
  // The infobar's Info panel and Snapshot dialog; `plexzoom.snapshotRequest()` gives what it would send.
  showMetadata($("metadata"), image);
  window.plexzoom.snapshotRequest = attachSnapshot($("snapshot-open"), $("snapshot-dialog"), viewer, image);
}

/** The values under the cursor: in the channel panel (multi-channel) or the readout (RGB). */
function trackValues(viewer, image) {
  const { mixer, panel } = window.plexzoom;
  if (!mixer || !panel) {
    return attachCursorValues(viewer, image, ui.readout, { channels: () => [0, 1, 2] });
  }
  return attachCursorValues(viewer, image, ui.readout, {
    channels: () => panel.settings.channels.filter((c) => c.visible !== false).map((c) => c.index),
    approximate: (x, y) => new Map([...mixer.valuesAt(x, y)].map(([index, v]) => [index, v.value])),
    showChannels: (reading) => {
      const values = new Map([...(reading?.values || [])].map(([index, value]) => [index, { value }]));
      panel.showValues(values);
      ui.panel.dataset.valuesExact = reading && !reading.exact ? "0" : "1";
    },
  });
}

async function main() {
  const id = new URLSearchParams(window.location.search).get("id");
  if (!id) {
    ui.title.textContent = "No image";
    fail("This address names no image. Open an image from the gallery.");
    return;
  }
  try {
    let image = await getImage(id);
    showInfo(image);
    showStatus(image);
    if (isPending(image)) {
      // Events carry the state, not the whole status object: merged, then fetched once when ready.
      const last = await followImage(id, (update) => showStatus({ ...image, ...update }),
        {
          onState: (state) => {
            document.body.dataset.updates = state;
            $("view-updates").textContent = STATE_TEXT[state] ?? "";
          },
        });
      image = last.status === "ready" ? await getImage(id) : { ...image, ...last };
      showInfo(image);
      showStatus(image);
    }
    if (image.status === "ready") await openImage(image);
  } catch (err) {
    if (ui.title.textContent === "Loading…") ui.title.textContent = "Image not available";
    fail(err.message);
  }
}

main();
