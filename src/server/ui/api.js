// @ts-check
/// <reference lib="dom" />
// The REST API from the browser: JSON with exact numbers, the service's error messages, the
// token (when the service has one), and a run's event stream (server-sent events read with
// fetch, so the token header can be sent; resumed after a disconnect with Last-Event-ID).
import { parseJson } from "./json.js";

const TOKEN_KEY = "stepflow.token";

/** An error answer of the API: `status` and the service's `message`. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The token given for this tab (sessionStorage), if any. */
export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

/** @param {string | undefined} value */
export function setToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lasts until the page is left
  }
}

/** @param {Record<string, string>} [extra] */
function headers(extra = {}) {
  const t = token();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

/**
 * @param {Response} res
 * @returns {Promise<ApiError>}
 */
async function errorOf(res) {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = parseJson(await res.text());
    if (body && typeof body.message === "string") message = body.message;
  } catch {
    // not JSON
  }
  const err = new ApiError(res.status, message);
  if (res.status === 401) dispatchEvent(new CustomEvent("stepflow:unauthorized"));
  return err;
}

/**
 * Calls the API and returns its JSON answer (numbers exact).
 * @param {string} path under `/api/v1`, e.g. `/runs?limit=10`
 * @param {{ method?: string, body?: unknown, signal?: AbortSignal }} [options]
 * @returns {Promise<any>}
 * @throws {ApiError} for an error answer (its message is the service's)
 */
export async function api(path, options = {}) {
  const init = {
    method: options.method ?? "GET",
    headers: headers(
      options.body !== undefined
        ? { "content-type": "application/json", accept: "application/json" }
        : { accept: "application/json" },
    ),
    body: options.body === undefined
      ? undefined
      : typeof options.body === "string"
      ? options.body
      : JSON.stringify(options.body),
    signal: options.signal,
    cache: /** @type {RequestCache} */ ("no-store"),
  };
  const res = await fetch(`/api/v1${path}`, init);
  if (!res.ok) throw await errorOf(res);
  const text = await res.text();
  return text === "" ? null : parseJson(text);
}

/**
 * Fetches a text resource of the API (an SVG).
 * @param {string} path under `/api/v1`
 * @param {AbortSignal} [signal]
 */
export async function apiText(path, signal) {
  const res = await fetch(`/api/v1${path}`, { headers: headers(), signal });
  if (!res.ok) throw await errorOf(res);
  return await res.text();
}

/**
 * @typedef {{ id?: string, event: string, data: any }} StreamEvent
 * @typedef {"connecting" | "live" | "reconnecting" | "ended" | "failed"} StreamState
 */

/**
 * Follows a run's event stream (`GET /runs/{id}/events`): calls `onEvent` for each event (data
 * parsed), `onState` when the connection changes; reconnects with `Last-Event-ID` after a
 * network error (1 s, doubling up to 15 s), stops after `end` or when `signal` aborts.
 * @param {string} runId
 * @param {{ onEvent: (e: StreamEvent) => void, onState: (s: StreamState, why?: string) => void, signal: AbortSignal }} handlers
 */
export async function follow(runId, { onEvent, onState, signal }) {
  /** @type {string | undefined} */
  let lastId;
  let delay = 1000;
  while (!signal.aborted) {
    try {
      onState(lastId === undefined ? "connecting" : "reconnecting");
      const res = await fetch(`/api/v1/runs/${encodeURIComponent(runId)}/events`, {
        headers: headers(
          lastId === undefined
            ? { accept: "text/event-stream" }
            : { accept: "text/event-stream", "last-event-id": lastId },
        ),
        cache: "no-store",
        signal,
      });
      if (!res.ok || !res.body) {
        const err = await errorOf(res);
        if (res.status < 500) {
          onState("failed", err.message);
          return;
        }
        throw err;
      }
      onState("live");
      delay = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      read: for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const e = parseBlock(block);
          if (!e) continue;
          if (e.id !== undefined) lastId = e.id;
          if (e.event === "end") {
            onEvent(e);
            onState("ended");
            await reader.cancel().catch(() => {});
            return;
          }
          if (e.event === "error") {
            // the service stops: reconnect (maybe to another service on the same database)
            await reader.cancel().catch(() => {});
            break read;
          }
          onEvent(e);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      onState("reconnecting", err instanceof Error ? err.message : String(err));
    }
    await new Promise((resolve) => {
      const t = setTimeout(resolve, delay);
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve(undefined);
      }, { once: true });
    });
    delay = Math.min(delay * 2, 15_000);
  }
}

/**
 * One SSE block → event (undefined for comments and `retry:` alone).
 * @param {string} block
 * @returns {StreamEvent | undefined}
 */
function parseBlock(block) {
  /** @type {string | undefined} */
  let id;
  let event = "message";
  /** @type {string[]} */
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return undefined;
  let parsed;
  try {
    parsed = parseJson(data.join("\n"));
  } catch {
    parsed = data.join("\n");
  }
  return { id, event, data: parsed };
}
