/**
 * The `fetch` the MCP plugin gives the SDK's Streamable HTTP transport: answers are read within a
 * size limit, as the stdio transport reads lines (src/plugins/mcp/stdio_transport.ts) and step
 * services' HTTP answers are read (src/plugins/stepflow/http_body.ts), so a server cannot make
 * the engine read and parse hundreds of MB it would refuse anyway, or fill its memory with an
 * endless body.
 *
 * - A JSON answer is read up to `maxAnswerBytes`; past it the body is cancelled and each request
 *   of the POST gets an {@linkcode ANSWER_TOO_LARGE} error (`data: {sizeBytes, limitBytes}`), as
 *   the stdio transport answers for a server.
 * - An SSE answer is passed on event by event; an event past `maxAnswerBytes` is not read to its
 *   end: the requests of the POST get that error as events, and the stream ends (a `GET` stream,
 *   which answers no request of its own, ends with an error).
 * - An error status's body (which the SDK only puts into a message) is cut off after 64 KiB.
 * @module
 */
import { ANSWER_TOO_LARGE } from "../../core/rpc_error_codes.ts";
import { concatBytes, readBounded } from "../../core/read_bounded.ts";

/** Most of an error status's body read for the error message, bytes. */
const ERROR_BODY_BYTES = 64 * 1024;

/**
 * A `fetch` that bounds the answers it returns (see the module doc).
 * @param maxAnswerBytes largest JSON body or SSE event read, bytes.
 * @param base the fetch to wrap. @default globalThis.fetch
 */
export function boundedFetch(
  maxAnswerBytes: number,
  base: typeof fetch = fetch,
): typeof fetch {
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const res = await base(input, init);
    if (res.body === null || (res.status >= 300 && res.status < 400)) return res;
    if (!res.ok) return withBody(res, truncated(res.body, ERROR_BODY_BYTES));
    const ids = requestIds(init?.body);
    const type = (res.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type === "text/event-stream") {
      return withBody(res, res.body.pipeThrough(boundedEvents(maxAnswerBytes, ids)));
    }
    // no request in the POST (a notification, a response): the SDK does not read the body
    if (ids.length === 0) return res;
    const read = await readBounded(res.body, maxAnswerBytes);
    if (!read.over) return withBody(res, read.bytes);
    const answers = ids.map((id) => tooLargeAnswer(id, read.size, maxAnswerBytes));
    const headers = new Headers(res.headers);
    headers.set("content-type", "application/json");
    headers.delete("content-length");
    return withBody(
      res,
      JSON.stringify(answers.length === 1 ? answers[0] : answers),
      headers,
    );
  };
}

/** The ids of the JSON-RPC requests in a POST body (a message or a batch); none for others. */
function requestIds(body: unknown): (string | number)[] {
  if (typeof body !== "string") return [];
  let msg: unknown;
  try {
    msg = JSON.parse(body);
  } catch {
    return [];
  }
  const ids: (string | number)[] = [];
  for (const m of Array.isArray(msg) ? msg : [msg]) {
    const r = m as { id?: unknown; method?: unknown } | null;
    if (r === null || typeof r !== "object" || typeof r.method !== "string") continue;
    if (typeof r.id === "string" || typeof r.id === "number") ids.push(r.id);
  }
  return ids;
}

/** The error answer to request `id` whose answer was not read past `size` bytes. */
function tooLargeAnswer(id: string | number, size: number, limit: number) {
  return {
    jsonrpc: "2.0",
    id,
    error: {
      code: ANSWER_TOO_LARGE,
      message: `the answer is more than ${size} bytes, not read to its end`,
      data: { sizeBytes: size, limitBytes: limit },
    },
  };
}

/** `res` with another body (status, headers and url kept). */
function withBody(res: Response, body: BodyInit, headers: Headers = res.headers): Response {
  const out = new Response(body, { status: res.status, statusText: res.statusText, headers });
  Object.defineProperty(out, "url", { value: res.url });
  return out;
}

/** The first `limit` bytes of `body` (the rest is not read: the body is cancelled). */
function truncated(body: ReadableStream<Uint8Array>, limit: number): ReadableStream<Uint8Array> {
  let left = limit;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (chunk.length >= left) {
          controller.enqueue(chunk.subarray(0, left));
          controller.terminate();
          return;
        }
        left -= chunk.length;
        controller.enqueue(chunk);
      },
    }),
  );
}

const LF = 10;
const CR = 13;

/**
 * Passes an SSE byte stream on one whole event at a time (an event ends with a blank line); an
 * event of more than `limit` bytes is not read to its end: `ids` get the
 * {@linkcode ANSWER_TOO_LARGE} error as events and the stream ends (with an error when `ids` is
 * empty). Memory: the unfinished event, at most `limit` bytes and a chunk.
 */
function boundedEvents(
  limit: number,
  ids: (string | number)[],
): TransformStream<Uint8Array, Uint8Array> {
  /** The unfinished event's pieces and size. */
  let pieces: Uint8Array[] = [];
  let size = 0;
  /** Bytes of the current line so far, and its last byte (a CR alone is a blank line too). */
  let lineLen = 0;
  let lastByte = 0;
  const tooLarge = (controller: TransformStreamDefaultController<Uint8Array>) => {
    pieces = [];
    if (ids.length === 0) {
      controller.error(
        new Error(`an event of the stream is more than ${size} bytes, not read to its end`),
      );
      return;
    }
    const enc = new TextEncoder();
    for (const id of ids) {
      controller.enqueue(
        enc.encode(`data: ${JSON.stringify(tooLargeAnswer(id, size, limit))}\n\n`),
      );
    }
    controller.terminate();
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(LF, start);
        if (nl < 0) {
          const rest = chunk.subarray(start);
          if (rest.length > 0) {
            pieces.push(rest);
            size += rest.length;
            lineLen += rest.length;
            lastByte = rest[rest.length - 1];
          }
          break;
        }
        const line = chunk.subarray(start, nl + 1);
        lineLen += nl - start;
        if (nl > start) lastByte = chunk[nl - 1];
        pieces.push(line);
        size += line.length;
        start = nl + 1;
        const blank = lineLen === 0 || (lineLen === 1 && lastByte === CR);
        lineLen = 0;
        if (!blank) continue;
        if (size > limit) return tooLarge(controller);
        controller.enqueue(concatBytes(pieces));
        pieces = [];
        size = 0;
      }
      if (size > limit) tooLarge(controller);
    },
    flush(controller) {
      if (size > 0) controller.enqueue(concatBytes(pieces));
    },
  });
}
