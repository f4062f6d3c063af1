/**
 * Server-sent events framing as the Stepflow HTTP transport uses it (stepflow 0.8 §3.5): each
 * event is `data: <one JSON-RPC message>` followed by a blank line. Only `data` fields are
 * read; several `data` lines of one event are joined with `\n` (the SSE standard).
 * @module
 */
import { invalidUtf8Offset } from "../core/utf8.ts";
import { concatBytes } from "../core/read_bounded.ts";

/** Formats one message as an SSE event (`data: <text>\n\n`). */
export function sseEvent(text: string): string {
  return `data: ${text}\n\n`;
}

/** Options of {@linkcode readSseData}: bounds on one event. */
export interface SseLimits {
  /**
   * Largest event, bytes of the stream (its `data` lines and its unfinished line, counted as
   * they arrive, before any decoding): a larger one stops the reading (the stream is cancelled)
   * with `onTooLarge`'s error. At most (and by default) {@linkcode MAX_SSE_EVENT_BYTES}.
   */
  maxEventBytes?: number;
  /** Called when an event passes `maxEventBytes` (`bytes`: what was read of it): the error to throw. */
  onTooLarge?: (head: string, bytes: number) => Error;
  /**
   * When given, the stream is decoded strictly: bytes that are not UTF-8 stop the reading with
   * this error (the stream is cancelled) instead of reaching an event as U+FFFD. It gets the
   * offset of the first bad byte in the stream, bytes.
   */
  onInvalidUtf8?: (byteOffset: number) => Error;
}

const HEAD_CHARS = 4096;

/**
 * Largest event this reader holds, bytes: a little under V8's longest string (2^29 - 24 UTF-16
 * code units; an event's text has at most as many as its bytes). A larger `maxEventBytes` is
 * lowered to it.
 */
export const MAX_SSE_EVENT_BYTES = 2 ** 29 - 64 * 1024;

const DATA = [0x64, 0x61, 0x74, 0x61, 0x3a]; // "data:"

/** True when `line` starts with `data:`. */
function isData(line: Uint8Array): boolean {
  if (line.length < 5) return false;
  for (let i = 0; i < 5; i++) if (line[i] !== DATA[i]) return false;
  return true;
}

/**
 * Reads the `data` of each event from an SSE byte stream, in order. Memory is bounded by
 * `limits.maxEventBytes`, counted in bytes as they arrive: an unfinished line is held as bytes
 * and decoded once whole (before: as text decoded chunk by chunk, limited in characters, so a
 * line of two-byte characters held twice the limit in memory — 1 GiB at the 512 Mi characters
 * of the step-service transport). A long line costs linear time (its pieces are joined once).
 * @param body the response body.
 * @param stop cancels the reading (the stream is cancelled; the iterator ends).
 * @returns an async iterator of event data strings; stops at the end of the stream (an
 *   unfinished last line is dropped, as the SSE standard says).
 * @throws the error of `limits.onTooLarge` / `limits.onInvalidUtf8` (the stream is cancelled).
 */
export async function* readSseData(
  body: ReadableStream<Uint8Array>,
  stop?: AbortSignal,
  limits: SseLimits = {},
): AsyncGenerator<string> {
  const max = Math.min(limits.maxEventBytes ?? Infinity, MAX_SSE_EVENT_BYTES);
  const onInvalid = limits.onInvalidUtf8;
  // a byte-order mark is dropped at the start of the stream only (below), not at each line's
  const decoder = new TextDecoder("utf-8", { fatal: onInvalid !== undefined, ignoreBOM: true });
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  stop?.addEventListener("abort", cancel, { once: true });
  /** Pieces of the unfinished line (bytes), and the stream offset of its first byte. */
  let pending: Uint8Array[] = [];
  let pendingLen = 0;
  let pendingAt = 0;
  let data: string[] = [];
  /** Bytes of the event's `data` lines so far (each with its newline). */
  let dataBytes = 0;
  /** Stream offset of the chunk being read, bytes. */
  let offset = 0;
  const decode = (bytes: Uint8Array, at: number): string => {
    try {
      return decoder.decode(bytes);
    } catch (err) {
      if (onInvalid && err instanceof TypeError) {
        throw onInvalid(at + Math.max(0, invalidUtf8Offset(bytes)));
      }
      throw err;
    }
  };
  const head = () => {
    if (data.length > 0) return data[0].slice(0, HEAD_CHARS);
    // the first bytes only (an unfinished line near the limit does not fit in one string)
    const want = HEAD_CHARS * 4 + 6;
    const pieces: Uint8Array[] = [];
    for (let i = 0, n = 0; i < pending.length && n < want; i++) {
      pieces.push(pending[i]);
      n += pending[i].length;
    }
    const text = new TextDecoder().decode(concatBytes(pieces).subarray(0, want));
    return text.replace(/^\uFEFF?data: ?/, "").slice(0, HEAD_CHARS);
  };
  const tooLarge = (bytes: number) =>
    limits.onTooLarge?.(head(), bytes) ?? new Error(`an event is larger than ${max} bytes`);
  try {
    for (;;) {
      if (stop?.aborted) return;
      const { value, done } = await reader.read();
      if (done) {
        // an unfinished last line is dropped; strictly, its bytes must still be UTF-8
        if (onInvalid && pendingLen > 0) decode(concatBytes(pending), pendingAt);
        break;
      }
      let start = 0;
      for (;;) {
        const nl = value.indexOf(10, start);
        if (nl < 0) break;
        let line: Uint8Array;
        let at: number;
        if (pendingLen > 0) {
          pending.push(value.subarray(start, nl));
          line = concatBytes(pending);
          at = pendingAt;
          pending = [];
          pendingLen = 0;
        } else {
          line = value.subarray(start, nl);
          at = offset + start;
        }
        start = nl + 1;
        let n = line.length;
        if (n > 0 && line[n - 1] === 13) n--; // \r\n
        if (at === 0 && n >= 3 && line[0] === 0xef && line[1] === 0xbb && line[2] === 0xbf) {
          line = line.subarray(3, n); // a byte-order mark at the start of the stream
          at = 3;
          n = line.length;
        }
        if (n === 0) {
          if (data.length > 0) yield data.join("\n");
          data = [];
          dataBytes = 0;
        } else if (isData(line)) {
          dataBytes += n + 1;
          if (dataBytes > max) throw tooLarge(dataBytes);
          const skip = n > 5 && line[5] === 0x20 ? 6 : 5;
          data.push(decode(line.subarray(skip, n), at + skip));
        } else if (onInvalid) {
          decode(line.subarray(0, n), at); // another field: ignored, but it must be UTF-8
        }
      }
      if (start < value.length) {
        if (pendingLen === 0) pendingAt = offset + start;
        pending.push(start === 0 ? value : value.subarray(start));
        pendingLen += value.length - start;
        if (dataBytes + pendingLen > max) throw tooLarge(dataBytes + pendingLen);
      }
      offset += value.length;
    }
    if (data.length > 0) yield data.join("\n");
  } finally {
    stop?.removeEventListener("abort", cancel);
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
