// Kept whole (~540 lines): every path here (calls, answers, requests from the other side,
// recovery from bad lines) reads and changes one private table of open calls; split, it would
// have to be shared between modules.
/**
 * A bidirectional JSON-RPC 2.0 peer, independent of the transport (stdio lines, HTTP bodies).
 *
 * - {@linkcode Peer.request} sends a request with a fresh id and resolves with its result when
 *   the response arrives; responses may come in any order, many calls may be open at once.
 * - Requests from the other side are answered through `onRequest` while our own calls are
 *   open (a worker's `blobs/get` inside an engine's `components/execute`).
 * - Everything unexpected is logged and skipped, never thrown: a non-JSON line, an invalid
 *   message, a response with an unknown id (e.g. a response to a notification).
 *
 * Performance: this is the hot path of every step-service call. Messages are classified by
 * hand ({@linkcode classifyMessage}), not with zod; parsing uses {@linkcode parseMessage} so that
 * numbers stay exact (its cost is measured in bench/protocol_roundtrip.ts, see docs/protocol.md).
 * @module
 */
import { isJsonObject, type JsonValue, MAX_JSON_DEPTH } from "../json/exact_json.ts";
import { MessageTooDeepError, parseMessage } from "./parse_message.ts";
import { describeError, OutputLimitError, ProtocolError, TransportError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { newRequestId, PendingCalls } from "./pending_calls.ts";
import {
  classifyMessage,
  clip,
  errorText,
  type NotificationMessage,
  notificationText,
  type RequestId,
  type RequestMessage,
  requestText,
  resultText,
  toRpcError,
} from "./envelope.ts";
import {
  INTERNAL_ERROR,
  INVALID_PARAMS,
  INVALID_REQUEST,
  METHOD_NOT_FOUND,
} from "../core/rpc_error_codes.ts";

/** `"id": "<string>"` or `"id": <integer>` in the text of a message that does not parse. */
const ID_IN_TEXT = /"id"\s*:\s*(?:"([^"\\]*)"|(-?\d{1,15})(?![\d.eE]))/g;

/** The id and method of a request in `text` (a whole message, parsed), if it is one. */
function requestIn(text: string): { id: RequestId; method: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isJsonObject(value as JsonValue)) return undefined;
  const v = value as Record<string, unknown>;
  const id = v.id;
  if (typeof v.method !== "string" || (typeof id !== "string" && typeof id !== "number")) {
    return undefined;
  }
  return { id, method: v.method };
}

/** Options of a {@linkcode Peer}. */
export interface PeerOptions {
  /** Names the other side in log lines and errors, e.g. `step service 'python'`. */
  name: string;
  /** Where problems are logged. */
  log: Logger;
  /**
   * Sends one serialised message (no framing). May throw or reject (e.g. a closed pipe): the
   * call that sent it then fails with a {@linkcode TransportError}; the peer stays usable. When
   * `failed` is given, a transport may instead report a failed write by calling it and return
   * nothing (no promise per message); it must not do both. Without `failed` (a notification,
   * whose sender awaits the write) it returns a promise or throws.
   */
  write(text: string, failed?: (err: unknown) => void): void | Promise<void>;
  /**
   * Answers a request from the other side: returns (or resolves with) the result, or throws
   * (rejects with) a {@linkcode ProtocolError} (sent as is) or any error (sent as -32603 internal
   * error). A value returned synchronously is answered at once, without a microtask hop.
   * @default every request is answered with -32601 method not found
   */
  onRequest?(request: RequestMessage): unknown;
  /** Receives notifications from the other side. @default ignored (logged at debug) */
  onNotification?(notification: NotificationMessage): void;
  /**
   * Called when one of our calls is answered with a result (before it resolves; no promise hop),
   * e.g. to reset a restart count.
   */
  onResult?(): void;
  /**
   * Makes request ids. @default {@linkcode newRequestId} (UUID strings, as stepflow 0.8; see
   * src/protocol/pending_calls.ts)
   */
  newId?(): RequestId;
  /**
   * Parses one message's text. @default {@linkcode parseMessage} (exact numbers); the SDK passes
   * `JSON.parse`, as component code expects plain numbers.
   */
  parse?(text: string): JsonValue;
}

interface Pending {
  id: RequestId;
  method: string;
  resolve(result: JsonValue): void;
  reject(err: Error): void;
  /** The signal that may abort the call, and the call's listener on it. */
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const ONCE = { once: true };

/**
 * How long a call with a signal goes without an abort listener, ms. Most calls are answered
 * sooner, and a listener added and removed on Deno's `EventTarget` costs ~0.5 µs and ~0.46 KB per
 * call (issue 17: a map item, a step's call). A call whose signal aborts meanwhile is rejected at
 * the next sweep, at most this much later; an older call has its listener and is rejected at once.
 */
const ABORT_WATCH_DELAY_MS = 5;

/** Skipped messages of one kind (not JSON, unknown id, invalid) warned about per peer. */
const SKIPPED_WARNINGS = 5;

/** A JSON-RPC 2.0 peer over any message transport. */
export class Peer {
  readonly #opts: PeerOptions;
  readonly #pending = new PendingCalls<Pending>();
  /** Ids of calls given up (aborted): their late answers are expected, not suspicious. */
  readonly #abandoned = new Set<RequestId>();
  /** Answers to the other side's requests that could not be sent. */
  #lostReplies = 0;
  readonly #newId: () => RequestId;
  readonly #parse: (text: string) => JsonValue;
  /** Calls with a signal made since the last sweep (see {@linkcode ABORT_WATCH_DELAY_MS}). */
  #young: Pending[] = [];
  #sweepTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #sweep = () => this.#watchAborts();
  /** Messages skipped so far, by kind (see #warnFew). */
  #skipped: { nonJson?: number; unknownId?: number; invalid?: number; nonUtf8?: number } = {};

  constructor(options: PeerOptions) {
    this.#opts = options;
    this.#newId = options.newId ?? newRequestId;
    this.#parse = options.parse ?? parseMessage;
  }

  /** Number of our requests still waiting for a response. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Sends a request and resolves with the response's `result`.
   * @throws {ProtocolError} the error response of the other side (code, message, data).
   * @throws {TransportError} when the message could not be written or the peer was failed
   *   ({@linkcode Peer.failPending}).
   * @throws the signal's reason when `signal` aborts first (the request is then forgotten; a
   *   late response is logged as unknown).
   */
  request(method: string, params: unknown, signal?: AbortSignal): Promise<JsonValue> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#newId();
    let text: string;
    try {
      text = requestText(id, method, params);
    } catch (err) {
      // params that are not JSON (a BigInt, a cycle) or too long for one string
      return Promise.reject(
        new TransportError(
          `could not send '${method}' to ${this.#opts.name}: its params cannot be sent as JSON (${
            describeError(err).split("\n")[0]
          })`,
          { cause: err },
        ),
      );
    }
    return new Promise<JsonValue>((resolve, reject) => {
      const entry: Pending = { id, method, resolve, reject, signal, onAbort: undefined };
      this.#pending.add(entry);
      if (signal) {
        // watched from the next sweep on (most calls are answered before it)
        this.#young.push(entry);
        if (this.#sweepTimer === undefined) {
          // kept ref'd: a call's abort must be seen even when nothing else keeps the loop alive
          this.#sweepTimer = setTimeout(this.#sweep, ABORT_WATCH_DELAY_MS);
        }
      }
      this.#send(text, (err) => {
        if (this.#pending.get(id) === entry) {
          this.#take(id);
          entry.reject(
            new TransportError(
              `could not send '${method}' to ${this.#opts.name}: ${describeError(err)}`,
              { cause: err },
            ),
          );
        }
      });
    });
  }

  /** Removes an open call (answered, failed) and returns it. */
  #take(id: RequestId): Pending | undefined {
    const p = this.#pending.get(id);
    if (p === undefined) return undefined;
    this.#pending.delete(id);
    if (p.onAbort !== undefined) p.signal!.removeEventListener("abort", p.onAbort);
    return p;
  }

  /** Sends a notification. @throws {TransportError} when it could not be written. */
  async notify(method: string, params: unknown): Promise<void> {
    try {
      await this.#opts.write(notificationText(method, params));
    } catch (err) {
      throw new TransportError(
        `could not send '${method}' to ${this.#opts.name}: ${describeError(err)}`,
        { cause: err },
      );
    }
  }

  /**
   * Handles one line of text from the transport. A line that is not JSON is logged and skipped,
   * except: an answer with other text around it on the same line (`working...{"jsonrpc":...}`)
   * is taken, with a warning; a line that cannot be parsed but carries the id of an open call
   * fails that call at once; a message nested too deep fails the call it answers (or is
   * answered with an error when it is a request), so no call waits forever for it.
   */
  receiveText(text: string): void {
    let value: JsonValue;
    try {
      value = this.#parse(text);
    } catch (err) {
      if (err instanceof MessageTooDeepError) return this.#tooDeep(text, err);
      if (this.#recover(text)) return;
      if (this.#pending.size > 0 && this.#failUnparsable(text, err)) return;
      // Logged, not fatal (0.8 restarts the worker).
      this.#warnFew(
        "nonJson",
        `skipped a line that is not JSON: ${JSON.stringify(clip(text))}`,
        "more lines that are not JSON",
      );
      return;
    }
    this.receive(value);
  }

  /**
   * A line that is not UTF-8 (`text` shows each bad sequence as U+FFFD; `byteOffset` is where the
   * first one is). Its data cannot be taken without changing it, so when it carries the id of an
   * open call that call fails at once (-32603, naming the byte); otherwise it is logged and
   * skipped.
   */
  receiveInvalidUtf8(text: string, byteOffset: number): void {
    const failed = this.#pending.size > 0 && this.failCallIn(text, (method) => {
      this.#opts.log.warn(
        `${this.#opts.name}: the answer to '${method}' is not UTF-8 (byte ${byteOffset}): ${
          JSON.stringify(clip(text))
        }`,
      );
      return new ProtocolError(
        INTERNAL_ERROR,
        `${this.#opts.name} answered '${method}' with a line that is not UTF-8 text ` +
          `(an invalid byte at offset ${byteOffset}); its data was not used: write JSON ` +
          `messages as UTF-8 (non-ASCII text as is or as \\u escapes)`,
      );
    });
    if (failed) return;
    // a request of the other side (e.g. `blobs/put`) whose params are not UTF-8: refused
    const req = requestIn(text);
    if (req !== undefined) {
      this.#opts.log.warn(
        `${this.#opts.name}: refused '${req.method}': it is not UTF-8 (byte ${byteOffset})`,
      );
      this.#send(
        errorText(req.id, {
          code: INVALID_PARAMS,
          message: `Invalid params: the message is not UTF-8 text (an invalid byte at offset ` +
            `${byteOffset}); write JSON messages as UTF-8`,
        }),
        (e) => this.#lostReply({ kind: "request", id: req.id, method: req.method }, e),
      );
      return;
    }
    this.#warnFew(
      "nonUtf8",
      `skipped a line that is not UTF-8 (an invalid byte at offset ${byteOffset}): ${
        JSON.stringify(clip(text))
      }`,
      "more lines that are not UTF-8",
    );
  }

  /**
   * An unfinished line (the transport saw no newline after it and the other side went quiet):
   * true when it holds a whole answer to one of our open calls (possibly with other text before
   * it), which is then handled as if the line had ended; false otherwise (nothing is done).
   */
  receiveUnterminated(text: string): boolean {
    if (this.#pending.size === 0 || text.indexOf("{") < 0) return false;
    let value: JsonValue;
    try {
      value = this.#parse(text);
    } catch (err) {
      if (err instanceof MessageTooDeepError) return false; // not an answer we can take
      return this.#recover(text);
    }
    const msg = classifyMessage(value);
    if (msg.kind !== "response" || !this.#pending.has(msg.id as RequestId)) return false;
    this.#opts.log.warn(
      `${this.#opts.name}: the answer to '${
        this.#pending.get(msg.id as RequestId)!.method
      }' was not ended with a newline; it was taken after the worker went quiet`,
    );
    this.receive(value);
    return true;
  }

  /**
   * An answer to one of our calls with other text on the same line (a worker that printed
   * `working...` without a newline before it, or a stray character after it): the JSON object
   * from the line's first `{` to its last `}` is taken when it parses as a response to a call we
   * made. True when the line was handled.
   */
  #recover(text: string): boolean {
    const start = text.indexOf("{");
    const end = text.lastIndexOf("}");
    if (start < 0 || end <= start || (start === 0 && end === text.length - 1)) return false;
    const inner = text.slice(start, end + 1);
    let value: JsonValue;
    try {
      value = this.#parse(inner);
    } catch (err) {
      if (err instanceof MessageTooDeepError) {
        this.#tooDeep(inner, err);
        return true;
      }
      return false;
    }
    const msg = classifyMessage(value);
    if (msg.kind !== "response") return false;
    const p = this.#pending.get(msg.id as RequestId);
    if (!p && !this.#abandoned.has(msg.id as RequestId)) return false;
    const around = [
      start > 0 ? `${JSON.stringify(clip(text.slice(0, start), 80))} before` : "",
      end < text.length - 1 ? `${JSON.stringify(clip(text.slice(end + 1), 80))} after` : "",
    ].filter((x) => x !== "").join(" and ");
    this.#opts.log.warn(
      `${this.#opts.name}: the answer to '${p?.method ?? "an aborted call"}' shared its line ` +
        `with other text (${around}), which was ignored: end such output with a newline, or ` +
        `write it to stderr`,
    );
    this.receive(value);
    return true;
  }

  /**
   * A message that cannot be used (too large to be read, not JSON, not UTF-8): fails the open
   * call whose id appears in `text` (the message, or its first bytes) with `error(method)`. False
   * when `text` names no open call (e.g. a large request from the other side), and nothing is done.
   */
  failCallIn(text: string, error: (method: string) => Error): boolean {
    const id = this.#pendingIdIn(text);
    const p = id === undefined ? undefined : this.#pending.get(id);
    if (id === undefined || !p) return false;
    this.#take(id);
    p.reject(error(p.method));
    return true;
  }

  /** The open call whose id appears in `text` (its first or last 4 KiB), if any. */
  #pendingIdIn(text: string): RequestId | undefined {
    const parts = text.length > 8192 ? [text.slice(0, 4096), text.slice(-4096)] : [text];
    for (const part of parts) {
      for (const m of part.matchAll(ID_IN_TEXT)) {
        const id: RequestId = m[1] !== undefined ? m[1] : Number(m[2]);
        if (!this.#pending.has(id)) continue;
        // our own request echoed back (`"id": ..., "method": ...`) is not an answer
        if (/^\s*,\s*"method"\s*:/.test(part.slice(m.index + m[0].length))) continue;
        return id;
      }
    }
    return undefined;
  }

  /**
   * A message nested more than {@linkcode MAX_JSON_DEPTH} levels deep: the call it answers fails
   * with an {@linkcode OutputLimitError} (its step fails with 413, not retried); a request gets
   * a -32602 error answer; anything else is logged.
   */
  #tooDeep(text: string, err: MessageTooDeepError): void {
    const limit = `nested more than ${MAX_JSON_DEPTH} levels deep`;
    if (err.method !== undefined) {
      if (err.id === undefined) {
        this.#opts.log.warn(`${this.#opts.name}: ignored '${err.method}': its params are ${limit}`);
        return;
      }
      this.#opts.log.warn(`${this.#opts.name}: refused '${err.method}': its params are ${limit}`);
      this.#send(
        errorText(err.id, {
          code: INVALID_PARAMS,
          message: `Invalid params: ${limit} (the engine's limit)`,
        }),
        (e) => this.#lostReply({ kind: "request", id: err.id!, method: err.method! }, e),
      );
      return;
    }
    const v = err.value;
    if (err.id !== undefined && isJsonObject(v) && isJsonObject(v.error)) {
      // an error answer with deep `data`: keep its code and message, leave the data out
      const { code, message } = v.error;
      this.receive({
        jsonrpc: v.jsonrpc,
        id: err.id,
        error: {
          code,
          message: `${typeof message === "string" ? message : ""} (error data left out: ${limit})`,
        },
      });
      return;
    }
    const id = err.id !== undefined && this.#pending.has(err.id) ? err.id : this.#pendingIdIn(text);
    const p = id === undefined ? undefined : this.#pending.get(id);
    if (id === undefined || !p) {
      this.#opts.log.warn(`${this.#opts.name}: skipped a message ${limit}`);
      return;
    }
    this.#take(id);
    this.#opts.log.debug(`${this.#opts.name}: the answer to '${p.method}' is ${limit}`);
    p.reject(
      new OutputLimitError(`${this.#opts.name} answered '${p.method}' with a value ${limit}`, {
        limitDepth: MAX_JSON_DEPTH,
      }),
    );
  }

  /**
   * A line that looks like an answer to one of our open calls but does not parse (Python's
   * `NaN`, a truncated line, other text around it) fails that call with the parse error,
   * instead of leaving it waiting forever. The call's id is found in the line's first or last
   * 4 KiB.
   */
  #failUnparsable(text: string, err: unknown): boolean {
    return this.failCallIn(text, (method) => {
      this.#opts.log.warn(
        `${this.#opts.name}: the answer to '${method}' cannot be parsed as JSON: ${
          JSON.stringify(clip(text))
        }`,
      );
      return new ProtocolError(
        INTERNAL_ERROR,
        `${this.#opts.name} answered '${method}' with a line that cannot be parsed as JSON (${
          describeError(err).split("\n")[0]
        })`,
      );
    });
  }

  /**
   * Warns about something the other side did wrong that is skipped (`what`), a few times per
   * kind; then one note (`more`), then debug lines only: a worker that does it for every line
   * (20,000 stray responses) does not flood stderr.
   */
  #warnFew(
    kind: "nonJson" | "unknownId" | "invalid" | "nonUtf8",
    what: string,
    more: string,
  ): void {
    const n = this.#skipped[kind] = (this.#skipped[kind] ?? 0) + 1;
    const line = `${this.#opts.name}: ${what}`;
    if (n <= SKIPPED_WARNINGS) return this.#opts.log.warn(line);
    if (n === SKIPPED_WARNINGS + 1) {
      this.#opts.log.warn(
        `${this.#opts.name}: ${more}; further ones are logged at debug level`,
      );
    }
    this.#opts.log.debug(line);
  }

  /** Handles one parsed message. */
  receive(value: JsonValue): void {
    const msg = classifyMessage(value);
    switch (msg.kind) {
      case "response": {
        const p = this.#pending.get(msg.id as RequestId);
        if (!p) {
          if (this.#abandoned.delete(msg.id as RequestId)) {
            this.#opts.log.debug(`${this.#opts.name}: ignored a late answer to an aborted call`);
            return;
          }
          this.#warnFew(
            "unknownId",
            `ignored a response with unknown id ${JSON.stringify(msg.id)}`,
            "more responses with unknown ids",
          );
          return;
        }
        this.#take(msg.id as RequestId);
        if (msg.error) {
          p.reject(new ProtocolError(msg.error.code, msg.error.message, msg.error.data));
        } else {
          this.#opts.onResult?.();
          p.resolve(msg.result as JsonValue);
        }
        return;
      }
      case "request":
        this.#answer(msg);
        return;
      case "notification":
        if (this.#opts.onNotification) this.#opts.onNotification(msg);
        else this.#opts.log.debug(`${this.#opts.name}: ignored notification '${msg.method}'`);
        return;
      default:
        if (this.#invalidWithId(msg, value)) return;
        this.#warnFew(
          "invalid",
          `ignored an invalid message (${msg.reason}): ${clip(JSON.stringify(value))}`,
          "more invalid messages",
        );
    }
  }

  /**
   * An invalid message that still carries a readable id is not dropped silently: an answer to
   * one of our open requests (no `method`) fails that request with the reason, and a request
   * gets a -32600 answer, so neither side waits forever for a message that will never come.
   */
  #invalidWithId(msg: { reason: string; id?: RequestId }, value: JsonValue): boolean {
    if (!isJsonObject(value)) return false;
    if (msg.id === undefined) {
      // a request whose id is unreadable (1.5, an object): JSON-RPC answers with id null
      if (!Object.hasOwn(value, "method") || value.id === undefined || value.id === null) {
        return false;
      }
    } else if (!Object.hasOwn(value, "method")) {
      const p = this.#pending.get(msg.id);
      if (!p) return false;
      this.#take(msg.id);
      p.reject(
        new ProtocolError(
          INTERNAL_ERROR,
          `${this.#opts.name} answered '${p.method}' with an invalid JSON-RPC response (${msg.reason})`,
        ),
      );
      return true;
    }
    this.#opts.log.warn(
      `${this.#opts.name}: answered an invalid request with -32600 (${msg.reason}): ${
        clip(JSON.stringify(value))
      }`,
    );
    const id = msg.id ?? null;
    this.#send(
      errorText(id, { code: INVALID_REQUEST, message: `Invalid Request: ${msg.reason}` }),
      (e) =>
        this.#opts.log.warn(
          `${this.#opts.name}: could not answer an invalid request: ${describeError(e)}`,
        ),
    );
    return true;
  }

  /** Rejects every open request with `err` (e.g. the worker died). */
  failPending(err: Error): void {
    const all = this.#pending.values();
    this.#pending.clear();
    for (const p of all) {
      if (p.onAbort !== undefined) p.signal!.removeEventListener("abort", p.onAbort);
      p.reject(err);
    }
  }

  /**
   * The sweep of the calls made since the last one: those still open are rejected now if their
   * signal aborted, else get a listener (one per call, removed when it settles: on a signal of
   * its own, a step's, less than any shared bookkeeping).
   */
  #watchAborts(): void {
    this.#sweepTimer = undefined;
    const young = this.#young;
    this.#young = [];
    for (let i = 0; i < young.length; i++) {
      const entry = young[i];
      if (this.#pending.get(entry.id) !== entry) continue; // settled
      const signal = entry.signal!;
      if (signal.aborted) this.#aborted(entry);
      else {
        entry.onAbort = () => this.#aborted(entry);
        signal.addEventListener("abort", entry.onAbort, ONCE);
      }
    }
  }

  /** Rejects open call `entry` with its signal's reason; its late answer is expected. */
  #aborted(entry: Pending): void {
    if (this.#pending.get(entry.id) !== entry) return;
    this.#pending.delete(entry.id);
    this.#abandon(entry.id);
    entry.reject(entry.signal!.reason);
  }

  #abandon(id: RequestId): void {
    if (this.#abandoned.size >= 10_000) this.#abandoned.clear();
    this.#abandoned.add(id);
  }

  #answer(req: RequestMessage): void {
    const handler = this.#opts.onRequest;
    if (!handler) {
      return this.#fail(
        req,
        new ProtocolError(METHOD_NOT_FOUND, `Method not found: '${req.method}'`),
      );
    }
    let answer: unknown;
    try {
      answer = handler(req);
    } catch (err) {
      return this.#fail(req, err);
    }
    // no closures for a synchronous answer (the SDK's hot path)
    if (answer instanceof Promise) answer.then((r) => this.#ok(req, r), (e) => this.#fail(req, e));
    else this.#ok(req, answer);
  }

  #ok(req: RequestMessage, result: unknown): void {
    this.#reply(req, resultText(req.id, result ?? null));
  }

  #fail(req: RequestMessage, err: unknown): void {
    this.#reply(req, errorText(req.id, toRpcError(err)));
  }

  #reply(req: RequestMessage, text: string): void {
    this.#send(text, (e) => this.#lostReply(req, e));
  }

  /**
   * An answer that could not be sent: the first is a warning, the others (the same closed pipe
   * fails every answer in flight: a worker that had 13,000 requests open when it was stopped
   * printed 13,000 warnings) are counted in it and logged at debug level.
   */
  #lostReply(req: RequestMessage, err: unknown): void {
    const what = `${this.#opts.name}: could not send the answer to '${req.method}': ${
      describeError(err)
    }`;
    if (this.#lostReplies++ === 0) {
      this.#opts.log.warn(`${what} (answers lost after this one are logged at debug level)`);
    } else {
      this.#opts.log.debug(what);
    }
  }

  #send(text: string, onError: (err: unknown) => void): void {
    try {
      const r = this.#opts.write(text, onError);
      if (r) r.catch(onError);
    } catch (err) {
      onError(err);
    }
  }
}
