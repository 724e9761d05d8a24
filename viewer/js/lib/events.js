// @ts-check
// Live image events from GET /v1/events (Server-Sent Events). EventSource cannot send the API key,
// so the stream is read with a streaming fetch; dropped streams are resumed with Last-Event-ID.
// Where the stream cannot be opened (no Redis: 503; no streaming fetch) the page polls instead.

import { ApiError, isPending, openEvents, pollImage } from "./api.js";

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const RETRY_STREAM_MS = 30000; // while polling, how often the stream is tried again
const SILENCE_MS = 40000; // the server sends a heartbeat every 15 s; this long without one is a drop

/**
 * @typedef {{type: string, data: string, id?: string}} StreamEvent
 * @typedef {"connecting" | "live" | "reconnecting" | "polling"} StreamState
 */

/**
 * Parse text/event-stream `text` (what has arrived so far): the complete events in it, and the
 * unfinished rest to parse again once more has arrived. Lines end with CRLF, LF or CR; an empty line
 * ends an event; `data` lines are joined with "\n"; lines starting with ":" are comments.
 * @param {string} text
 * @returns {{events: StreamEvent[], rest: string}}
 */
export function parseEventStream(text) {
  /** @type {StreamEvent[]} */
  const events = [];
  let fields = { type: "", data: /** @type {string[]} */ ([]), id: /** @type {string | undefined} */ (undefined) };
  let start = 0; // where the event being read began
  let position = 0;
  // A CR at the very end may be the first half of a CRLF: wait for what follows it.
  const lineEnd = /\r\n|\r(?!$)|\n/g;
  for (let match = lineEnd.exec(text); match; match = lineEnd.exec(text)) {
    const line = text.slice(position, match.index);
    position = lineEnd.lastIndex;
    if (line === "") {
      if (fields.data.length) {
        events.push({ type: fields.type || "message", data: fields.data.join("\n"), ...(fields.id !== undefined ? { id: fields.id } : {}) });
      } else if (fields.id !== undefined) {
        events.push({ type: "", data: "", id: fields.id }); // moves the resume point only
      }
      fields = { type: "", data: [], id: undefined };
      start = position;
    } else if (!line.startsWith(":")) {
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") fields.type = value;
      else if (name === "data") fields.data.push(value);
      else if (name === "id" && !value.includes("\0")) fields.id = value;
    }
  }
  return { events, rest: text.slice(start) };
}

/** True where fetch can hand out a response body as a stream of bytes. */
function canStream() {
  return typeof ReadableStream === "function" && typeof TextDecoder === "function" &&
    typeof Response === "function" && "body" in Response.prototype;
}

/**
 * Follow image events until `signal` aborts. `onEvent({type, data})` gets each `created`, `image`
 * and `deleted` event with its JSON data; `onReset()` asks the page to load its state, and comes
 * each time a stream opens with nothing to resume from (the first time, after `reset`, after a
 * spell of polling), once the stream is open, so nothing falls between the load and the stream.
 * `onState` gets "live", "reconnecting" (a stream dropped: retried with backoff) or "polling" (the
 * stream cannot be opened: the page must poll; the stream is tried again every 30 s).
 * @param {{images?: string[], signal?: AbortSignal, onEvent: (e: {type: string, data: any}) => void,
 *   onReset?: () => void, onState?: (state: StreamState) => void}} options
 */
export async function followEvents({ images = [], signal, onEvent, onReset = () => {}, onState = () => {} }) {
  if (!canStream()) {
    onState("polling");
    return;
  }
  /** @type {string | undefined} */
  let lastEventId;
  let failures = 0;
  let state = "connecting";
  const setState = (next) => {
    if (next !== state) onState((state = next));
  };
  while (!signal?.aborted) {
    const outcome = await readOnce({
      images, lastEventId, signal,
      onOpen: () => {
        failures = 0;
        setState("live");
        if (lastEventId === undefined) onReset();
      },
      onEvent: (event) => {
        if (event.id) lastEventId = event.id;
        if (event.type === "reset") lastEventId = undefined; // reload, then follow from now on
        else if (event.type) onEvent({ type: event.type, data: JSON.parse(event.data) });
      },
    });
    if (signal?.aborted) return;
    if (outcome === "reset") continue;
    if (outcome === "refused") {
      lastEventId = undefined; // the page polls meanwhile and reloads when the stream is back
      setState("polling");
      await sleep(RETRY_STREAM_MS, signal);
    } else {
      if (state !== "polling") setState("reconnecting");
      await sleep(BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)] * (0.75 + Math.random() / 2), signal);
      failures += 1;
    }
  }
}

/**
 * One connection: "reset" (the server said to reload), "refused" (an HTTP error: fall back to
 * polling) or "dropped" (unreachable, or the stream ended or fell silent: resume).
 */
async function readOnce({ images, lastEventId, signal, onOpen, onEvent }) {
  const connection = new AbortController();
  const stop = () => connection.abort();
  signal?.addEventListener("abort", stop, { once: true });
  let timer = setTimeout(stop, SILENCE_MS);
  try {
    const response = await openEvents({ images, lastEventId, signal: connection.signal });
    if (!response.body) return "refused";
    onOpen();
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "dropped";
      clearTimeout(timer);
      timer = setTimeout(stop, SILENCE_MS);
      const parsed = parseEventStream(buffer + decoder.decode(value, { stream: true }));
      buffer = parsed.rest;
      for (const event of parsed.events) {
        onEvent(event);
        if (event.type === "reset") return "reset";
      }
    }
  } catch (err) {
    return err instanceof ApiError && err.status > 0 ? "refused" : "dropped";
  } finally {
    clearTimeout(timer);
    connection.abort();
    signal?.removeEventListener("abort", stop);
  }
}

/**
 * Follow one image until it is ready or failed: through the stream, or by polling where the stream
 * cannot be opened. `onUpdate` gets each state (the stream's events carry status, stage, progress
 * and error, not the full status object); resolves with the last one.
 * @param {string} id
 * @param {(image: any) => void} onUpdate
 * @param {{signal?: AbortSignal, onState?: (state: StreamState) => void}} [options]
 * @returns {Promise<any>}
 */
export function followImage(id, onUpdate, { signal, onState = () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const stream = new AbortController();
    const settle = (fn, value) => {
      stream.abort();
      fn(value);
    };
    signal?.addEventListener("abort", () => settle(reject, signal.reason), { once: true });
    followEvents({
      images: [id],
      signal: stream.signal,
      onEvent: ({ type, data }) => {
        if (type === "deleted") return settle(reject, new ApiError(404, "This image was deleted."));
        onUpdate(data);
        if (!isPending(data)) settle(resolve, data);
      },
      onState: (state) => {
        onState(state);
        if (state === "polling") {
          stream.abort();
          pollImage(id, onUpdate, { signal }).then(resolve, reject);
        }
      },
    });
  });
}

/** Words for the page's status line. */
export const STATE_TEXT = {
  connecting: "Connecting…",
  live: "Live updates",
  reconnecting: "Reconnecting to live updates…",
  polling: "Updates every few seconds (live stream unavailable)",
};

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(undefined);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve(undefined);
    }, { once: true });
  });
}
