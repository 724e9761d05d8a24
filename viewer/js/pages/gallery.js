// @ts-check
// Gallery, the page script of index.html's lower half: newest-first cards of all images, paged
// with "More images", kept current by the event stream (lib/events.js): new images appear, cards
// follow their conversion, deleted ones vanish. Where the stream cannot be opened, it polls.

import {
  deleteImage, describeContent, describeStatus, formatBytes, formatDate, formatDimensions, getImage, isPending, listImages,
} from "../lib/api.js";
import { el } from "../lib/dom.js";
import { STATE_TEXT, followEvents } from "../lib/events.js";

const PAGE_SIZE = 24;
const REFRESH_MS = 1000;
const REFRESH_MAX_MS = 10000;
const LIST_POLL_MS = 3000; // polling only: how often the first page is listed for new and deleted images
const FIRST_LOAD_MS = 3000; // list without waiting any longer for the stream to open
const $ = (id) => document.getElementById(id);
const ui = {
  list: $("gallery"),
  more: /** @type {HTMLButtonElement} */ ($("gallery-more")),
  empty: $("gallery-empty"),
  error: $("gallery-error"),
  reload: $("gallery-reload"),
  live: $("gallery-live"),
};
const cards = new Map(); // image id -> <li>
const images = new Map(); // image id -> what is known of it: its status object, updated by events
let nextCursor = null;
let refreshTimer = null;
let refreshDelay = REFRESH_MS;
let listTimer = null;
let mode = "connecting"; // the event stream's state (lib/events.js)
let loaded = false;
let loading = null; // the first page while it loads: events wait for it

function viewerUrl(image) {
  return image.links?.viewer || `/view.html?id=${encodeURIComponent(image.id)}`;
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function thumbnail(image) {
  const url = image.links?.thumbnail;
  if (!url) {
    const text = image.status === "failed" ? "No preview" : "Preview when ready";
    return el("span", { className: "thumb thumb-empty" }, text);
  }
  return el("img", { className: "thumb", src: url, alt: "", loading: "lazy", decoding: "async" });
}

function badge(image) {
  return el("span", { className: `badge badge-${image.status}`, "data-testid": `status-${image.id}` },
    describeStatus(image));
}

function cardBody(image) {
  const title = image.filename || image.id;
  const details = [formatDimensions(image), formatBytes(image.size)].filter(Boolean).join(" · ");
  /** @type {HTMLElement[]} */
  const body = [
    el("a", { className: "thumb-link", href: viewerUrl(image), tabIndex: -1, "aria-hidden": "true" }, thumbnail(image)),
    el("div", { className: "card-info" },
      el("h3", { className: "card-title" }, el("a", { href: viewerUrl(image), title }, title)),
      badge(image),
      el("p", { className: "card-details" }, details),
      // When and what: two uploads of the same file differ by their time and id.
      el("p", { className: "card-details card-meta", "data-testid": `meta-${image.id}` },
        [describeContent(image), formatDate(image.created)].filter(Boolean).join(" · "),
        " · ",
        el("span", { className: "card-id", title: `Image id ${image.id}` }, `#${image.id.slice(-6)}`))),
  ];
  if (isPending(image)) {
    body.push(el("progress", { max: 1, value: image.progress || 0, "aria-label": `Conversion of ${title}` }));
  }
  if (image.status === "failed") {
    body.push(el("p", { className: "error card-error", role: "alert" }, image.error || "The conversion failed."));
  }
  const remove = el("button", {
    type: "button", className: "button button-danger card-delete",
    "aria-label": `Delete ${title}`, "data-testid": `delete-${image.id}`,
  }, "Delete");
  remove.addEventListener("click", () => onDelete(image, remove));
  body.push(el("div", { className: "card-actions" }, el("a", { className: "button", href: viewerUrl(image) }, "Open"), remove));
  return body;
}

/** Create or refresh the card of one image; new cards go first unless `append`. True if it changed. */
function renderCard(image, { append = false } = {}) {
  images.set(image.id, image);
  let card = cards.get(image.id);
  if (!card) {
    card = el("li", { className: "card", "data-testid": `card-${image.id}`, "data-id": image.id });
    cards.set(image.id, card);
    if (append) ui.list.append(card);
    else ui.list.prepend(card);
  } else if (card.dataset.status === image.status) {
    return isPending(image) && updateProgress(card, image); // keep focus and the loaded thumbnail
  }
  card.dataset.status = image.status;
  card.replaceChildren(...cardBody(image));
  ui.empty.hidden = true;
  if (isPending(image) && mode === "polling") {
    refreshDelay = REFRESH_MS;
    scheduleRefresh();
  }
  return true;
}

/** Update the badge and bar of a card whose status did not change; true if anything moved. */
function updateProgress(card, image) {
  const text = describeStatus(image);
  const badgeNode = card.querySelector(".badge");
  if (badgeNode.textContent === text) return false;
  badgeNode.textContent = text;
  card.querySelector("progress").value = image.progress || 0;
  return true;
}

function removeCard(id) {
  cards.get(id)?.remove();
  cards.delete(id);
  images.delete(id);
  ui.empty.hidden = cards.size > 0;
}

async function onDelete(image, button) {
  const title = image.filename || image.id;
  if (!window.confirm(`Delete ${title}? Its original and its pyramid are removed for good.`)) return;
  button.disabled = true;
  try {
    await deleteImage(image.id);
    removeCard(image.id);
    showError("");
  } catch (err) {
    if (err.status === 404) removeCard(image.id);
    else showError(`Could not delete ${title}: ${err.message}`);
    button.disabled = false;
  }
}

/** Refresh every card still uploading, queued or processing; repeat while any is. */
async function refreshPending() {
  refreshTimer = null;
  const pending = [...cards.values()].filter((card) => isPending(card.dataset));
  const changed = await Promise.all(pending.map(async (card) => {
    try {
      return renderCard(await getImage(card.dataset.id));
    } catch (err) {
      if (err.status === 404) removeCard(card.dataset.id);
      return false;
    }
  }));
  // Poll slower while nothing moves (e.g. an upload abandoned in "uploading").
  refreshDelay = changed.some(Boolean) ? REFRESH_MS : Math.min(refreshDelay * 1.5, REFRESH_MAX_MS);
  if (pending.length && mode === "polling") scheduleRefresh();
}

function scheduleRefresh() {
  if (!refreshTimer) refreshTimer = setTimeout(refreshPending, refreshDelay);
}

/** Polling only: list the first page for images created or deleted elsewhere; repeat. */
async function pollList() {
  try {
    const page = await listImages({ limit: PAGE_SIZE });
    const listed = new Set(page.images.map((image) => image.id));
    const last = page.images.at(-1)?.id;
    // Ids list in order: a card inside the listed range that was not listed is gone.
    for (const id of [...cards.keys()]) {
      if (!listed.has(id) && (!page.next_cursor || (last && id < last))) removeCard(id);
    }
    for (const image of [...page.images].reverse()) renderCard(image);
  } catch {
    // the next round tries again; the Refresh button shows errors
  }
  if (mode === "polling") listTimer = setTimeout(pollList, LIST_POLL_MS);
}

/** Apply one event of the stream to the cards. */
function onEvent({ type, data }) {
  if (loading) {
    loading.then(() => onEvent({ type, data })); // after the page it may be newer than
    return;
  }
  if (type === "deleted") {
    removeCard(data.id);
    return;
  }
  const known = images.get(data.id);
  if (!known && type !== "created" && nextCursor) return; // further down than the pages loaded
  if (data.status === "ready" && known?.status !== "ready") {
    refreshCard({ ...known, ...data }); // the event has no links: fetch the thumbnail's once
    return;
  }
  renderCard({ created: data.updated, ...known, ...data });
}

/** Render an image that became ready from its full status object (links, thumbnail, size). */
async function refreshCard(fallback) {
  try {
    renderCard(await getImage(fallback.id));
  } catch (err) {
    if (err.status === 404) removeCard(fallback.id);
    else renderCard(fallback);
  }
}

/** Show the stream's state, and poll only while the page has no stream. */
function setMode(state) {
  mode = state;
  ui.live.textContent = STATE_TEXT[state];
  ui.live.dataset.state = state;
  clearTimeout(listTimer);
  clearTimeout(refreshTimer);
  listTimer = refreshTimer = null;
  if (state === "polling") {
    listTimer = setTimeout(pollList, LIST_POLL_MS);
    scheduleRefresh();
  }
  if (state !== "live" && !loaded) reload(); // a live stream asks for the load itself (onReset)
}

/** Load one page (the first when `cursor` is null) and append its cards. */
async function loadPage(cursor = null) {
  ui.more.disabled = true;
  try {
    const page = await listImages({ limit: PAGE_SIZE, cursor });
    for (const image of page.images) renderCard(image, { append: true });
    nextCursor = page.next_cursor;
    showError("");
  } catch (err) {
    showError(`Could not list the images: ${err.message}`);
  } finally {
    ui.more.disabled = false;
    ui.more.hidden = !nextCursor;
    ui.empty.hidden = cards.size > 0 || !ui.error.hidden;
  }
}

function reload() {
  loaded = true;
  cards.clear();
  images.clear();
  ui.list.replaceChildren();
  nextCursor = null;
  loading = loadPage().finally(() => {
    loading = null;
  });
  return loading;
}

function init() {
  ui.more.addEventListener("click", () => loadPage(nextCursor));
  ui.reload.addEventListener("click", reload);
  // upload.js announces each new or changed image.
  document.addEventListener("plexzoom:image", (e) => renderCard(/** @type {CustomEvent} */ (e).detail));
  // The first page is listed once the stream is open, so no image falls between the two.
  followEvents({ onEvent, onReset: reload, onState: setMode });
  setTimeout(() => loaded || reload(), FIRST_LOAD_MS);
}

init();
