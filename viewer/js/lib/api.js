// @ts-check
// Fetch helpers for the plexzoom HTTP API (/v1/images) and small shared formatting helpers.

export const POLL_MS = 500;
const PENDING = new Set(["uploading", "queued", "processing"]);

/** An HTTP error whose message is the API's `detail` text, fit to show to the user. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** True while an image is still being uploaded or converted. */
export function isPending(image) {
  return PENDING.has(image.status);
}

/** The user-facing message of an error answer: its JSON `detail`, else a generic line. */
export function errorMessage(status, bodyText) {
  try {
    const detail = JSON.parse(bodyText).detail;
    if (typeof detail === "string" && detail) return detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  } catch {
    // not JSON: fall through
  }
  if (status === 0) return "The server could not be reached. Check your connection and try again.";
  return `The server answered ${status}${bodyText ? `: ${bodyText.slice(0, 200)}` : "."}`;
}

// --- API key: asked for once, kept for this browser tab's session, sent only as a header ---

const KEY_ITEM = "plexzoom.apiKey";
const KEY_TRIES = 3;
let asking = null;

/** The API key of this session, or null. Never put into a URL. */
export function storedKey() {
  try {
    return window.sessionStorage.getItem(KEY_ITEM);
  } catch {
    return null; // storage disabled: the key is asked for again
  }
}

function storeKey(key) {
  try {
    if (key) window.sessionStorage.setItem(KEY_ITEM, key);
    else window.sessionStorage.removeItem(KEY_ITEM);
  } catch {
    // storage disabled: nothing to keep
  }
}

/** Ask the user for a key (one question at a time, however many requests were refused). */
function askForKey(rejected) {
  asking ??= Promise.resolve().then(() => {
    const question = rejected
      ? "This API key was not accepted. Enter a plexzoom API key:"
      : "This plexzoom server needs an API key. Enter it (it is kept until you close this tab):";
    const key = window.prompt(question, "")?.trim() || null;
    storeKey(key);
    return key;
  }).finally(() => {
    asking = null;
  });
  return asking;
}

/** Headers of an API call: JSON, and the session's key when there is one. */
function apiHeaders(extra = {}) {
  const key = storedKey();
  return { Accept: "application/json", ...extra, ...(key ? { Authorization: `Bearer ${key}` } : {}) };
}

async function request(url, options = {}) {
  const response = await send(url, options);
  return response.status === 204 ? null : response.json();
}

/** Fetch `url` with the session's key (asked for on 401); the Response when it is ok, else ApiError. */
async function send(url, options = {}) {
  for (let attempt = 1; ; attempt += 1) {
    const sentKey = storedKey();
    let response;
    try {
      response = await fetch(url, { ...options, headers: apiHeaders(options.headers) });
    } catch {
      throw new ApiError(0, errorMessage(0, ""));
    }
    if (response.status === 401 && attempt <= KEY_TRIES) {
      discard(response);
      // Another request may have got a key meanwhile; else ask the user.
      if (storedKey() !== sentKey || (await askForKey(Boolean(sentKey)))) continue;
      throw new ApiError(401, "This server needs an API key; reload the page to enter one.");
    }
    if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, await response.text()));
    return response;
  }
}

/** GET `url` as a Blob (an image the API renders), with the session's key. */
async function requestBlob(url, options = {}) {
  let response;
  try {
    response = await fetch(url, { ...options, headers: apiHeaders({ Accept: "image/png" }) });
  } catch {
    throw new ApiError(0, errorMessage(0, ""));
  }
  if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, await response.text()));
  return response.blob();
}

function discard(response) {
  response.body?.cancel().catch(() => {});
}

/** GET /v1/images/{id}: the status object of one image. */
export function getImage(id, options = {}) {
  return request(`/v1/images/${encodeURIComponent(id)}`, options);
}

/**
 * GET /v1/events as a streaming Response (Server-Sent Events; lib/events.js reads it): every
 * image's events, or only those of `images`; `lastEventId` resumes after that event.
 * @param {{images?: string[], lastEventId?: string, signal?: AbortSignal}} [options]
 */
export function openEvents({ images = [], lastEventId, signal } = {}) {
  const query = new URLSearchParams(images.map((id) => ["image", id]));
  const headers = { Accept: "text/event-stream", ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) };
  return send(`/v1/events${images.length ? `?${query}` : ""}`, { headers, signal, cache: "no-store" });
}

/** GET /v1/images: one newest-first page, `{images, next_cursor}`. */
export function listImages({ limit = 24, cursor = null } = {}) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  return request(`/v1/images?${query}`);
}

/** GET /v1/formats: `{formats: [{name, media_type, label, extensions}]}`. */
export function listFormats() {
  return request("/v1/formats");
}

/** DELETE /v1/images/{id}. */
export function deleteImage(id) {
  return request(`/v1/images/${encodeURIComponent(id)}`, { method: "DELETE" });
}

/**
 * POST /v1/images with the file as multipart field `file`, through XMLHttpRequest so that
 * bytes sent can be reported. Returns `{promise, abort}`; the promise gives the status object.
 * @param {File} file
 * @param {(loaded: number, total: number) => void} [onProgress]
 */
export function uploadImage(file, onProgress = () => {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", "/v1/images");
    for (const [name, value] of Object.entries(apiHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError(xhr.status, "The server sent an answer that is not JSON."));
        }
      } else {
        reject(new ApiError(xhr.status, errorMessage(xhr.status, xhr.responseText)));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, errorMessage(0, "")));
    xhr.onabort = () => reject(new ApiError(0, "The upload was cancelled."));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// --- resumable uploads (/v1/uploads): the file is sent in parts to URLs the server signs ---

/**
 * POST /v1/uploads: start a resumable upload of `size` bytes whose parts carry CRC-32s (each
 * part is signed, and the upload completed, with its CRC-32); the answer gives its `id` (the
 * image id), `part_size` and `parts`.
 * @param {{size: number, name?: string, type?: string}} file
 */
export function createUpload({ size, name, type }) {
  return request("/v1/uploads", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      size, name: name?.slice(0, 255) || null, type: type || null, checksum: "crc32",
    }),
  });
}

/**
 * POST /v1/uploads/{id}/parts with each part's CRC-32 (base64), which is signed into its URL:
 * `{parts: [{number, url, size, headers}], expires_in}`; the PUT must send `headers`.
 * @param {string} id
 * @param {{number: number, crc32: string}[]} parts
 * @param {AbortSignal} [signal]
 */
export function signUploadParts(id, parts, signal) {
  return request(`/v1/uploads/${encodeURIComponent(id)}/parts`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ parts }),
    signal,
  });
}

/** GET /v1/uploads/{id}: the upload's layout and its `stored` parts `[{number, size, etag}]`. */
export function getUpload(id, { signal = undefined } = {}) {
  return request(`/v1/uploads/${encodeURIComponent(id)}`, { signal, cache: "no-store" });
}

/**
 * POST /v1/uploads/{id}/complete with every part's ETag (and CRC-32 where known): the image's
 * status object (queued).
 * @param {string} id
 * @param {{number: number, etag: string, crc32?: string}[]} parts
 * @param {AbortSignal} [signal]
 */
export function completeUpload(id, parts, signal) {
  return request(`/v1/uploads/${encodeURIComponent(id)}/complete`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ parts }),
    signal,
  });
}

/** DELETE /v1/uploads/{id}: the parts and the record are deleted. */
export function abortUpload(id) {
  return request(`/v1/uploads/${encodeURIComponent(id)}`, { method: "DELETE" });
}

/**
 * Poll GET /v1/images/{id} every `interval` ms, calling `onUpdate(image)` each time, until the
 * image is ready or failed (the promise then gives its last status) or `signal` aborts.
 * @param {string} id
 * @param {(image: any) => void} onUpdate
 * @param {{interval?: number, signal?: AbortSignal}} [options]
 */
export async function pollImage(id, onUpdate, { interval = POLL_MS, signal } = {}) {
  for (;;) {
    const image = await getImage(id, { signal });
    onUpdate(image);
    if (!isPending(image)) return image;
    await sleep(interval, signal);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** "1.2 GB" style size. */
export function formatBytes(bytes) {
  if (bytes == null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit && value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** "40000 × 30000 px", or "" while unknown. */
export function formatDimensions(image) {
  return image.width && image.height ? `${image.width} × ${image.height} px` : "";
}

/** "2026-12-01 21:45" in the reader's time zone, for when an image was uploaded. */
export function formatDate(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** What an image holds: "3 channels · uint16 · 0.5 µm/px" (RGB images: "RGB · uint8"). */
export function describeContent(image) {
  const channels = image.channels || [];
  let kind = "";
  if (isMultiChannel(image)) kind = channels.length === 1 ? "1 channel" : `${channels.length} channels`;
  else if (channels.length === 3) kind = "RGB";
  else if (channels.length === 1) kind = "greyscale";
  const [sizeX, , unit] = image.physical_size || [];
  const pixel = Number.isFinite(sizeX) ? `${Number(sizeX.toPrecision(3))} ${unit}/px` : "";
  return [kind, image.dtype, pixel].filter(Boolean).join(" · ");
}

/** True when every channel has an intensity table and a display pyramid (not an RGB photograph). */
export function isMultiChannel(image) {
  const channels = image.channels || [];
  return channels.length > 0 && channels.every((c) => c.lut?.length === 256 && c.dzi);
}

/** "processing: tiling 42%" (status word, stage, percentage) for progress lines. */
export function describeStatus(image) {
  let text = image.status;
  if (isPending(image)) {
    if (image.stage && image.stage !== image.status) text += `: ${image.stage}`;
    if (image.progress > 0) text += ` ${Math.round(image.progress * 100)}%`;
  }
  return text;
}

/** GET /v1/images/{id}/render: the image's saved render settings. */
export function getRender(id) {
  return request(`/v1/images/${encodeURIComponent(id)}/render`);
}

/** PUT /v1/images/{id}/render: save render settings as the image's defaults; gives them back. */
export function putRender(id, settings) {
  return request(`/v1/images/${encodeURIComponent(id)}/render`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(settings),
  });
}

/**
 * GET /v1/images/{id}/values: the exact native value of `channels` at full-resolution pixel (x, y),
 * read from the original: `{x, y, values: [{index, name, value}]}`.
 * @param {string} id
 * @param {number} x
 * @param {number} y
 * @param {number[]} channels
 * @param {AbortSignal} [signal]
 */
export function getValues(id, x, y, channels, signal) {
  const query = new URLSearchParams({ x: String(x), y: String(y) });
  for (const c of channels) query.append("c", String(c));
  return request(`/v1/images/${encodeURIComponent(id)}/values?${query}`, { signal });
}

/**
 * GET /v1/images/{id}/snapshot: the region {x, y, w, h} (full-resolution pixels) as a PNG Blob
 * `width` pixels wide, mixed with the render query `c` (null: the saved defaults).
 * @param {string} id
 * @param {{x: number, y: number, w: number, h: number, width: number, c?: string | null,
 *   scalebar?: boolean, legend?: boolean}} request
 */
export function getSnapshot(id, { x, y, w, h, width, c = null, scalebar = true, legend = true }) {
  const query = new URLSearchParams({
    x: String(x), y: String(y), w: String(w), h: String(h), width: String(width),
    scalebar: String(scalebar), legend: String(legend),
  });
  if (c) query.set("c", c);
  return requestBlob(`/v1/images/${encodeURIComponent(id)}/snapshot?${query}`);
}
