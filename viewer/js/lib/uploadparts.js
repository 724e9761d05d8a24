// @ts-check
// The parts of a resumable upload, without Uppy (unit-tested in node): the server's part layout,
// part URLs signed with each part's CRC-32 and kept while they are fresh, and which failures are
// worth a retry.

import { signUploadParts } from "./api.js";

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
 * Signed part URLs of one upload. A part is signed with its CRC-32, so only once its bytes are
 * hashed: the parts asked for in one turn are signed by one call, and each URL is reused (a
 * retry of the same bytes) until most of its life has passed.
 */
export class PartSigner {
  /**
   * @param {string} id
   * @param {typeof signUploadParts} [sign]
   */
  constructor(id, sign = signUploadParts) {
    this.id = id;
    this.sign = sign;
    /** @type {Map<number, {url: string, headers: Record<string, string>, crc32: string, until: number}>} */
    this.urls = new Map();
    /** @type {Map<number, {crc32: string, resolve: (v: any) => void, reject: (e: any) => void}[]>} */
    this.waiting = new Map();
    this.flushing = false;
    /** @type {Map<number, number>} how often each part's URL was refused */
    this.refused = new Map();
  }

  /**
   * The URL and headers to PUT part `number` to, whose bytes have CRC-32 `crc32` (base64).
   * @param {number} number
   * @param {string} crc32
   */
  get(number, crc32) {
    const known = this.urls.get(number);
    if (known && known.crc32 === crc32 && known.until > Date.now()) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      this.waiting.set(number, [...(this.waiting.get(number) || []), { crc32, resolve, reject }]);
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
    const waiting = new Map(this.waiting);
    this.waiting.clear();
    this.flushing = false;
    // A part asked for twice in one turn is signed with its latest bytes' checksum.
    const parts = [...waiting].map(([number, calls]) => ({ number, crc32: calls.at(-1).crc32 }));
    try {
      const answer = await this.sign(this.id, parts.sort((a, b) => a.number - b.number));
      const until = Date.now() + answer.expires_in * 1000 * URL_LIFE;
      const crc32s = new Map(parts.map((p) => [p.number, p.crc32]));
      for (const part of answer.parts) {
        const signed = { url: part.url, headers: part.headers || {}, crc32: crc32s.get(part.number), until };
        this.urls.set(part.number, signed);
      }
      for (const [n, calls] of waiting) {
        for (const { crc32, resolve, reject } of calls) {
          const signed = this.urls.get(n);
          if (signed?.crc32 === crc32) resolve(signed);
          else reject(new Error(`Part ${n} was signed for other bytes.`));
        }
      }
    } catch (err) {
      for (const calls of waiting.values()) calls.forEach(({ reject }) => reject(err));
    }
  }
}
