/**
 * Server-sent events framing as the Stepflow HTTP transport uses it (stepflow 0.8 §3.5): each
 * event is `data: <one JSON-RPC message>` followed by a blank line. Only `data` fields are
 * read; several `data` lines of one event are joined with `\n` (the SSE standard).
 * @module
 */
import { invalidUtf8Offset } from "../core/utf8.ts";

/** Formats one message as an SSE event (`data: <text>\n\n`). */
export function sseEvent(text: string): string {
  return `data: ${text}\n\n`;
}

/** Options of {@linkcode readSseData}: bounds on one event. */
export interface SseLimits {
  /**
   * Largest event (its `data`, in UTF-16 code units, at most its bytes): a larger one stops the
   * reading (the stream is cancelled) with `onTooLarge`'s error. At most (and by default)
   * {@linkcode MAX_SSE_EVENT_CHARS}.
   */
  maxEventChars?: number;
  /** Called when an event passes `maxEventChars`: the error to throw. */
  onTooLarge?: (head: string, chars: number) => Error;
  /** Size at which `onLongEvent` sees an unfinished event once. @default Infinity */
  longEventChars?: number;
  /**
   * Gets the event's first 4 KiB and its size so far; returning an error stops the reading with
   * it (e.g. an answer that will be refused for its size anyway), undefined reads on.
   */
  onLongEvent?: (head: string, chars: number) => Error | undefined;
  /**
   * When given, the stream is decoded strictly: bytes that are not UTF-8 stop the reading with
   * this error (the stream is cancelled) instead of reaching an event as U+FFFD. It gets the
   * offset of the first bad byte in the stream, bytes.
   */
  onInvalidUtf8?: (byteOffset: number) => Error;
}

const HEAD_CHARS = 4096;

/**
 * Longest event this reader holds, UTF-16 code units: a little under V8's longest string
 * (2^29 - 24). A larger `maxEventChars` is lowered to it: the step-service transport's 512 MiB
 * (2^29) let a line of `data:` without a newline grow past what one string can hold, and the
 * limit's own error then failed with "Invalid string length" after holding 1 GB.
 */
export const MAX_SSE_EVENT_CHARS = 2 ** 29 - 64 * 1024;

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * The bytes of an unfinished UTF-8 sequence at the end of `held` + `chunk` (which decoded without
 * error): what a streaming decoder keeps for the next chunk (at most 3 bytes).
 */
function unfinishedTail(held: Uint8Array, chunk: Uint8Array): Uint8Array {
  const b = chunk.length >= 3 ? chunk.subarray(chunk.length - 3) : concat(held, chunk);
  for (let i = b.length - 1; i >= 0 && i >= b.length - 3; i--) {
    const c = b[i];
    if (c < 0x80) break;
    if (c >= 0xc0) {
      const len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      return b.length - i < len ? b.slice(i) : new Uint8Array(0);
    }
  }
  return new Uint8Array(0);
}

/**
 * Reads the `data` of each event from an SSE byte stream, in order. Memory is bounded by
 * `limits.maxEventChars` (a stream without newlines cannot fill it), and a long line costs
 * linear time (its pieces are joined once).
 * @param body the response body.
 * @param stop cancels the reading (the stream is cancelled; the iterator ends).
 * @returns an async iterator of event data strings; stops at the end of the stream.
 * @throws the error of `limits.onTooLarge` / `limits.onLongEvent` / `limits.onInvalidUtf8` (the
 *   stream is cancelled).
 */
export async function* readSseData(
  body: ReadableStream<Uint8Array>,
  stop?: AbortSignal,
  limits: SseLimits = {},
): AsyncGenerator<string> {
  const max = Math.min(limits.maxEventChars ?? Infinity, MAX_SSE_EVENT_CHARS);
  const long = limits.longEventChars ?? Infinity;
  const decoder = new TextDecoder("utf-8", { fatal: limits.onInvalidUtf8 !== undefined });
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  stop?.addEventListener("abort", cancel, { once: true });
  /** Pieces of the unfinished line. */
  let pending: string[] = [];
  let pendingLen = 0;
  let data: string[] = [];
  let dataLen = 0;
  let longSeen = false;
  /** Bytes decoded before this chunk, and the unfinished UTF-8 sequence the decoder holds. */
  let fed = 0;
  let held: Uint8Array = new Uint8Array(0);
  const head = () => {
    if (data.length > 0) return data[0].slice(0, HEAD_CHARS);
    // the first pieces only: joined whole, a line near the limit did not fit in one string
    let first = "";
    for (const piece of pending) {
      first += piece.slice(0, HEAD_CHARS + 6);
      if (first.length >= HEAD_CHARS + 6) break;
    }
    return first.replace(/^data: ?/, "").slice(0, HEAD_CHARS);
  };
  try {
    for (;;) {
      if (stop?.aborted) return;
      const { value, done } = await reader.read();
      let text: string;
      try {
        text = done ? decoder.decode() : decoder.decode(value, { stream: true });
      } catch (err) {
        if (limits.onInvalidUtf8 && err instanceof TypeError) {
          const bytes = done ? held : concat(held, value);
          throw limits.onInvalidUtf8(fed - held.length + Math.max(0, invalidUtf8Offset(bytes)));
        }
        throw err;
      }
      if (!done && limits.onInvalidUtf8) {
        fed += value.length;
        held = unfinishedTail(held, value);
      }
      let start = 0;
      for (;;) {
        const nl = text.indexOf("\n", start);
        if (nl < 0) break;
        let line = pending.length > 0
          ? pending.join("") + text.slice(start, nl)
          : text.slice(start, nl);
        pending = [];
        pendingLen = 0;
        start = nl + 1;
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length > 0) yield data.join("\n");
          data = [];
          dataLen = 0;
          longSeen = false;
        } else if (line.startsWith("data:")) {
          const d = line.slice(line.startsWith("data: ") ? 6 : 5);
          data.push(d);
          dataLen += d.length + 1;
        }
      }
      if (start < text.length) {
        pending.push(start === 0 ? text : text.slice(start));
        pendingLen += text.length - start;
      }
      const size = dataLen + pendingLen;
      if (size > long && !longSeen) {
        longSeen = true;
        const err = limits.onLongEvent?.(head(), size);
        if (err) throw err;
      }
      if (size > max) {
        throw limits.onTooLarge?.(head(), size) ??
          new Error(`an event is larger than ${max} characters`);
      }
      if (done) break;
    }
    if (data.length > 0) yield data.join("\n");
  } finally {
    stop?.removeEventListener("abort", cancel);
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
