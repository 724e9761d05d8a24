// @ts-check
// The Snapshot dialog: the part of the image in view as a PNG made by the server
// (GET /v1/images/{id}/snapshot), at screen size, full resolution or a chosen width, with the
// scale bar and the channel legend burned in.

import { getSnapshot, isMultiChannel } from "./api.js";
import { el } from "./dom.js";
import { settingsToQuery } from "./render.js";

/**
 * The part of the image in view, in full-resolution pixels and clipped to the image:
 * {x, y, w, h}, or null while no image is open or none of it is in view.
 */
export function visibleRegion(viewer, image) {
  if (!viewer?.world.getItemCount()) return null;
  const viewport = viewer.viewport;
  const rect = viewport.viewportToImageRectangle(viewport.getBounds(true));
  const left = Math.max(0, Math.floor(rect.x));
  const top = Math.max(0, Math.floor(rect.y));
  const right = Math.min(image.width, Math.ceil(rect.x + rect.width));
  const bottom = Math.min(image.height, Math.ceil(rect.y + rect.height));
  return right > left && bottom > top ? { x: left, y: top, w: right - left, h: bottom - top } : null;
}

/** The width `region` has on screen in device pixels, never above full resolution. */
export function screenWidth(viewer, region) {
  const zoom = viewer.viewport.viewportToImageZoom(viewer.viewport.getZoom(true));
  const px = Math.round(region.w * zoom * (window.devicePixelRatio || 1));
  return Math.max(1, Math.min(region.w, px));
}

/** The height the server gives a `width`-wide snapshot of `region` (Python's round: half to even). */
export function snapshotHeight(region, width) {
  const exact = (region.h * width) / region.w;
  let rounded = Math.round(exact);
  if (exact % 1 === 0.5 && rounded % 2 === 1) rounded -= 1;
  return Math.max(1, rounded);
}

/** The render query's `c` value for the current channel settings; null for RGB and greyscale images. */
function renderValue() {
  const settings = window.plexzoom.mixer?.settings ?? window.plexzoom.panel?.settings;
  return settings ? settingsToQuery(settings).replace(/^c=/, "") : null;
}

/** Save `blob` as a download named `filename`. */
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000); // the download has started by then
}

/** The dialog's controls, by role. */
function controlsOf(dialog) {
  const q = (selector) => dialog.querySelector(selector);
  return {
    form: /** @type {HTMLFormElement} */ (q("form")),
    custom: /** @type {HTMLInputElement} */ (q('[name="snapshot-custom-width"]')),
    scaleBar: /** @type {HTMLInputElement} */ (q('[name="snapshot-scalebar"]')),
    legend: /** @type {HTMLInputElement} */ (q('[name="snapshot-legend"]')),
    screenHint: q('[data-role="screen"]'),
    fullHint: q('[data-role="full"]'),
    size: /** @type {HTMLElement} */ (q(".snapshot-size")),
    error: /** @type {HTMLElement} */ (q(".snapshot-error")),
    download: /** @type {HTMLButtonElement} */ (q('[data-testid="snapshot-download"]')),
  };
}

/** Snapshot button and dialog of one open image. */
export class SnapshotDialog {
  /**
   * @param {HTMLDialogElement} dialog the dialog of view.html
   * @param {any} viewer the OpenSeadragon viewer
   * @param {{id: string, width: number, height: number, physical_size?: any, channels?: any[]}} image
   */
  constructor(dialog, viewer, image) {
    this.dialog = dialog;
    this.viewer = viewer;
    this.image = image;
    this.region = null; // taken when the dialog opens: the modal dialog keeps the view still
    this.busy = false;
    this.ui = controlsOf(dialog);
    const { scaleBar, legend, form } = this.ui;
    scaleBar.disabled = !image.physical_size;
    scaleBar.title = scaleBar.disabled ? "The image's pixel size is unknown" : "";
    legend.disabled = !isMultiChannel(image);
    legend.title = legend.disabled ? "Only images with channels have a legend" : "";
    form.addEventListener("input", (event) => this.changed(event.target));
    form.addEventListener("submit", (event) => {
      event.preventDefault(); // Enter in the width field downloads too
      this.save();
    });
    dialog.querySelector('[data-testid="snapshot-close"]').addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { this.region = null; }); // the next opening takes the view afresh
  }

  /** Open the dialog on the current view. */
  open() {
    this.region = visibleRegion(this.viewer, this.image);
    this.ui.error.hidden = true;
    this.refresh();
    this.dialog.showModal();
  }

  /** "screen", "full" or "custom". */
  choice() {
    const radio = /** @type {RadioNodeList} */ (this.ui.form.elements.namedItem("snapshot-width"));
    return radio.value;
  }

  changed(target) {
    const { custom } = this.ui;
    if (target === custom) this.select("custom");
    else if (target.value === "custom" && !custom.value && this.region) {
      custom.value = String(screenWidth(this.viewer, this.region));
    }
    this.ui.error.hidden = true;
    this.refresh();
  }

  select(value) {
    const radio = this.ui.form.querySelector(`[name="snapshot-width"][value="${value}"]`);
    /** @type {HTMLInputElement} */ (radio).checked = true;
  }

  /** The width chosen for `region`, or NaN when the custom one is not a whole number. */
  width(region) {
    const choice = this.choice();
    if (choice === "full") return region.w;
    if (choice === "custom") {
      const value = Number(this.ui.custom.value);
      return Number.isInteger(value) && value >= 1 ? value : NaN;
    }
    return screenWidth(this.viewer, region);
  }

  /** What Download sends: {id, x, y, w, h, width, c, scalebar, legend}, or null without a view. */
  request() {
    const region = this.region ?? visibleRegion(this.viewer, this.image);
    if (!region) return null;
    const { scaleBar, legend } = this.ui;
    return {
      id: this.image.id, ...region, width: this.width(region), c: renderValue(),
      scalebar: scaleBar.checked && !scaleBar.disabled, legend: legend.checked && !legend.disabled,
    };
  }

  /** Show the sizes the choices make, and whether Download can run. */
  refresh() {
    const request = this.request();
    const { size, screenHint, fullHint, download } = this.ui;
    let problem = "";
    if (!request) problem = "No part of the image is in view.";
    else if (Number.isNaN(request.width)) problem = "Enter the width as a whole number of pixels.";
    else if (request.c === "") problem = "No channel is shown; show one to make a snapshot.";
    if (request) {
      screenHint.textContent = `(${screenWidth(this.viewer, request)} px wide)`;
      fullHint.textContent = `(${request.w} px wide)`;
      this.ui.custom.placeholder = String(request.w);
    }
    const height = request && !problem ? snapshotHeight(request, request.width) : 0;
    size.textContent = problem || `Makes ${request.width} × ${height} px`;
    Object.assign(size.dataset, { width: problem ? "" : String(request.width), height: String(height || "") });
    download.disabled = this.busy || Boolean(problem);
  }

  setBusy(busy) {
    this.busy = busy;
    const { form, download } = this.ui;
    form.setAttribute("aria-busy", String(busy));
    download.textContent = busy ? "Rendering…" : "Download";
    this.refresh();
  }

  /** Fetch the PNG and save it as plexzoom-<id>.png; the server's refusal is shown in the dialog. */
  async save() {
    const request = this.request();
    if (!request || this.busy) return;
    this.setBusy(true);
    try {
      const blob = await getSnapshot(this.image.id, request);
      saveBlob(blob, `plexzoom-${this.image.id}.png`);
      this.dialog.close();
    } catch (err) {
      this.ui.error.textContent = err.message;
      this.ui.error.hidden = false;
    } finally {
      this.setBusy(false);
    }
  }
}

/**
 * Show the Snapshot `button` and let it open `dialog` on the current view; gives a function that
 * returns the request Download would send now (for tests and the console).
 */
export function attachSnapshot(button, dialog, viewer, image) {
  const snapshot = new SnapshotDialog(dialog, viewer, image);
  button.addEventListener("click", () => snapshot.open());
  button.hidden = false;
  return () => snapshot.request();
}
