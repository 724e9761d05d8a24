// Viewer page: follow one image until it is ready, open it in OpenSeadragon (multi-channel images mixed
// live, with the channel panel: mixview.js), keep the view and the channel settings in the URL hash.

import { describeStatus, formatBytes, formatDimensions, getImage, isPending, pollImage } from "./api.js";
import { isMultiChannel, openMixed } from "./mixview.js";
import { loadDzi, tilesBase } from "./mixsource.js";
import { openRangeTileSource } from "./rangetiles.js";
import { attachScaleBar } from "./scalebar.js";
import { TileToken, signedDziSource } from "./tiletoken.js";
import { applyView, writeHash } from "./viewstate.js";

const OSD = window.OpenSeadragon;
const $ = (id) => document.getElementById(id);
const ui = {
  title: $("view-title"),
  details: $("view-details"),
  channels: $("view-channels"),
  status: $("view-status"),
  progressPanel: $("view-progress-panel"),
  progressLabel: $("view-progress-label"),
  progress: $("view-progress"),
  error: $("view-error"),
  warning: $("view-warning"),
  panel: $("channel-panel"),
  scaleBar: $("scalebar"),
};

// For tests and the console: `await plexzoom.ready` resolves (with the viewer) once the first view
// is fully drawn; document.body.dataset.viewerReady is "1" whenever the current view is fully drawn.
const readiness = {};
window.plexzoom = {
  viewer: null,
  image: null,
  mode: null, // "proxy" (links.dzi), "range" (links.pyramid) or "mix" (channels mixed live)
  mixer: null, // in "mix" mode: `await plexzoom.mixer.idle()` waits for a settings change to be drawn
  token: null, // the tile token of a private image, renewed before it expires (tiletoken.js)
  panel: null,
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
  const item = document.createElement("li");
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  swatch.style.backgroundColor = channel.color; // an invalid colour is simply ignored
  item.append(swatch, channel.name || `Channel ${channel.index}`);
  item.title = `Channel ${channel.index}`;
  return item;
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

// --- OpenSeadragon ---

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

/*
 * Drawer: mixed tiles are made on the CPU as 2D canvases, which OpenSeadragon's canvas drawer
 * composites as they are; the WebGL drawer uploads every tile as a texture again after each
 * settings change, which without a GPU (software WebGL) made a re-mix 5x slower (bench/mixing.py:
 * ~330 ms against ~45 ms for 4 channels at 1920x1080). Plain images keep OpenSeadragon's choice.
 * `?drawer=webgl|canvas` in the address overrides it, for comparisons.
 */
const DRAWERS = new Set(["auto", "webgl", "canvas"]);

function createViewer(drawer, token) {
  const wanted = new URLSearchParams(window.location.search).get("drawer");
  if (typeof OSD !== "function") {
    throw new Error("OpenSeadragon could not be loaded from /vendor/openseadragon/; the server must serve it.");
  }
  return OSD({
    element: $("viewer"),
    prefixUrl: "/vendor/openseadragon/images/",
    showNavigator: true,
    navigatorPosition: "BOTTOM_RIGHT",
    navigatorAutoFade: false,
    showRotationControl: false,
    showFullPageControl: false, // OpenSeadragon's full page hides the channel panel: see addFullPageButton()
    crossOriginPolicy: "Anonymous",
    ajaxWithCredentials: false,
    maxZoomPixelRatio: 2,
    visibilityRatio: 0.5,
    // Folding the channel panel or resizing the window keeps the image's scale (screen px per
    // image px, the z of a shared link) and centre, rather than the share of the image in view.
    preserveImageSizeOnResize: true,
    tileRetryMax: 2,
    tileRetryDelay: 500,
    drawer: DRAWERS.has(wanted) ? wanted : drawer,
    // Private tiles: downloads wait in OpenSeadragon's queue, where they are signed when they
    // start, not in the browser's (6 connections a host), where a queued token could expire;
    // and a connection stays free for the token's renewal.
    imageLoaderLimit: token.value ? 4 : 0,
  });
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

/**
 * Full page that keeps the channel panel and the scale bar: the workspace (viewer, overlays,
 * panel) goes full screen, where OpenSeadragon's own full page would move the viewer alone.
 */
function addFullPageButton(viewer) {
  const workspace = document.querySelector(".workspace");
  const button = document.createElement("button");
  Object.assign(button, { type: "button", className: "viewer-button fullpage-button", textContent: "⛶" });
  button.dataset.testid = "fullpage";
  const label = () => (document.fullscreenElement ? "Leave full page" : "Full page");
  const update = () => {
    button.title = label();
    button.setAttribute("aria-label", label());
    button.setAttribute("aria-pressed", String(Boolean(document.fullscreenElement)));
  };
  button.addEventListener("click", () => {
    const done = document.fullscreenElement ? document.exitFullscreen() : workspace.requestFullscreen();
    done.catch((err) => warn(`Full page is not available here: ${err.message}`));
  });
  document.addEventListener("fullscreenchange", update);
  update();
  viewer.addControl(button, { anchor: OSD.ControlAnchor.TOP_RIGHT });
}

/**
 * OpenSeadragon's zoom and home buttons are plain elements that answer Enter but cannot be
 * reached with Tab: give them a place in the tab order, a role and a name, and Space too.
 */
function makeButtonsFocusable(viewer) {
  for (const button of viewer.buttonGroup?.buttons || []) {
    const { element } = button;
    element.tabIndex = 0;
    element.setAttribute("role", "button");
    element.setAttribute("aria-label", element.title);
    element.addEventListener("keydown", (event) => {
      if (event.key !== " ") return;
      event.preventDefault();
      button.raiseEvent("click", { originalEvent: event }); // zoom in and out act on click,
      button.raiseEvent("release", { originalEvent: event }); // Home on release (as Enter does)
    });
  }
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
      warn, token, createViewer: () => createViewer("canvas", token),
    });
    Object.assign(window.plexzoom, { mixer: mixed.mixer, panel: mixed.panel });
    ({ viewer, source: tileSource } = mixed);
  } else {
    viewer = createViewer("auto", token);
    tileSource = await tileSourceOf(image, token);
  }
  window.plexzoom.viewer = viewer;
  makeButtonsFocusable(viewer);
  addFullPageButton(viewer);
  attach(viewer); // before open(), so that no event is missed
  attachScaleBar(viewer, ui.scaleBar, image.physical_size);
  viewer.open(tileSource);
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
      image = await pollImage(id, (update) => {
        showInfo(update);
        showStatus(update);
      });
    }
    if (image.status === "ready") await openImage(image);
  } catch (err) {
    if (ui.title.textContent === "Loading…") ui.title.textContent = "Image not available";
    fail(err.message);
  }
}

main();
