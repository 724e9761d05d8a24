// Unit tests of viewer/js/lib/events.js: the Server-Sent Events parser and the reconnecting reader.
// Run: node --test tests/viewer/*.test.mjs

import assert from "node:assert/strict";
import { test } from "node:test";

import { followEvents, parseEventStream } from "../../viewer/js/lib/events.js";

test("an event has its id, its type and its data; a blank line ends it", () => {
  const { events, rest } = parseEventStream('id: 1-0\nevent: image\ndata: {"id":"a"}\n\n');
  assert.deepEqual(events, [{ type: "image", data: '{"id":"a"}', id: "1-0" }]);
  assert.equal(rest, "");
});

test("data lines are joined with newlines; comments and unknown fields are skipped", () => {
  const text = ": connected\n\n: heartbeat\n\ndata: one\nretry: 10\nfoo: bar\ndata:two\ndata\n\n";
  assert.deepEqual(parseEventStream(text).events, [{ type: "message", data: "one\ntwo\n" }]);
});

test("CRLF, CR and LF all end lines", () => {
  const text = "event: created\r\ndata: a\r\n\r\nevent: deleted\rdata: b\r\revent: image\ndata: c\n\n";
  assert.deepEqual(parseEventStream(text).events.map((e) => [e.type, e.data]),
    [["created", "a"], ["deleted", "b"], ["image", "c"]]);
});

test("an unfinished event is given back to be parsed again with what follows", () => {
  const whole = "id: 5-1\nevent: image\ndata: {\"p\":0.5}\n\nid: 6-0\nevent: dele";
  const first = parseEventStream(whole);
  assert.equal(first.events.length, 1);
  assert.equal(first.rest, "id: 6-0\nevent: dele");
  const second = parseEventStream(`${first.rest}ted\ndata: {}\n\n`);
  assert.deepEqual(second.events, [{ type: "deleted", data: "{}", id: "6-0" }]);
});

test("a CR at the end of a chunk waits: it may be half of a CRLF", () => {
  const first = parseEventStream("data: x\r\n\r");
  assert.deepEqual(first.events, []);
  assert.deepEqual(parseEventStream(`${first.rest}\n`).events, [{ type: "message", data: "x" }]);
});

test("one space after the colon is dropped, further ones kept; an id with NUL is ignored", () => {
  assert.deepEqual(parseEventStream("id: a\0b\ndata:   x\n\n").events, [{ type: "message", data: "  x" }]);
});

test("an id without data moves the resume point only", () => {
  assert.deepEqual(parseEventStream("id: 9-0\n\n").events, [{ type: "", data: "", id: "9-0" }]);
});

/**
 * A Response whose body sends `chunks` (strings) and then ends, or stays open when `hold` until
 * `signal` aborts (as fetch's does).
 */
function streamResponse(chunks, hold = false, signal = undefined) {
  const body = new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
      if (!hold) controller.close();
      else signal?.addEventListener("abort", () => controller.error(new DOMException("aborted", "AbortError")));
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

/** Run followEvents against `answers` (one per connection) until `done(log)`; the requests' headers. */
async function follow(answers, done) {
  globalThis.window = /** @type {any} */ ({ sessionStorage: new Map() });
  const requests = [];
  const controller = new AbortController();
  const log = [];
  globalThis.fetch = async (url, options) => {
    requests.push({ url, lastEventId: options.headers["Last-Event-ID"] });
    const answer = answers.shift() ?? ((signal) => streamResponse([], true, signal));
    return answer(options.signal);
  };
  const check = () => {
    if (done(log)) controller.abort();
  };
  await followEvents({
    images: ["a"],
    signal: controller.signal,
    onEvent: (e) => { log.push(`${e.type}:${e.data.id}`); check(); },
    onReset: () => { log.push("reset"); check(); },
    onState: (s) => { log.push(s); check(); },
  });
  return { requests, log };
}

test("a dropped stream is resumed after its last event id; reset reloads and follows from now", async () => {
  const { requests, log } = await follow([
    () => streamResponse(['id: 1-0\nevent: image\ndata: {"id":"a"}\n\n']), // then the stream ends
    () => streamResponse(["event: reset\ndata: {}\n\n"]),
    (signal) => streamResponse(['id: 3-0\nevent: deleted\ndata: {"id":"a"}\n\n'], true, signal),
  ], (entries) => entries.includes("deleted:a"));
  assert.deepEqual(requests.map((r) => r.lastEventId), [undefined, "1-0", undefined]);
  assert.equal(requests[0].url, "/v1/events?image=a");
  // The reload comes once the next stream is open, so no event falls between the two.
  assert.deepEqual(log, ["live", "reset", "image:a", "reconnecting", "live", "reset", "deleted:a"]);
});

test("a stream the server refuses (503) means polling", async () => {
  const refused = () => new Response('{"detail":"Events need Redis"}', { status: 503 });
  const { log } = await follow([refused], (entries) => entries.includes("polling"));
  assert.deepEqual(log, ["polling"]);
});
