// @ts-check
// Gallery, the page script of index.html's lower half: newest-first cards of all images, paged
// with "More images", refreshed while they convert.

import {
  deleteImage, describeContent, describeStatus, formatBytes, formatDate, formatDimensions, getImage, isPending, listImages,
} from "../lib/api.js";
import { el } from "../lib/dom.js";

const PAGE_SIZE = 24;
const REFRESH_MS = 1000;
const REFRESH_MAX_MS = 10000;
const $ = (id) => document.getElementById(id);
const ui = {
  list: $("gallery"),
  more: /** @type {HTMLButtonElement} */ ($("gallery-more")),
  empty: $("gallery-empty"),
  error: $("gallery-error"),
  reload: $("gallery-reload"),
};
const cards = new Map(); // image id -> <li>
let nextCursor = null;
let refreshTimer = null;
let refreshDelay = REFRESH_MS;

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
  if (isPending(image)) {
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
  if (pending.length) scheduleRefresh();
}

function scheduleRefresh() {
  if (!refreshTimer) refreshTimer = setTimeout(refreshPending, refreshDelay);
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
  cards.clear();
  ui.list.replaceChildren();
  nextCursor = null;
  return loadPage();
}

function init() {
  ui.more.addEventListener("click", () => loadPage(nextCursor));
  ui.reload.addEventListener("click", reload);
  // upload.js announces each new or changed image.
  document.addEventListener("plexzoom:image", (e) => renderCard(/** @type {CustomEvent} */ (e).detail));
  loadPage();
}

init();
