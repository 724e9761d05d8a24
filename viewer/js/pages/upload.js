// @ts-check
// Upload, the page script of index.html's upper half: drag-and-drop or pick files, send them with a
// byte progress bar, then follow the conversion through the event stream (polling without one).

import { describeStatus, formatBytes, isPending, listFormats, uploadImage } from "../lib/api.js";
import { followImage } from "../lib/events.js";

const $ = (id) => document.getElementById(id);
const ui = {
  zone: $("drop-zone"),
  input: /** @type {HTMLInputElement} */ ($("file-input")),
  state: $("upload-state"),
  label: $("upload-label"),
  progress: /** @type {HTMLProgressElement} */ ($("upload-progress")),
  status: $("upload-status"),
  error: $("upload-error"),
  open: /** @type {HTMLAnchorElement} */ ($("upload-open")),
  cancel: $("upload-cancel"),
  formats: $("formats-hint"),
};
let busy = false;
let currentUpload = null;
let pollAbort = null;

/** Tell the gallery an image appeared or changed. */
function announce(image) {
  document.dispatchEvent(new CustomEvent("plexzoom:image", { detail: image }));
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function resetState() {
  ui.state.hidden = false;
  ui.open.hidden = true;
  showError("");
  ui.progress.value = 0;
  ui.state.dataset.status = "uploading";
}

function showBytes(label, loaded, total) {
  const fraction = total ? loaded / total : 0;
  ui.progress.value = fraction;
  ui.status.textContent =
    `uploading: ${formatBytes(loaded)} of ${formatBytes(total)} sent (${Math.round(fraction * 100)}%)`;
  ui.label.textContent = label;
}

function showImage(image) {
  ui.state.dataset.status = image.status;
  ui.progress.value = image.status === "ready" ? 1 : image.progress || 0;
  ui.status.textContent = describeStatus(image);
  if (image.status === "failed") {
    ui.label.textContent = `Could not convert ${image.filename || "the image"}`;
    showError(image.error || "The conversion failed.");
  }
  if (image.status === "ready") {
    ui.open.href = image.links?.viewer || `/view.html?id=${encodeURIComponent(image.id)}`;
    ui.open.hidden = false;
  }
}

/** Send one file; resolves with the status object the API answers. */
async function sendFile(file, label) {
  showBytes(label, 0, file.size);
  currentUpload = uploadImage(file, (loaded, total) => showBytes(label, loaded, total));
  ui.cancel.hidden = false;
  try {
    return await currentUpload.promise;
  } finally {
    ui.cancel.hidden = true;
    currentUpload = null;
  }
}

/** Follow the conversion of the last uploaded image in the same bar. */
async function followConversion(image, filename) {
  ui.label.textContent = `Converting ${filename}`;
  showImage(image);
  announce(image);
  if (!isPending(image)) return;
  pollAbort = new AbortController();
  try {
    const last = await followImage(image.id, (update) => {
      showImage(update);
      // Polled updates are whole status objects the gallery can show; with the stream, the
      // gallery follows the stream itself.
      if (update.links) announce(update);
    }, { signal: pollAbort.signal, onState: (state) => { ui.state.dataset.updates = state; } });
    if (last.status === "ready") ui.label.textContent = `${filename} is ready`;
  } catch (err) {
    if (err?.name !== "AbortError") showError(err.message);
  }
}

/** Upload the files one after another; the bar then follows the conversion of the last one. */
async function uploadFiles(files) {
  if (busy || !files.length) return;
  const last = await sendAll(files);
  if (last) await followConversion(last.image, last.name);
}

/** Send every file; resolves with the last `{image, name}`, or null after an error (shown). */
async function sendAll(files) {
  busy = true;
  pollAbort?.abort();
  ui.zone.classList.add("is-busy");
  ui.input.disabled = true;
  resetState();
  let name = "";
  try {
    let last = null;
    for (const [i, file] of files.entries()) {
      name = file.name;
      const counter = files.length > 1 ? ` (${i + 1} of ${files.length})` : "";
      const image = await sendFile(file, `Uploading ${name}${counter}`);
      announce(image);
      last = { image, name };
    }
    return last;
  } catch (err) {
    ui.state.dataset.status = "failed";
    ui.label.textContent = `Could not upload ${name}`;
    ui.status.textContent = "upload failed";
    showError(err.message);
    return null;
  } finally {
    ui.zone.classList.remove("is-busy");
    ui.input.disabled = false;
    busy = false;
  }
}

function onDrag(event) {
  if (!event.dataTransfer?.types.includes("Files")) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = busy ? "none" : "copy";
  ui.zone.classList.add("is-over");
}

function onDragLeave(event) {
  if (!ui.zone.contains(event.relatedTarget)) ui.zone.classList.remove("is-over");
}

function onDrop(event) {
  event.preventDefault();
  ui.zone.classList.remove("is-over");
  uploadFiles([...(event.dataTransfer?.files || [])]);
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
  ui.zone.addEventListener("dragenter", onDrag);
  ui.zone.addEventListener("dragover", onDrag);
  ui.zone.addEventListener("dragleave", onDragLeave);
  ui.zone.addEventListener("drop", onDrop);
  // A file dropped beside the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  ui.input.addEventListener("change", () => {
    const files = [...ui.input.files];
    ui.input.value = "";
    uploadFiles(files);
  });
  ui.cancel.addEventListener("click", () => currentUpload?.abort());
}

init();
