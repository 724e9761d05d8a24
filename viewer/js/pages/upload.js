// @ts-check
// Upload, the page script of index.html's upper half: files go through Uppy's Dashboard in the
// server's parts (lib/resumable.js), resuming by themselves after a dropped network and, once
// chosen again, after a reload; then each image's conversion is followed through the event stream
// (polling without one) and announced to the gallery.

import { describeStatus, formatBytes, getImage, getUpload, isPending, listFormats, pollImage } from "../lib/api.js";
import { followEvents } from "../lib/events.js";
import { createUploader } from "../lib/resumable.js";
import { isTransient } from "../lib/uploadparts.js";

const $ = (id) => document.getElementById(id);
const ui = {
  input: /** @type {HTMLInputElement} */ ($("file-input")),
  uploader: $("uploader"),
  note: $("resume-note"),
  state: $("upload-state"),
  label: $("upload-label"),
  progress: /** @type {HTMLProgressElement} */ ($("upload-progress")),
  status: $("upload-status"),
  error: $("upload-error"),
  open: /** @type {HTMLAnchorElement} */ ($("upload-open")),
  list: $("upload-images"),
  formats: $("formats-hint"),
};
/** Images uploaded from this page, by id: the file's name and the image's last known status. */
const images = new Map();
let lastId = null; // the image the bar follows once no file is uploading
let follower = null; // stops the event stream of the images still converting
const uppy = createUploader({ target: ui.uploader, onUploaded });

/** Tell the gallery an image appeared or changed. */
function announce(image) {
  document.dispatchEvent(new CustomEvent("plexzoom:image", { detail: image }));
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

/** Files whose bytes are being sent (started, not complete, not failed). */
function sending() {
  return uppy.getFiles().filter((f) => f.progress.uploadStarted && !f.progress.uploadComplete && !f.error);
}

/** The bar: bytes sent while any file is uploading, else the conversion of the last image. */
function showBar() {
  const files = sending();
  if (files.length) {
    const total = files.reduce((n, f) => n + (f.size || 0), 0);
    const loaded = files.reduce((n, f) => n + (f.progress.bytesUploaded || 0), 0);
    const fraction = total ? loaded / total : 0;
    ui.state.hidden = false;
    ui.state.dataset.status = "uploading";
    ui.label.textContent = files.length > 1 ? `Uploading ${files.length} files` : `Uploading ${files[0].name}`;
    ui.progress.value = fraction;
    const state = files.every((f) => f.isPaused) ? "paused" : "uploading";
    ui.status.textContent =
      `${state}: ${formatBytes(loaded)} of ${formatBytes(total)} sent (${Math.round(fraction * 100)}%)`;
    return;
  }
  const entry = images.get(lastId);
  if (entry) showImage(entry);
}

function showImage({ name, image }) {
  ui.state.hidden = false;
  ui.state.dataset.status = image.status;
  ui.progress.value = image.status === "ready" ? 1 : image.progress || 0;
  ui.status.textContent = describeStatus(image);
  ui.label.textContent = image.status === "ready" ? `${name} is ready` : `Converting ${name}`;
  if (image.status === "failed") {
    ui.label.textContent = `Could not convert ${name}`;
    showError(image.error || "The conversion failed.");
  }
  ui.open.hidden = image.status !== "ready";
  ui.open.href = viewerLink(image);
}

function viewerLink(image) {
  return image.links?.viewer || `/view.html?id=${encodeURIComponent(image.id)}`;
}

/** The image's line in the list under the bar: name, status, and its viewer link once ready. */
function renderItem({ name, image }) {
  let item = /** @type {HTMLElement | null} */ (ui.list.querySelector(`[data-image-id="${CSS.escape(image.id)}"]`));
  if (!item) {
    item = document.createElement("li");
    item.dataset.imageId = image.id;
    const title = Object.assign(document.createElement("span"), { className: "name", textContent: name });
    const status = Object.assign(document.createElement("span"), { className: "status" });
    const open = Object.assign(document.createElement("a"), { textContent: "Open in viewer", hidden: true });
    open.dataset.testid = "upload-image-open";
    item.append(title, status, open);
    ui.list.append(item);
  }
  item.dataset.status = image.status;
  item.querySelector(".status").textContent =
    image.status === "failed" ? `failed: ${image.error || "the conversion failed"}` : describeStatus(image);
  const open = item.querySelector("a");
  open.hidden = image.status !== "ready";
  open.href = viewerLink(image);
}

/** A file's bytes are all stored and the server queued its conversion. */
function onUploaded(file, image) {
  images.set(image.id, { name: file.name, image });
  lastId = image.id;
  announce(image);
  renderItem(images.get(image.id));
  showBar();
  followPending();
}

/** A new state of an uploaded image (a stream event or a polled status object). */
function update(data) {
  const entry = images.get(data.id);
  if (!entry) return;
  entry.image = { ...entry.image, ...data };
  renderItem(entry);
  if (data.id === lastId && !sending().length) showImage(entry);
  // Polled updates are whole status objects the gallery can show; with the stream, the gallery
  // follows the stream itself.
  if (data.links) announce(entry.image);
  if (![...images.values()].some((e) => isPending(e.image))) {
    follower?.abort();
    follower = null;
  }
}

/** One event stream for every uploaded image still converting (a new upload restarts it). */
function followPending() {
  follower?.abort();
  follower = null;
  const ids = [...images.values()].filter((e) => isPending(e.image)).map((e) => e.image.id);
  if (!ids.length) return;
  const stop = new AbortController();
  follower = stop;
  const refresh = () => ids.forEach((id) => getImage(id, { signal: stop.signal }).then(update, () => {}));
  followEvents({
    images: ids,
    signal: stop.signal,
    onEvent: ({ type, data }) => {
      if (type === "deleted") update({ id: data.id, status: "failed", error: "This image was deleted." });
      else update(data);
    },
    onReset: refresh, // the conversion may have moved on before the stream opened
    onState: (state) => {
      ui.state.dataset.updates = state;
      if (state === "polling") {
        ids.forEach((id) => pollImage(id, update, { signal: stop.signal }).catch(() => {}));
      }
    },
  });
}

/**
 * After a reload: files whose bytes the browser did not keep (large ones) must be chosen again;
 * say which, and how far each got. Once none is missing, the uploads resume by themselves.
 */
async function showRecovery() {
  if (!uppy.getState().recoveredState) {
    ui.note.hidden = true;
    return;
  }
  const ghosts = uppy.getFiles().filter((f) => f.isGhost);
  if (!ghosts.length) {
    ui.note.hidden = true;
    uppy.emit("restore-confirmed");
    return;
  }
  const lines = await Promise.all(ghosts.map(describeGhost));
  if (!uppy.getState().recoveredState) return;
  ui.note.textContent = lines.join(" ");
  ui.note.hidden = false;
}

/** "Choose slide.tif again to resume: 12 of 40 parts are stored." */
async function describeGhost(file) {
  const id = file.s3Multipart?.uploadId;
  if (!id) return `Choose ${file.name} again to resume its upload.`;
  try {
    const state = await getUpload(id);
    return `Choose ${file.name} again to resume: ${state.stored.length} of ${state.parts} parts are stored.`;
  } catch (err) {
    if (err.status !== 404) return `Choose ${file.name} again to resume its upload.`;
    uppy.removeFile(file.id); // cancelled or expired: the parts are gone
    return `The server no longer holds the upload of ${file.name} (cancelled or expired): choose it again to upload it anew.`;
  }
}

function onFilesAdded(files) {
  showError("");
  if (uppy.getState().recoveredState) showRecovery();
  // Files chosen again after a reload resume with the restored upload; new ones start now.
  if (files.some((f) => !f.isRestored)) uppy.upload().catch(() => {});
}

function onUploadError(file, error) {
  if (!file) return;
  if (isTransient(error)) {
    ui.status.textContent = `connection lost: ${file.name} resumes by itself`;
    return;
  }
  ui.state.hidden = false;
  showError(`Could not upload ${file.name}: ${error?.message || "the upload failed"}`);
  if (sending().length) return; // the bar goes on with the others
  ui.state.dataset.status = "failed";
  ui.label.textContent = `Could not upload ${file.name}`;
  ui.status.textContent = "upload failed";
}

/** The formats the server takes, from the server (GET /v1/formats): one list for every page. */
async function showFormats() {
  try {
    const { formats } = await listFormats();
    const labels = formats.map((f) => f.label);
    ui.formats.textContent = `${labels.slice(0, -1).join(", ")} or ${labels.at(-1)}. ` +
      "Files are recognised by their content, whatever their name. Images of many gigabytes are fine.";
    ui.formats.title = formats.map((f) => `${f.label}: ${f.extensions.join(" ")}`).join("\n");
  } catch {
    // the page works without the list; the server names the formats when it refuses a file
  }
}

function init() {
  showFormats();
  // A file dropped beside the Dashboard must not make the browser navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  ui.input.addEventListener("change", () => {
    const files = [...ui.input.files];
    ui.input.value = "";
    // Uppy tells in the Dashboard about a file it refuses (one already in the list, say).
    uppy.addFiles(files.map((file) => ({ name: file.name, type: file.type, data: file, source: "file-input" })));
  });
  uppy.on("files-added", onFilesAdded);
  uppy.on("restored", () => showRecovery());
  uppy.on("file-removed", () => showRecovery());
  uppy.on("upload-progress", showBar);
  for (const event of ["upload-pause", "pause-all", "resume-all"]) uppy.on(event, () => setTimeout(showBar));
  uppy.on("upload-success", showBar);
  uppy.on("upload-error", onUploadError);
  uppy.on("upload-retry", () => showError(""));
}

init();
