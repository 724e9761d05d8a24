// @ts-check
// The Info panel of the viewer: what the image is, from GET /v1/images/{id} (dimensions, data
// type, pixel size, channels, file, the plane shown, upload date).

import { formatBytes, formatDate, formatDimensions, isMultiChannel } from "./api.js";
import { el } from "./dom.js";

const DTYPE = /^(u?int|float|complex|bool)(\d*)$/;

/** "8-bit", "16-bit", "16-bit signed", "32-bit float" from a numpy dtype name; "" when unknown. */
export function bitDepth(dtype) {
  const match = DTYPE.exec(dtype || "");
  if (!match) return "";
  const [, kind, bits] = match;
  if (kind === "bool") return "1-bit";
  return `${bits}-bit${{ uint: "", int: " signed", float: " float", complex: " complex" }[kind]}`;
}

/** "0.5 µm" (or "0.5 × 0.6 µm" for pixels that are not square); "unknown" without a pixel size. */
export function formatPixelSize(physicalSize) {
  const [x, y, unit] = physicalSize || [];
  if (!Number.isFinite(x)) return "unknown";
  const round = (value) => Number(value.toPrecision(4));
  const sizes = Number.isFinite(y) && round(y) !== round(x) ? `${round(x)} × ${round(y)}` : `${round(x)}`;
  return `${sizes} ${unit}`;
}

/** "3 (DAPI, FITC, Cy5)", "RGB" or "greyscale". */
function describeChannels(image) {
  const channels = image.channels || [];
  if (!isMultiChannel(image)) return channels.length === 3 ? "RGB" : channels.length === 1 ? "greyscale" : String(channels.length);
  const names = channels.slice(0, 6).map((c) => c.name || `Channel ${c.index}`).join(", ");
  return `${channels.length} (${names}${channels.length > 6 ? ", …" : ""})`;
}

/** "Z 1 of 12, T 1 of 3": the plane a Z stack or time series was read at; "" for a single plane. */
function describePlane(notes) {
  const parts = [];
  if (notes.z_planes > 1) parts.push(`Z ${notes.z + 1} of ${notes.z_planes}`);
  if (notes.t_points > 1) parts.push(`T ${notes.t + 1} of ${notes.t_points}`);
  if (notes.ome_images > 1) parts.push(`image ${notes.ome_image + 1} of ${notes.ome_images} in the file`);
  return parts.join(", ");
}

/** What the readers recorded about parts of the file that are not shown, as [label, text] rows. */
function describeNotes(notes) {
  const rows = [];
  const list = (pages) => (Array.isArray(pages) ? pages.join(", ") : String(pages));
  if (notes.pages_ignored) rows.push(["Pages not shown", `${list(notes.pages_ignored)} (other sizes: previews, labels)`]);
  if (notes.frames_ignored) rows.push(["Frames not shown", `${notes.frames_ignored} after the first`]);
  if (notes.samples_ignored) rows.push(["Samples not shown", `${notes.samples_ignored} extra per pixel`]);
  if (notes.alpha) rows.push(["Transparency", String(notes.alpha)]);
  if (notes.orientation) rows.push(["Orientation", `EXIF ${notes.orientation}, turned upright`]);
  if (notes.ome_xml) rows.push(["OME-XML", String(notes.ome_xml)]);
  if (notes.colors_ignored) rows.push(["Colours not used", String(notes.colors_ignored)]);
  if (notes.wavelength_unit) rows.push(["Wavelengths", String(notes.wavelength_unit)]);
  return rows;
}

/** The panel's rows, [label, text], for an image status object. */
export function metadataRows(image) {
  const notes = image.notes || {};
  const rows = [
    ["Dimensions", formatDimensions(image)],
    ["Data type", image.dtype || ""],
    ["Bit depth", bitDepth(image.dtype)],
    ["Pixel size", formatPixelSize(image.physical_size)],
    ["Channels", describeChannels(image)],
    ["File format", image.format ? image.format.toUpperCase() : ""],
    ["File size", formatBytes(image.size)],
    ["Plane shown", describePlane(notes)],
    ...describeNotes(notes),
    ["Uploaded", image.created ? formatDate(image.created) : ""],
  ];
  return rows.filter(([, text]) => text);
}

/** Fill the Info disclosure (`details` with a `dl`) for `image` and show it. */
export function showMetadata(details, image) {
  const list = details.querySelector("dl");
  list.replaceChildren(...metadataRows(image).flatMap(([label, text]) => [
    el("dt", { textContent: label }),
    el("dd", { textContent: text, dataset: { field: label.toLowerCase().replace(/\W+/g, "-") } }),
  ]));
  details.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !details.open) return;
    details.open = false; // as a menu would: Escape folds the list and leaves focus on Info
    details.querySelector("summary").focus();
  });
  details.hidden = false;
}
