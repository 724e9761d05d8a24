// Unit tests of viewer/js/lib/cursorvalues.js: position text, and the approximate-then-exact
// sequence with a stand-in lookup and short real timers.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CursorValues, describePosition, pixelAt } from "../../viewer/js/lib/cursorvalues.js";

const IMAGE = { id: "img", width: 100, height: 50 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("pixelAt floors inside the image and refuses outside", () => {
  assert.deepEqual(pixelAt({ x: 3.9, y: 0.1 }, 100, 50), { x: 3, y: 0 });
  assert.equal(pixelAt({ x: 100, y: 3 }, 100, 50), null);
  assert.equal(pixelAt({ x: -0.1, y: 3 }, 100, 50), null);
});

test("describePosition gives pixels, and calibrated units when known", () => {
  assert.equal(describePosition({ x: 12, y: 7 }), "x 12 · y 7");
  assert.equal(describePosition({ x: 1234, y: 567 }, [0.25, 0.25, "µm"]), "x 1234 · y 567 (308.5, 141.75 µm)");
  assert.equal(describePosition({ x: 3, y: 3 }, [0, 0, "µm"]), "x 3 · y 3");
});

/** A CursorValues whose lookups are recorded and answered by `answer` (or never, if null). */
function follow(answer) {
  const shown = [];
  const asked = [];
  const cursor = new CursorValues({
    image: IMAGE,
    channels: () => [0, 2],
    approximate: () => new Map([[0, 10], [2, 20]]),
    show: (reading) => shown.push(reading),
    restMs: 5,
    lookup: async (id, x, y, channels, signal) => {
      asked.push({ id, x, y, channels, signal });
      if (answer === null) return new Promise(() => {});
      return answer(x, y);
    },
  });
  return { cursor, shown, asked };
}

test("an approximation at once, the exact values once the cursor rests, cached after", async () => {
  const { cursor, shown, asked } = follow((x, y) => ({ values: [{ index: 0, value: x }, { index: 2, value: y }] }));
  cursor.move({ x: 4.5, y: 6.5 });
  assert.equal(shown.length, 1);
  assert.equal(shown[0].exact, false);
  assert.deepEqual([...shown[0].values], [[0, 10], [2, 20]]);
  await sleep(30);
  assert.equal(asked.length, 1);
  assert.deepEqual(asked[0].channels, [0, 2]);
  assert.equal(shown.at(-1).exact, true);
  assert.deepEqual([...shown.at(-1).values], [[0, 4], [2, 6]]);
  cursor.move({ x: 4.2, y: 6.9 }); // the same pixel: nothing new
  assert.equal(shown.length, 2);
  cursor.move({ x: 9, y: 9 });
  cursor.move({ x: 4.5, y: 6.5 }); // back: exact at once, from the cache
  assert.equal(shown.at(-1).exact, true);
  await sleep(30);
  assert.equal(asked.length, 1, "the cached pixel is not asked again, the one passed over not at all");
});

test("moving on before the cursor rests asks for nothing; leaving clears", async () => {
  const { cursor, shown, asked } = follow(null);
  cursor.move({ x: 1, y: 1 });
  cursor.move({ x: 2, y: 1 });
  cursor.move({ x: 3, y: 1 });
  await sleep(20);
  assert.equal(asked.length, 1, "only the pixel where it rested");
  assert.deepEqual([asked[0].x, asked[0].y], [3, 1]);
  cursor.move({ x: 4, y: 1 });
  assert.equal(asked[0].signal.aborted, true, "the lookup of a pixel left behind is aborted");
  cursor.leave();
  assert.equal(shown.at(-1), null);
});

test("a failed lookup keeps the approximation and says why", async () => {
  const { cursor, shown } = follow(() => {
    throw new Error("Exact values are looked up in originals up to 1024 MiB");
  });
  cursor.move({ x: 1, y: 1 });
  await sleep(30);
  assert.equal(shown.at(-1).exact, false);
  assert.match(shown.at(-1).error, /1024 MiB/);
});
