// @ts-check
// Resumable uploads with Uppy: its Dashboard, its AwsS3 plugin in multipart mode driven by
// plexzoom's /v1/uploads routes (the server decides the part size and signs each part's URL), and
// Golden Retriever, which keeps the upload state across a reload (small files' bytes too; a large
// file must be chosen again, and then only the parts the server lacks are sent).

import { AwsS3, Dashboard, GoldenRetriever, Uppy } from "/vendor/uppy/uppy.min.mjs";
import {
  ApiError, abortUpload, completeUpload, createUpload, errorMessage, getImage, getUpload,
} from "./api.js";
import { partCrc32 } from "./checksum.js";
import { PartSigner, isTransient, partBytes } from "./uploadparts.js";

const MIN_PART = 5 * 1024 * 1024; // Uppy never cuts smaller parts (nor does S3 take them)
const RETRY_MS = [0, 1000, 2000, 4000, 8000, 15000]; // a part's PUT or signature, retried
const RESUME_MS = [1000, 2000, 4000, 8000, 15000, 30000, 60000]; // a failed file, sent again

/**
 * The Uppy instance of the upload page: Dashboard inline in `target`, uploads in the server's
 * parts, state kept across reloads. `onUploaded(file, image)` gets each completed file with the
 * image status the server answered.
 * @param {{target: HTMLElement, onUploaded: (file: any, image: any) => void}} options
 */
export function createUploader({ target, onUploaded }) {
  const uppy = new Uppy({ id: "plexzoom-uploads", autoProceed: false });
  const server = new ServerUploads(uppy);
  uppy.use(Dashboard, {
    inline: true,
    target,
    width: "100%",
    height: 320,
    hideUploadButton: true, // uploads start as soon as files are chosen
    showProgressDetails: true,
    proudlyDisplayPoweredByUppy: false,
    disableThumbnailGenerator: true, // a microscopy image of gigabytes is no thumbnail
    fileManagerSelectionType: "files",
  });
  uppy.use(AwsS3, server.options());
  uppy.use(GoldenRetriever, { expires: 7 * 24 * 3600 * 1000 }); // the server keeps parts 7 days
  uppy.addPreProcessor((fileIDs) => prepare(uppy, fileIDs));
  uppy.on("upload-success", (file, response) => {
    server.forget(file);
    if (file && response.body?.image) onUploaded(file, response.body.image);
  });
  // A file removed before its upload ended (a ghost after a reload, too: Uppy has no uploader
  // of its own to tell then) leaves no parts on the server.
  uppy.on("file-removed", (file) => {
    const uploadId = file?.s3Multipart?.uploadId;
    if (uploadId && !file.progress?.uploadComplete) server.abort({ uploadId }).catch(() => {});
  });
  resumeAfterFailures(uppy);
  return uppy;
}

/**
 * The AwsS3 plugin's multipart functions, answered by plexzoom's /v1/uploads routes. Each file's
 * upload is created beforehand (see prepare), so these find it in `file.s3Multipart`.
 */
class ServerUploads {
  constructor(uppy) {
    this.uppy = uppy;
    /** @type {Map<string, PartSigner>} */
    this.signers = new Map();
    /** @type {Map<string, Map<number, string>>} each upload's parts' CRC-32s, for completion */
    this.crc32s = new Map();
    /** Uploads the server completed though the page never heard its answer: their images. */
    this.completed = new Map();
    this.aborted = new Set();
  }

  /** Options of the AwsS3 plugin. */
  options() {
    return {
      shouldUseMultipart: true, // a file of one part too: it is the same protocol
      // Requests at once: the browser opens 6 per origin, and the page's two event streams (the
      // gallery's, the conversions') hold two of them where parts go to the api itself.
      limit: 4,
      retryDelays: RETRY_MS,
      getChunkSize: (data) => partSizeOf(this.uppy, data),
      createMultipartUpload: (file) => this.created(file),
      signPart: (file, options) => this.signPart(file, options),
      uploadPartBytes: (options) => this.uploadPartBytes(options),
      listParts: (file, options) => this.listParts(file, options),
      completeMultipartUpload: (file, options) => this.complete(file, options),
      abortMultipartUpload: (file, options) => this.abort(options),
    };
  }

  forget(file) {
    const uploadId = file?.s3Multipart?.uploadId;
    if (uploadId) {
      this.signers.delete(uploadId);
      this.crc32s.delete(uploadId);
    }
  }

  /** The CRC-32s known of an upload's parts (number -> base64). */
  checksums(uploadId) {
    if (!this.crc32s.has(uploadId)) this.crc32s.set(uploadId, new Map());
    return /** @type {Map<number, string>} */ (this.crc32s.get(uploadId));
  }

  /** The upload made for the file before Uppy cut it (see prepare). */
  created(file) {
    const prepared = file.s3Multipart;
    if (!prepared?.uploadId) throw new Error(`${file.name} has no upload on the server.`);
    return { uploadId: prepared.uploadId, key: prepared.key };
  }

  /** The part's URL, signed with the CRC-32 of its bytes, and the headers that carry it (the
   * storage then refuses bytes that changed on the way). */
  async signPart(file, { uploadId, partNumber, body, signal }) {
    const crc32 = await partCrc32(body);
    signal?.throwIfAborted();
    if (!this.signers.has(uploadId)) this.signers.set(uploadId, new PartSigner(uploadId));
    const signer = /** @type {PartSigner} */ (this.signers.get(uploadId));
    const { url, headers } = await signer.get(partNumber, crc32);
    signal?.throwIfAborted();
    this.checksums(uploadId).set(partNumber, crc32);
    return { method: "PUT", url, headers };
  }

  /** Uppy's PUT of a part; a 403 (the URL expired) is told to Uppy so that it signs again. */
  async uploadPartBytes(options) {
    try {
      return await AwsS3.uploadPartBytes(options);
    } catch (err) {
      const url = options.signature.url;
      const source = err?.source;
      if (source?.status === 403 && [...this.signers.values()].some((s) => s.forget(url))) {
        throw Object.assign(new Error("Request has expired"), { source: { status: 403 } });
      }
      // Uppy says "Non 2xx"; the storage's answer says why (Uppy retries by the status alone).
      if (source?.status > 0 && typeof source.responseText === "string") {
        err.message = errorMessage(source.status, source.responseText);
      }
      throw err;
    }
  }

  /** The parts the server holds with the size expected of them (others are sent again). */
  async listParts(file, { uploadId, signal }) {
    let state;
    try {
      state = await getUpload(uploadId, { signal });
    } catch (err) {
      // The server answers 404 for an upload it no longer knows, 409 for one it completed.
      const image = err?.status === 404 || err?.status === 409 ? await completedImage(uploadId) : null;
      if (!image) throw err;
      this.completed.set(uploadId, image); // completed, but its answer was lost: nothing to send
      return Array.from({ length: file.s3Multipart.parts }, (_, i) => ({ PartNumber: i + 1, ETag: "" }));
    }
    const kept = state.stored.filter((p) => p.size === partBytes(state.size, state.part_size, p.number));
    const crc32s = this.checksums(uploadId);
    for (const p of kept) if (p.crc32) crc32s.set(p.number, p.crc32);
    return kept.map((p) => ({ PartNumber: p.number, Size: p.size, ETag: p.etag }));
  }

  /** Complete with each part's ETag and CRC-32 (that of a part stored before a reload is
   * computed again from the file: S3's part list may not name it). */
  async complete(file, { uploadId, parts, signal }) {
    if (this.completed.has(uploadId)) return { image: this.completed.get(uploadId) };
    const crc32s = this.checksums(uploadId);
    const { partSize } = file.s3Multipart;
    for (const { PartNumber: n } of parts) {
      if (!crc32s.has(n)) crc32s.set(n, await partCrc32(file.data.slice((n - 1) * partSize, n * partSize)));
    }
    signal?.throwIfAborted();
    const done = parts.map((p) => ({ number: p.PartNumber, etag: p.ETag, crc32: crc32s.get(p.PartNumber) }));
    const image = await completeUpload(uploadId, done, signal);
    return { location: image.links?.viewer, image };
  }

  /** Abort the server's upload once (Uppy's cancel and the page's file-removed both ask). */
  async abort({ uploadId }) {
    if (this.aborted.has(uploadId)) return;
    this.aborted.add(uploadId);
    this.signers.delete(uploadId);
    this.crc32s.delete(uploadId);
    await abortUpload(uploadId).catch((err) => {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    });
  }
}

/** The image of an upload the server no longer knows, if it was completed (not aborted). */
async function completedImage(id) {
  try {
    const image = await getImage(id);
    return image.status === "uploading" ? null : image;
  } catch {
    return null;
  }
}

/** The server's part size of the file whose bytes are `data` (Uppy asks with the bytes only). */
function partSizeOf(uppy, data) {
  const file = uppy.getFiles().find((f) => f.data === data);
  return file?.s3Multipart?.partSize || MIN_PART;
}

/**
 * Preprocessor: create the server's upload of each file that has none, before Uppy cuts the file
 * into parts, since the server decides the part size. A file the server refuses ends in error.
 */
async function prepare(uppy, fileIDs) {
  await Promise.all(fileIDs.map(async (id) => {
    const file = uppy.getFile(id);
    if (!file || file.error || file.s3Multipart?.uploadId) return;
    try {
      const created = await retrying(() => createUpload({
        size: file.data.size, name: file.name, type: file.type,
      }));
      if (created.parts > 1 && created.part_size < MIN_PART) {
        throw new Error(`The server cut ${file.name} into parts smaller than 5 MiB, which this page cannot send.`);
      }
      if (!uppy.getFile(id)) {
        await abortUpload(created.id).catch(() => {}); // removed meanwhile: leave nothing behind
        return;
      }
      uppy.setFileState(id, {
        s3Multipart: {
          uploadId: created.id, key: created.id, partSize: created.part_size, parts: created.parts,
        },
      });
    } catch (err) {
      uppy.emit("upload-error", uppy.getFile(id), err);
    }
  }));
}

/** Call `fn` until it succeeds or fails for good (a refusal), waiting longer after each failure. */
async function retrying(fn) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || attempt >= RETRY_MS.length) throw err;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS[attempt]));
    }
  }
}

/**
 * A file whose upload failed for a passing reason (network, server busy) is sent again by
 * itself, sooner when the browser says it is back online; Uppy then lists the stored parts and
 * sends only the others.
 */
function resumeAfterFailures(uppy) {
  /** @type {Map<string, {attempt: number, timer: any}>} */
  const pending = new Map();
  const retry = (id) => {
    const entry = pending.get(id);
    if (entry) clearTimeout(entry.timer);
    if (uppy.getFile(id)?.error) uppy.retryUpload(id).catch(() => {});
  };
  uppy.on("upload-error", (file, error) => {
    if (!file || !isTransient(error)) return;
    const attempt = (pending.get(file.id)?.attempt ?? -1) + 1;
    const delay = RESUME_MS[Math.min(attempt, RESUME_MS.length - 1)];
    pending.set(file.id, { attempt, timer: setTimeout(() => retry(file.id), delay) });
  });
  uppy.on("upload-success", (file) => file && pending.delete(file.id));
  uppy.on("file-removed", (file) => {
    clearTimeout(pending.get(file.id)?.timer);
    pending.delete(file.id);
  });
  uppy.on("back-online", () => [...pending.keys()].forEach(retry));
}
