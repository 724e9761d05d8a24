// @ts-check
// The MD5 of a part's bytes, for its Content-MD5 header (the server and S3 refuse a part whose
// bytes do not match it: 400, nothing stored). Browsers' WebCrypto has no MD5: hash-wasm's (npm,
// served from /vendor/hash-wasm/ through index.html's import map) computes it.

import { createMD5 } from "hash-wasm";

/**
 * The MD5 digest of some bytes.
 * @param {Uint8Array} bytes
 * @returns {Promise<Uint8Array>}
 */
export async function md5(bytes) {
  const hasher = await createMD5();
  hasher.init();
  hasher.update(bytes);
  return hasher.digest("binary");
}

/**
 * The Content-MD5 header of a Blob's bytes (base64 of the digest) and the hex digest.
 * @param {Blob} blob
 */
export async function contentMd5(blob) {
  const digest = await md5(new Uint8Array(await blob.arrayBuffer()));
  return {
    base64: btoa(String.fromCharCode(...digest)),
    hex: [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join(""),
  };
}
