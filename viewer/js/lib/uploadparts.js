// @ts-check
// The parts of a resumable upload, without Uppy (unit-tested in node): the server's part layout,
// part URLs signed in batches and kept while they are fresh, and which failures are worth a retry.

import { signUploadParts } from "./api.js";

const SIGN_AHEAD = 16; // part URLs asked for in one call
const URL_LIFE = 0.8; // share of a signed URL's life it is used for
const RESIGN_TRIES = 3; // a part's URL signed again after a 403 at most this often

/** True for a failure worth trying again: no network, a timeout, 429 or a server error. */
export function isTransient(error) {
  if (typeof navigator !== "undefined" && navigator.onLine === false) return true;
  const status = error?.status ?? error?.source?.status;
  if (status === undefined) return error?.source !== undefined; // an XHR that failed to send
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** Size of part `number` (1-based) of an upload of `size` bytes in parts of `partSize`. */
export function partBytes(size, partSize, number) {
  return Math.min(partSize, size - (number - 1) * partSize);
}

/**
 * Signed part URLs of one upload: concurrent requests for URLs are answered by one call that
 * also signs the next parts; each URL is reused until most of its life has passed.
 */
export class PartSigner {
  /**
   * @param {string} id
   * @param {number} parts
   * @param {typeof signUploadParts} [sign]
   */
  constructor(id, parts, sign = signUploadParts) {
    this.id = id;
    this.parts = parts;
    this.sign = sign;
    /** @type {Map<number, {url: string, headers: Record<string, string>, until: number}>} */
    this.urls = new Map();
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: any) => void}[]>} */
    this.waiting = new Map();
    this.flushing = false;
    this.contentMd5 = false;
    /** @type {Map<number, number>} how often each part's URL was refused */
    this.refused = new Map();
  }

  /** The URL and headers to PUT part `number` to. */
  get(number) {
    const known = this.urls.get(number);
    if (known && known.until > Date.now()) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      this.waiting.set(number, [...(this.waiting.get(number) || []), { resolve, reject }]);
      if (!this.flushing) {
        this.flushing = true;
        setTimeout(() => this.flush(), 0); // gather the calls made in this turn
      }
    });
  }

  /**
   * Forget a URL the storage refused (expired): the next get() signs it again. False when it is
   * not one of this upload's, or its part was refused too often already (not a matter of time).
   */
  forget(url) {
    for (const [number, known] of this.urls) {
      if (known.url !== url) continue;
      this.urls.delete(number);
      const refusals = (this.refused.get(number) || 0) + 1;
      this.refused.set(number, refusals);
      return refusals <= RESIGN_TRIES;
    }
    return false;
  }

  async flush() {
    const asked = [...this.waiting.keys()].sort((a, b) => a - b);
    const numbers = new Set(asked);
    for (let n = asked[0] + 1; n <= this.parts && numbers.size < SIGN_AHEAD; n += 1) {
      if (!this.urls.has(n)) numbers.add(n);
    }
    const waiting = new Map(asked.map((n) => [n, this.waiting.get(n)]));
    this.waiting.clear();
    this.flushing = false;
    try {
      const answer = await this.sign(this.id, [...numbers].sort((a, b) => a - b));
      const until = Date.now() + answer.expires_in * 1000 * URL_LIFE;
      this.contentMd5 = Boolean(answer.content_md5); // the URLs check a Content-MD5 header
      for (const part of answer.parts) {
        this.urls.set(part.number, { url: part.url, headers: part.headers || {}, until });
      }
      for (const [n, calls] of waiting) calls.forEach(({ resolve }) => resolve(this.urls.get(n)));
    } catch (err) {
      for (const calls of waiting.values()) calls.forEach(({ reject }) => reject(err));
    }
  }
}
