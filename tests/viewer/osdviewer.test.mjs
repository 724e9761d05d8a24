// Unit tests of viewer/js/lib/osdviewer.js's software-WebGL check, with stand-in documents.
import assert from "node:assert/strict";
import { test } from "node:test";

import { softwareWebGL } from "../../viewer/js/lib/osdviewer.js";

/** A document whose canvases report `renderer` (null: no WebGL at all). */
function documentWith(renderer) {
  const gl = {
    RENDERER: 0x1f01,
    getExtension: (name) => (name === "WEBGL_debug_renderer_info" ? { UNMASKED_RENDERER_WEBGL: 0x9246 } : null),
    getParameter: () => renderer,
  };
  return { createElement: () => ({ getContext: () => (renderer === null ? null : gl) }) };
}

test("CPU rasterisers are recognised, GPUs are not", () => {
  assert.equal(softwareWebGL(documentWith("ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)))")), true);
  assert.equal(softwareWebGL(documentWith("llvmpipe (LLVM 15.0.6, 256 bits)")), true);
  assert.equal(softwareWebGL(documentWith("ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11)")), false);
  assert.equal(softwareWebGL(documentWith("Apple M2")), false);
  assert.equal(softwareWebGL(documentWith(null)), false);
});
