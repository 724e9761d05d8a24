// @ts-check
// OpenSeadragon as view.html uses it: the viewer's options and drawer, a full-page button that keeps
// the channel panel, and zoom/home buttons the keyboard reaches. Named for the library it sets up;
// what the viewer shows is the page's choice (pages/view.js).

import { el } from "./dom.js";

/*
 * Drawer: mixed tiles are made on the CPU as 2D canvases, which OpenSeadragon's canvas drawer
 * composites as they are; the WebGL drawer uploads every tile as a texture again after each
 * settings change, which without a GPU (software WebGL) made a re-mix 5x slower (bench/mixing.py:
 * ~330 ms against ~45 ms for 4 channels at 1920x1080). Plain images keep OpenSeadragon's choice,
 * except where WebGL itself runs on the CPU (SwiftShader in headless chromium, llvmpipe, a blocked
 * GPU): there every WebGL frame costs 170-500 ms at 1400x900, nearly all of it in the copy of the
 * WebGL canvas into OpenSeadragon's 2D output canvas (the canvas drawer: under 1 ms a frame).
 * `?drawer=webgl|canvas` in the address overrides it, for comparisons.
 */

const DRAWERS = new Set(["auto", "webgl", "canvas"]);

/** True when WebGL is rendered in software (the renderer string names a CPU rasterizer). */
export function softwareWebGL(doc = document) {
  try {
    const gl = doc.createElement("canvas").getContext("webgl");
    if (!gl) return false; // no WebGL at all: OpenSeadragon falls back to canvas by itself
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension("WEBGL_lose_context")?.loseContext(); // give the context back at once
    return /swiftshader|llvmpipe|softpipe|software|basic render driver/i.test(renderer);
  } catch {
    return false;
  }
}

/**
 * A new viewer in `element`, not yet opened; `drawer` is "auto" or "canvas" (see above) and
 * `token` the image's tile token (deepzoom.js), whose presence changes how tiles are queued.
 * @param {HTMLElement} element
 * @param {string} drawer
 * @param {{value: string | null}} token
 */
export function createViewer(element, drawer, token) {
  const OSD = window.OpenSeadragon;
  const wanted = new URLSearchParams(window.location.search).get("drawer");
  if (typeof OSD !== "function") {
    throw new Error("OpenSeadragon could not be loaded from /vendor/openseadragon/; the server must serve it.");
  }
  return OSD({
    element,
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
    // OpenSeadragon starts at most this many tile downloads per animation frame (its default: 1):
    // with one, a view of 80 tiles takes 80 frames whatever the network does, which with slow
    // frames (software WebGL above) kept a first view from being fully drawn for 20-40 s.
    maxTilesPerFrame: 8,
    drawer: DRAWERS.has(wanted) ? wanted : (drawer === "auto" && softwareWebGL() ? "canvas" : drawer),
    // Private tiles: downloads wait in OpenSeadragon's queue, where they are signed when they
    // start, not in the browser's (6 connections a host), where a queued token could expire;
    // and a connection stays free for the token's renewal.
    imageLoaderLimit: token.value ? 4 : 0,
  });
}

/**
 * Full page that keeps the channel panel and the scale bar: the workspace (viewer, overlays,
 * panel) goes full screen, where OpenSeadragon's own full page would move the viewer alone.
 *
 * @param {any} viewer
 * @param {HTMLElement} workspace
 * @param {(message: string) => void} warn
 */
export function addFullPageButton(viewer, workspace, warn) {
  const button = el("button", {
    type: "button", className: "viewer-button fullpage-button", dataset: { testid: "fullpage" },
  });
  // Four corners, drawn: the "⛶" character is missing from common fonts and showed as a box.
  button.innerHTML = '<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" fill="none"'
    + ' stroke="currentColor" stroke-width="1.8"><path d="M1 5V1h4M11 1h4v4M15 11v4h-4M5 15H1v-4"/></svg>';
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
  viewer.addControl(button, { anchor: window.OpenSeadragon.ControlAnchor.TOP_RIGHT });
}

/**
 * OpenSeadragon's zoom and home buttons are plain elements that answer Enter but cannot be
 * reached with Tab: give them a place in the tab order, a role and a name, and Space too.
 */
export function makeButtonsFocusable(viewer) {
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

