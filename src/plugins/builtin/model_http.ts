/**
 * The HTTP side of `/openai` and `/chat` (issue 16): `POST {baseUrl}/chat/completions` with
 * `fetch`, whole or as server-sent events, for any OpenAI-compatible server.
 *
 * Why not the npm `openai` client: measured (docs/performance.md, "Model calls"), it made every
 * command of the bundle pay about 1.18× CPU and 7 MiB at start-up (`deno bundle` inlines even a
 * dynamic import: 1.25 MB of JavaScript parsed by every `stepflow` command), its first use in a
 * process cost 65–500 ms to load, each call 0.23 ms more than a bare `fetch` (0.65 ms streamed),
 * and it reads `OPENAI_CUSTOM_HEADERS` on its own. One endpoint and its event stream are little
 * code; the behaviours that matter are kept: retryable statuses (408, 409, 429, 5xx,
 * `x-should-retry`), `Retry-After` / `retry-after-ms`, a request timeout, aborting on the step's
 * signal, errors of OpenAI, Ollama, vLLM and llama.cpp shapes.
 *
 * Bounded: an answer is read up to `maxBodyBytes` (the engine's output size limit + 64 KiB, as
 * step services' answers): a server sending an endless body cannot fill the engine's memory.
 * A server that answers a streamed request with a whole JSON completion (some gateways ignore
 * `stream`) is read as that completion.
 *
 * Thrown: {@linkcode ModelApiError} (an HTTP error status), {@linkcode ModelConnectionError}
 * (no answer: refused, reset, DNS; {@linkcode ModelCutOffError} when the answer broke off),
 * {@linkcode ModelTimeoutError} (the endpoint's timeout), {@linkcode ModelAbortError} (the step's
 * signal), {@linkcode ModelAnswerError} (an answer that is not JSON or not UTF-8 — decoded
 * strictly, naming the first bad byte's offset, as step services' answers — an error event in a
 * stream),
 * {@linkcode ModelAnswerTooLargeError} (past `maxBodyBytes`). A missing Deno permission is thrown
 * as Deno throws it (the caller turns it into the CLI's hint).
 * @module
 */
import { readSseData } from "../../protocol/sse.ts";
import { logger } from "../../log.ts";
import { invalidUtf8Offset } from "../../core/utf8.ts";
import { type BoundedRead, readBounded } from "../../core/read_bounded.ts";

/** Where a request goes (see src/plugins/builtin/openai_client.ts for where each part comes from). */
export interface ModelEndpoint {
  baseUrl: string;
  /** Undefined: no `Authorization` header (local servers). */
  apiKey?: string;
  /** Extra headers; they win over the defaults (a gateway may want its own `Authorization`). */
  headers: Record<string, string>;
  /** Limit on the whole request, ms (headers and body, streamed or not). */
  timeoutMs: number;
  /**
   * Most bytes of an answer read (a whole body, or the data of a stream's events together).
   * @default {@linkcode DEFAULT_MAX_ANSWER_BYTES}
   */
  maxBodyBytes?: number;
}

/** Most bytes of an answer read when the engine has no output size limit (as step services). */
export const DEFAULT_MAX_ANSWER_BYTES = 512 * 1024 * 1024;
/** Room for the envelope of an answer whose content is at the output size limit, bytes. */
export const ANSWER_ENVELOPE_BYTES = 64 * 1024;

/** The error object of an HTTP error answer, as far as the server gave one. */
export interface ApiErrorBody {
  message?: string;
  type?: string;
  code?: string | number;
  param?: string;
}

/** The server answered with an HTTP error status. */
export class ModelApiError extends Error {
  override name = "ModelApiError";
  constructor(
    readonly status: number,
    readonly headers: Headers,
    readonly body: ApiErrorBody,
    message: string,
  ) {
    super(message);
  }
}

/** No answer: connection refused or reset, DNS failure, a stream that ended early. */
export class ModelConnectionError extends Error {
  override name = "ModelConnectionError";
}

/** The server was reached but its answer broke off (the body or the stream ended early). */
export class ModelCutOffError extends ModelConnectionError {
  override name = "ModelCutOffError";
}

/** The answer is longer than `maxBodyBytes`: it was not read to its end. */
export class ModelAnswerTooLargeError extends Error {
  override name = "ModelAnswerTooLargeError";
  constructor(readonly sizeBytes: number, readonly limitBytes: number) {
    super(`the answer is more than ${sizeBytes} bytes, not read to its end`);
  }
}

/** No complete answer within the endpoint's `timeoutMs`. */
export class ModelTimeoutError extends Error {
  override name = "ModelTimeoutError";
}

/** The step's signal aborted the request (step timeout, cancelled run). */
export class ModelAbortError extends Error {
  override name = "ModelAbortError";
}

/** The server answered 2xx with something that is not a chat completion (not JSON, an error event). */
export class ModelAnswerError extends Error {
  override name = "ModelAnswerError";
}

const log = logger("openai");
const USER_AGENT = "stepflow (Deno)";
/** Error answers are read up to this many characters. */
const MAX_ERROR_TEXT = 64 * 1024;

/**
 * `{baseUrl}/chat/completions` (one slash between); a query of the base URL (Azure's
 * `?api-version=...`) stays at the end.
 */
export function chatUrl(baseUrl: string): string {
  const u = new URL(baseUrl);
  u.pathname = u.pathname.replace(/\/+$/, "") + "/chat/completions";
  return u.href;
}

/** A URL for the log: no user info, no query (either may hold a key). */
function logUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/**
 * Sends one chat completion request and returns the parsed answer.
 * @param body the request (compact JSON; exact raw numbers are sent as written).
 * @throws see the module doc.
 */
export async function postChat(
  endpoint: ModelEndpoint,
  body: unknown,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const req = await open(endpoint, body, signal, false);
  try {
    return parseCompletion(await readAnswer(req, endpoint));
  } finally {
    req.done();
  }
}

/** Reads the whole body, at most `maxBodyBytes`. */
async function readAnswer(req: OpenRequest, endpoint: ModelEndpoint): Promise<string> {
  const limit = endpoint.maxBodyBytes ?? DEFAULT_MAX_ANSWER_BYTES;
  const body = req.response.body;
  if (!body) return "";
  // the common answer has a Content-Length within the limit: read it in one go
  const length = req.response.headers.get("content-length");
  if (length !== null && /^\d+$/.test(length) && Number(length) <= limit) {
    let bytes: Uint8Array;
    try {
      bytes = await req.response.bytes();
    } catch (e) {
      throw cutOff(req, e);
    }
    return decodeAnswer(bytes);
  }
  let read: BoundedRead;
  try {
    read = await readBounded(body, limit);
  } catch (e) {
    throw cutOff(req, e);
  }
  if (read.over) throw new ModelAnswerTooLargeError(read.size, limit);
  return decodeAnswer(read.bytes);
}

const strict = new TextDecoder("utf-8", { fatal: true });

/** An answer body as text: strictly UTF-8 (bad bytes would reach the step changed, as U+FFFD). */
function decodeAnswer(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    throw notUtf8("the answer", invalidUtf8Offset(bytes));
  }
}

/** The error for an answer that is not UTF-8, naming the first bad byte's offset. */
function notUtf8(what: string, byteOffset: number): ModelAnswerError {
  return new ModelAnswerError(
    `${what} is not UTF-8 text (an invalid byte at offset ${byteOffset}); its data was not ` +
      `used: the server must send UTF-8`,
  );
}

/** The error for a body that could not be read to its end (abort and timeout told apart). */
function cutOff(req: OpenRequest, e: unknown, what = "the answer"): Error {
  const f = req.failure(e);
  return f instanceof ModelConnectionError && !(f instanceof ModelCutOffError)
    ? new ModelCutOffError(`${what} broke off: ${f.message}`, { cause: e })
    : f;
}

function parseCompletion(text: string): Record<string, unknown> {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new ModelAnswerError(`the answer is not JSON: ${clip(text, 200)}`);
  }
  if (answer === null || typeof answer !== "object" || Array.isArray(answer)) {
    throw new ModelAnswerError(`the answer is not a JSON object: ${clip(text, 200)}`);
  }
  return answer as Record<string, unknown>;
}

/**
 * A whole completion given for a streamed request, as the one chunk a stream would carry
 * (`message` as `delta`).
 */
function completionAsChunk(c: Record<string, unknown>): Record<string, unknown> {
  const choices = Array.isArray(c.choices) ? c.choices : [];
  return {
    ...c,
    choices: choices.map((ch) => {
      if (ch === null || typeof ch !== "object") return ch;
      const { message, ...rest } = ch as Record<string, unknown>;
      const delta = message !== null && typeof message === "object"
        ? { ...message as Record<string, unknown> }
        : {};
      if (Array.isArray(delta.tool_calls)) {
        delta.tool_calls = delta.tool_calls.map((tc, index) =>
          tc !== null && typeof tc === "object" ? { index, ...tc } : tc
        );
      }
      return { ...rest, delta };
    }),
  };
}

/**
 * Sends one chat completion request with `stream: true` (the body must say so) and yields each
 * event's parsed chunk until `data: [DONE]`.
 * @throws see the module doc; a stream that ends without `[DONE]` and without a
 *   `finish_reason` is a {@linkcode ModelConnectionError}.
 */
export async function* streamChat(
  endpoint: ModelEndpoint,
  body: unknown,
  signal: AbortSignal,
): AsyncGenerator<Record<string, unknown>> {
  const req = await open(endpoint, body, signal, true);
  let finished = false;
  try {
    const type = req.response.headers.get("content-type") ?? "";
    if (/json/i.test(type) && !/event-stream/i.test(type)) {
      // a server (or gateway) that does not stream answered with the whole completion
      const c = parseCompletion(await readAnswer(req, endpoint));
      if (c.error !== undefined) {
        throw new ModelAnswerError(
          `the server sent an error: ${errorBody(c).message ?? clip(JSON.stringify(c), 200)}`,
        );
      }
      yield completionAsChunk(c);
      return;
    }
    const stream = req.response.body;
    if (!stream) throw new ModelAnswerError("the answer has no body");
    const limit = endpoint.maxBodyBytes ?? DEFAULT_MAX_ANSWER_BYTES;
    const tooLarge = (_head: string, bytes: number) => new ModelAnswerTooLargeError(bytes, limit);
    /** Characters of event data read so far (the answer grows with them). */
    let total = 0;
    try {
      for await (
        const data of readSseData(stream, req.signal, {
          maxEventBytes: limit,
          onTooLarge: tooLarge,
          onInvalidUtf8: (at) => notUtf8("the answer stream", at),
        })
      ) {
        total += data.length;
        if (total > limit) throw new ModelAnswerTooLargeError(total, limit);
        if (data.trim() === "[DONE]") return;
        let chunk: unknown;
        try {
          chunk = JSON.parse(data);
        } catch {
          throw new ModelAnswerError(`an event of the answer is not JSON: ${clip(data, 200)}`);
        }
        if (chunk === null || typeof chunk !== "object") continue;
        const c = chunk as Record<string, unknown>;
        if (c.error !== undefined) {
          throw new ModelAnswerError(
            `the server sent an error in the stream: ${errorBody(c).message ?? clip(data, 200)}`,
          );
        }
        const choices = Array.isArray(c.choices) ? c.choices : [];
        if (choices.some((ch) => typeof ch?.finish_reason === "string")) finished = true;
        yield c;
      }
    } catch (e) {
      if (e instanceof ModelAnswerTooLargeError) throw e;
      throw cutOff(req, e, "the answer stream");
    }
    if (req.signal.aborted) throw req.failure(req.signal.reason);
    if (!finished) {
      throw new ModelCutOffError(
        "the answer stream ended before the answer was complete (no finish_reason, no [DONE])",
      );
    }
  } finally {
    req.done();
  }
}

interface OpenRequest {
  response: Response;
  /** Aborted by the step's signal or the timeout. */
  signal: AbortSignal;
  /** The error to throw for `e` (abort and timeout told apart). */
  failure(e: unknown): Error;
  /** Clears the timer (call once the body is read). */
  done(): void;
}

async function open(
  endpoint: ModelEndpoint,
  body: unknown,
  signal: AbortSignal,
  stream: boolean,
): Promise<OpenRequest> {
  const url = chatUrl(endpoint.baseUrl);
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(new ModelTimeoutError(`no answer within ${endpoint.timeoutMs} ms`)),
    endpoint.timeoutMs,
  );
  const both = AbortSignal.any([signal, timeout.signal]);
  const failure = (e: unknown): Error => {
    if (signal.aborted) return new ModelAbortError("the request was aborted", { cause: e });
    if (timeout.signal.aborted) return timeout.signal.reason as Error;
    if (
      e instanceof ModelAnswerError || e instanceof ModelConnectionError ||
      e instanceof ModelAnswerTooLargeError
    ) {
      return e;
    }
    if (isPermissionError(e)) return e as Error;
    return new ModelConnectionError(e instanceof Error ? e.message : String(e), { cause: e });
  };
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: stream ? "text/event-stream" : "application/json",
    "user-agent": USER_AGENT,
  };
  if (endpoint.apiKey !== undefined) headers.authorization = `Bearer ${endpoint.apiKey}`;
  for (const [k, v] of Object.entries(endpoint.headers)) headers[k.toLowerCase()] = v;
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: both,
    });
  } catch (e) {
    clearTimeout(timer);
    throw failure(e);
  }
  if (log.enabled("debug")) {
    log.debug(
      `POST ${logUrl(url)}: HTTP ${response.status} in ${
        Math.round(performance.now() - started)
      } ms`,
    );
  }
  if (!response.ok) {
    let text = "";
    try {
      text = clip(await response.text(), MAX_ERROR_TEXT);
    } catch {
      // the body could not be read: the status says enough
    } finally {
      clearTimeout(timer);
    }
    const parsed = parseErrorText(text);
    const message = parsed.message ?? (text.trim() !== "" ? clip(text.trim(), 500) : "(no body)");
    throw new ModelApiError(response.status, response.headers, parsed, message);
  }
  return { response, signal: both, failure, done: () => clearTimeout(timer) };
}

/** The error object of an error answer: OpenAI's `{error: {...}}`, `{error: "..."}`, `{message}`. */
export function parseErrorText(text: string): ApiErrorBody {
  try {
    const v = JSON.parse(text);
    if (v !== null && typeof v === "object") return errorBody(v as Record<string, unknown>);
  } catch {
    // not JSON
  }
  return {};
}

function errorBody(v: Record<string, unknown>): ApiErrorBody {
  const e = v.error;
  const src = e !== null && typeof e === "object" ? e as Record<string, unknown> : v;
  const out: ApiErrorBody = {};
  if (typeof e === "string") out.message = e;
  else if (typeof src.message === "string") out.message = src.message;
  else if (typeof src.detail === "string") out.message = src.detail;
  if (typeof src.type === "string") out.type = src.type;
  if (typeof src.code === "string" || typeof src.code === "number") out.code = src.code;
  if (typeof src.param === "string") out.param = src.param;
  return out;
}

function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable;
}

function clip(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) + "…" : text;
}
