// @ts-check
// MD5 (RFC 1321) of a part's bytes, for its Content-MD5 header: browsers' WebCrypto has no MD5,
// and the server and S3 refuse a part whose bytes do not match the header (400, nothing stored).

// Shift amounts of each round's four steps, and the sine table K[i] = floor(|sin(i + 1)| * 2^32).
const SHIFT = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const K = Int32Array.from([
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
]);

/** One step: `a` moved by `f` (the round's function of b, c, d), word `x` and constant `k`. */
function step(f, a, b, x, s, k) {
  const sum = (a + f + x + k) | 0;
  return (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
}

/** Fold the 64-byte blocks of `view` from `offset` to `end` into the state `h` (4 words). */
function blocks(h, view, offset, end) {
  const m = new Int32Array(16);
  for (let at = offset; at < end; at += 64) {
    for (let i = 0; i < 16; i += 1) m[i] = view.getInt32(at + 4 * i, true);
    let a = h[0];
    let b = h[1];
    let c = h[2];
    let d = h[3];
    for (let i = 0; i < 64; i += 1) {
      let f;
      let g;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) & 15;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) & 15;
      }
      const next = step(f, a, b, m[g], SHIFT[(i >> 4) * 4 + (i & 3)], K[i]);
      a = d;
      d = c;
      c = b;
      b = next;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
  }
}

/**
 * The 16-byte MD5 digest of `bytes`.
 * @param {Uint8Array} bytes
 * @returns {Uint8Array}
 */
export function md5(bytes) {
  const h = Int32Array.from([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  const whole = bytes.length - (bytes.length % 64);
  blocks(h, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, whole);
  // The rest, a 1 bit, zeros, and the length in bits (64-bit little-endian) end the message.
  const tail = new Uint8Array(bytes.length % 64 < 56 ? 64 : 128);
  tail.set(bytes.subarray(whole));
  tail[bytes.length % 64] = 0x80;
  const end = new DataView(tail.buffer);
  const bits = bytes.length * 8;
  end.setUint32(tail.length - 8, bits >>> 0, true);
  end.setUint32(tail.length - 4, Math.floor(bits / 2 ** 32), true);
  blocks(h, end, 0, tail.length);
  const digest = new Uint8Array(16);
  const out = new DataView(digest.buffer);
  h.forEach((word, i) => out.setInt32(4 * i, word, true));
  return digest;
}

/**
 * The Content-MD5 header of a Blob's bytes (base64 of the digest) and the hex digest.
 * @param {Blob} blob
 */
export async function contentMd5(blob) {
  const digest = md5(new Uint8Array(await blob.arrayBuffer()));
  return {
    base64: btoa(String.fromCharCode(...digest)),
    hex: [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join(""),
  };
}
