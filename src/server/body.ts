/**
 * Reading request bodies: at most `limit` bytes (413 beyond, before reading more than the limit),
 * UTF-8, parsed as JSON with exact numbers (`9007199254740993` and `15.0` stay as written, see
 * src/json/exact_json.ts), each field nested at most {@linkcode MAX_JSON_DEPTH} levels deep (400
 * beyond, naming the field, as flow files, inputs and step-service messages are held). The parsed
 * value is handed to Hono's body cache so the zod validators of the routes see it.
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { MAX_JSON_DEPTH, nestedDeeperThan, parseJson } from "../json/exact_json.ts";
import { findDuplicateKey } from "../json/duplicate_keys.ts";
import { findLoneSurrogate, mayHoldLoneSurrogate } from "../json/lone_surrogate.ts";
import { loneSurrogateError } from "../core/diagnostics.ts";
import { ApiError } from "./api_error.ts";

/** Default request body limit: 10 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Longest wait for the next bytes of a request body, ms (30 s). A client that sent its headers
 * and part of a body, then stalled, held its request open for ever, and `stepflow serve` did not
 * stop on SIGTERM until the client went away (shutdown waits for open requests).
 */
export const BODY_IDLE_TIMEOUT_MS = 30_000;

/** Options of {@linkcode jsonBody}. */
export interface JsonBodyOptions {
  /** Longest wait for the next bytes of a body, ms. @default BODY_IDLE_TIMEOUT_MS */
  idleTimeoutMs?: number;
  /** Aborted when the service stops: bodies still arriving are answered 503 at once. */
  stopping?: AbortSignal;
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/**
 * Middleware for POST/PUT/PATCH requests: enforces `limit` on every body and parses JSON bodies.
 * @throws {ApiError} 413 when the body is larger than `limit` bytes; 400 when a JSON body is not
 * UTF-8 or not JSON (the message has the parser's position), when a field of it (`$.input`,
 * `$.flow`, `$.inputs[3]`) nests more than {@linkcode MAX_JSON_DEPTH} levels deep, or when an
 * object of it has a key twice (`$.flow.name is given twice (line 1, column 66; ...)`); 408 when no
 * byte of the body arrived for `idleTimeoutMs`; 503 when the service stops while it arrives.
 */
export function jsonBody(limit: number, options: JsonBodyOptions = {}): MiddlewareHandler {
  const idleMs = options.idleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS;
  const stopping = options.stopping;
  return async (c, next) => {
    const req = c.req.raw;
    const method = req.method;
    if (method !== "POST" && method !== "PUT" && method !== "PATCH") return await next();
    const declared = req.headers.get("content-length");
    if (declared !== null && Number(declared) > limit) throw tooLarge(Number(declared), limit);
    const type = req.headers.get("content-type") ?? "";
    // not JSON: a route that takes a body answers 415 without reading it
    if (!JSON_TYPE.test(type)) return await next();
    const encoding = contentEncoding(req.headers.get("content-encoding"));
    const text = await readLimited(req, limit, idleMs, stopping, encoding);
    (c.req.bodyCache as Record<string, Promise<unknown>>).text = Promise.resolve(text);
    // An empty body reads as {}: the route's validator then names the missing fields.
    let value: unknown = {};
    if (text.trim() !== "") {
      try {
        value = parseJson(text);
      } catch (e) {
        // the exact-number reviver recurses: a deep body overflows the stack
        if (e instanceof RangeError) throw tooDeep("$");
        throw new ApiError(400, `The request body is not valid JSON: ${(e as Error).message}`);
      }
      // each level takes two characters at least: short bodies need no walk
      const deep = text.length > 2 * MAX_JSON_DEPTH ? tooDeepAt(value) : undefined;
      if (deep !== undefined) throw tooDeep(deep);
      // JSON.parse keeps the last of two equal keys silently: a flow, an input or a field of
      // the request given twice was taken half (flow files and the CLI's inputs refuse them)
      const dup = findDuplicateKey(text);
      if (dup !== undefined) {
        const field = /^[A-Za-z_$][\w$]*$/.test(dup.key)
          ? `${dup.path}.${dup.key}`
          : `${dup.path}[${JSON.stringify(dup.key)}]`;
        throw new ApiError(
          400,
          `Invalid request body: ${field} is given twice (line ${dup.line}, column ${dup.col}; ` +
            `first at line ${dup.firstLine}, column ${dup.firstCol}): remove one of them`,
        );
      }
      // a string that is not Unicode text (a lone surrogate escape) would be stored changed
      // (U+FFFD in the runs table): refused as stepflow 0.8 refuses it
      const lone = mayHoldLoneSurrogate(text) ? findLoneSurrogate(value) : undefined;
      if (lone !== undefined) {
        throw new ApiError(400, `Invalid request body: ${loneSurrogateError(lone).text}`);
      }
    }
    // Hono's json() parses the text again with JSON.parse (losing exact numbers): answer with
    // the value parsed here instead.
    const parsed = Promise.resolve(value);
    Object.defineProperty(c.req, "json", { value: () => parsed, configurable: true });
    return await next();
  };
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** `Content-Encoding` names read (lower case) and the `DecompressionStream` format of each. */
const ENCODINGS: Record<string, CompressionFormat | undefined> = {
  gzip: "gzip",
  "x-gzip": "gzip",
  deflate: "deflate",
  br: "brotli" as CompressionFormat,
};

/**
 * The decompression a body's `Content-Encoding` asks for: undefined for none (or `identity`).
 * @throws {ApiError} 415 for an encoding not read here, or more than one (`gzip, br`): the body
 * used to be read as if it were not compressed ("not UTF-8 text", or a `br`-labelled plain body
 * taken as it was).
 */
function contentEncoding(
  header: string | null,
): { name: string; format: CompressionFormat } | undefined {
  if (header === null) return undefined;
  const names = header.split(",").map((n) => n.trim().toLowerCase()).filter((n) =>
    n !== "" && n !== "identity"
  );
  if (names.length === 0) return undefined;
  const format = names.length === 1 ? ENCODINGS[names[0]] : undefined;
  if (format === undefined) {
    throw new ApiError(
      415,
      `Unsupported Content-Encoding '${header.slice(0, 100)}': send the body uncompressed, or ` +
        `compressed once with gzip, deflate or br`,
      undefined,
      CLOSE,
    );
  }
  return { name: names[0], format };
}

/**
 * Reads the body as UTF-8 text, failing with 413 as soon as it passes `limit` bytes (after
 * decompression, for a compressed body: a small gzip bomb is stopped at the limit), with 408
 * when no bytes came for `idleMs`, with 503 when `stopping` aborts (the body is cancelled), with
 * 400 when a compressed body is not valid data of its encoding.
 */
async function readLimited(
  req: Request,
  limit: number,
  idleMs: number,
  stopping: AbortSignal | undefined,
  encoding?: { name: string; format: CompressionFormat },
): Promise<string> {
  if (!req.body) return "";
  if (stopping?.aborted) throw stoppingError();
  // (a declared length was checked against the limit; the server stops at the declared length)
  const source = encoding === undefined
    ? req.body
    : req.body.pipeThrough(new DecompressionStream(encoding.format));
  const reader = source.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let interrupt: ((e: ApiError) => void) | undefined;
  const interrupted = new Promise<never>((_, reject) => interrupt = reject);
  interrupted.catch(() => {});
  const onStop = () => interrupt!(stoppingError());
  stopping?.addEventListener("abort", onStop, { once: true });
  try {
    while (true) {
      timer = setTimeout(() => interrupt!(idle(idleMs, total)), idleMs);
      const { done, value } = await Promise.race([reader.read(), interrupted]);
      clearTimeout(timer);
      if (done) break;
      total += value.byteLength;
      if (total > limit) throw tooLarge(total, limit, true, encoding?.name);
      chunks.push(value);
    }
  } catch (e) {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
    if (e instanceof ApiError) throw e;
    if (encoding !== undefined) {
      throw new ApiError(
        400,
        `The request body is not valid ${encoding.name} data (Content-Encoding: ${encoding.name}): ` +
          `${(e as Error).message}`,
        undefined,
        CLOSE,
      );
    }
    throw new ApiError(400, `Could not read the request body: ${(e as Error).message}`);
  } finally {
    stopping?.removeEventListener("abort", onStop);
  }
  return decode(chunks.length === 1 ? chunks[0] : concat(chunks, total));
}

/**
 * Answers that leave a body unread close the connection (`Connection: close`): kept open, the
 * server waited for the rest of the body (a stalled client held `stepflow serve`'s shutdown, an
 * endless chunked body was read on after its 413).
 */
const CLOSE = { Connection: "close" };

function idle(ms: number, received: number): ApiError {
  return new ApiError(
    408,
    `The request body stopped arriving: no bytes for ${ms} ms after ${received} bytes; send it whole, with a correct Content-Length`,
    undefined,
    CLOSE,
  );
}

function stoppingError(): ApiError {
  return new ApiError(
    503,
    "The service is stopping: the request body was not read; send it again",
    undefined,
    CLOSE,
  );
}

function decode(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new ApiError(400, "The request body is not UTF-8 text");
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Fields whose items are each one value held to the limit: `POST /batches` `inputs`. */
const LIST_FIELDS = new Set(["inputs"]);

/**
 * The JSON path of the first field of `body` (`$.input`, `$.flow`), or item of a list field
 * (`$.inputs[3]`), nested more than {@linkcode MAX_JSON_DEPTH} levels deep; undefined when none
 * is. Stops as soon as the bound is passed, so any depth is safe to check.
 */
function tooDeepAt(body: unknown): string | undefined {
  if (body === null || typeof body !== "object") return undefined;
  for (const [key, field] of Object.entries(body)) {
    const path = `$${segment(body, key)}`;
    if (Array.isArray(field) && !Array.isArray(body) && LIST_FIELDS.has(key)) {
      const item = field.findIndex((v) => nestedDeeperThan(v, MAX_JSON_DEPTH));
      if (item !== -1) return `${path}[${item}]`;
    } else if (nestedDeeperThan(field, MAX_JSON_DEPTH)) return path;
  }
  return undefined;
}

function segment(parent: object, key: string): string {
  if (Array.isArray(parent)) return `[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function tooDeep(path: string): ApiError {
  return new ApiError(
    400,
    `Invalid request body: ${path} is nested more than ${MAX_JSON_DEPTH} levels deep, over the engine's limit: flatten it`,
  );
}

function tooLarge(size: number, limit: number, atLeast = false, encoding?: string): ApiError {
  return new ApiError(
    413,
    `The request body is ${atLeast ? "more than " : ""}${atLeast ? limit : size} bytes${
      encoding === undefined ? "" : ` once decompressed (${encoding})`
    }, over the limit of ${limit} bytes (stepflow serve --max-body-size)`,
    undefined,
    CLOSE,
  );
}
