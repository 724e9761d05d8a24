// @ts-check
// The shareable state in the URL hash: #x=<image px>&y=<image px>&z=<screen px per image px>&c=<render>.

/*
 * x, y: the image pixel at the centre of the view; z: screen pixels per image pixel. c: the
 * render settings of multi-channel images in render.js's query encoding (visible channels as
 * index:colour:min:max:gamma), absent for plain images. Nothing else goes into the URL.
 */

let renderQuery = ""; // "c=..." of the current render settings, "" for plain images
let pendingWrite = null;
const WRITE_DELAY_MS = 200; // a dragged slider changes the settings at 60 Hz; browsers throttle history calls

/** The hash's parameters. */
export function hashParams() {
  return new URLSearchParams(window.location.hash.slice(1));
}

/** {x, y, z} from the hash, or null when it holds no complete, valid view. */
export function readView() {
  const params = hashParams();
  const state = { x: Number(params.get("x")), y: Number(params.get("y")), z: Number(params.get("z")) };
  const valid = ["x", "y", "z"].every((k) => params.has(k) && Number.isFinite(state[k])) && state.z > 0;
  return valid ? state : null;
}

function round(value, digits) {
  return Number(value.toPrecision(digits));
}

function currentView(viewer) {
  const viewport = viewer.viewport;
  const center = viewport.viewportToImageCoordinates(viewport.getCenter(true));
  const z = viewport.viewportToImageZoom(viewport.getZoom(true));
  const decimals = z > 1 ? 1 : 0; // a tenth of a pixel is visible when zoomed in past 100%
  return { x: Number(center.x.toFixed(decimals)), y: Number(center.y.toFixed(decimals)), z: round(z, 4) };
}

/** Replace the hash with the viewer's view and the current render query (no history entry). */
export function writeHash(viewer) {
  let hash = "";
  if (viewer?.world.getItemCount()) {
    const view = currentView(viewer);
    hash = `x=${view.x}&y=${view.y}&z=${view.z}`;
  } else {
    const view = readView();
    if (view) hash = `x=${view.x}&y=${view.y}&z=${view.z}`;
  }
  if (renderQuery) hash += `${hash ? "&" : ""}${renderQuery}`;
  if (`#${hash}` !== window.location.hash) history.replaceState(history.state, "", `#${hash}`);
}

/** Remember the render query ("c=..." or "") that writeHash puts into the URL, and put it there soon. */
export function setRenderQuery(query, viewer) {
  renderQuery = query;
  clearTimeout(pendingWrite);
  pendingWrite = setTimeout(() => writeHash(viewer), WRITE_DELAY_MS);
}

/** Move the viewer to the hash's view; false when the hash has none. */
export function applyView(viewer, immediately) {
  const state = readView();
  if (!state) return false;
  const viewport = viewer.viewport;
  viewport.zoomTo(viewport.imageToViewportZoom(state.z), null, immediately);
  viewport.panTo(viewport.imageToViewportCoordinates(state.x, state.y), immediately);
  return true;
}
