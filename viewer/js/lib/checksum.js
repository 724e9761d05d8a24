// @ts-check
// The CRC-32 of a part's bytes, as the x-amz-checksum-crc32 header signed into its URL wants it
// (the server and S3 refuse a part whose bytes do not match: 400, nothing stored). hash-wasm
// (npm, served from /vendor/hash-wasm/ through index.html's import map) computes it.

import { crc32 } from "hash-wasm";

/**
 * Base64 of the big-endian CRC-32 (zlib's polynomial) of a Blob's bytes.
 * @param {Blob} blob
 * @returns {Promise<string>}
 */
export async function partCrc32(blob) {
  const hex = await crc32(new Uint8Array(await blob.arrayBuffer())); // 8 hex digits, big-endian
  const bytes = hex.match(/../g)?.map((pair) => parseInt(pair, 16)) ?? [];
  return btoa(String.fromCharCode(...bytes));
}
