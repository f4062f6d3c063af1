/**
 * Newline framing (stepflow 0.8 §3.4): one JSON message per `\n`-terminated UTF-8 line.
 * {@linkcode LineSplitter} turns byte chunks into lines without copying in the common case (a
 * chunk holding whole lines) and without quadratic concatenation for long lines (a 20 MB
 * message arriving in 64 KiB chunks is joined once).
 * @module
 */
import { invalidUtf8Offset } from "../core/utf8.ts";

const NEWLINE = 10;
const CR = 13;

/** Bytes of a long line's start given to `onOverflow` and `onLongLine`. */
export const LINE_HEAD_BYTES = 4096;

const lenientDecoder = new TextDecoder();

/**
 * Splits a byte stream into text lines. Empty lines are dropped; a trailing `\r` is removed.
 * A line longer than `maxLineBytes` is dropped (its bytes are not kept) and reported once
 * through `onOverflow`; splitting resumes after its newline. A line still unfinished when it
 * passes `longLineBytes` is shown (its first {@linkcode LINE_HEAD_BYTES} bytes) to `onLongLine`,
 * which may drop it the same way, e.g. an answer that will be refused for its size anyway.
 */
export class LineSplitter {
  #parts: Uint8Array[] = [];
  #partLen = 0;
  #decoder = new TextDecoder();
  #max: number;
  #onOverflow?: (bytes: number, head: string) => void;
  #long: number;
  #onLongLine?: (head: string, bytes: number) => boolean;
  #onInvalidUtf8?: (text: string, byteOffset: number) => void;
  #longSeen = false;
  #skipping = false;

  /**
   * @param options.maxLineBytes longest line kept, in bytes. @default Infinity
   * @param options.onOverflow called when a line passes the limit (with the bytes seen so far and
   *   the line's first bytes as text).
   * @param options.longLineBytes when an unfinished line passes this many bytes, `onLongLine` is
   *   called once for it. @default Infinity
   * @param options.onLongLine gets the line's first bytes as text and the bytes seen so far;
   *   returning true drops the line (the rest is skipped up to its newline).
   * @param options.onInvalidUtf8 when given, a line that is not valid UTF-8 goes here instead of
   *   to `onLine`: its text (each bad sequence shown as U+FFFD) and the offset of its first bad
   *   byte. Without it such a line is given to `onLine` with U+FFFD in place of the bad bytes.
   */
  constructor(
    options: {
      maxLineBytes?: number;
      onOverflow?: (bytes: number, head: string) => void;
      longLineBytes?: number;
      onLongLine?: (head: string, bytes: number) => boolean;
      onInvalidUtf8?: (text: string, byteOffset: number) => void;
    } = {},
  ) {
    this.#max = options.maxLineBytes ?? Infinity;
    this.#onOverflow = options.onOverflow;
    this.#long = options.longLineBytes ?? Infinity;
    this.#onLongLine = options.onLongLine;
    this.#onInvalidUtf8 = options.onInvalidUtf8;
    if (this.#onInvalidUtf8) this.#decoder = new TextDecoder("utf-8", { fatal: true });
  }

  /** Decodes one line's bytes and hands it to `onLine` (or `onInvalidUtf8`). */
  #emit(bytes: Uint8Array, onLine: (line: string) => void): void {
    let text: string;
    try {
      text = this.#decoder.decode(bytes);
    } catch {
      this.#onInvalidUtf8!(lenientDecoder.decode(bytes), invalidUtf8Offset(bytes));
      return;
    }
    onLine(text);
  }

  /**
   * Feeds one chunk; calls `onLine` for each complete line, in order.
   * The chunk may be reused by the caller afterwards (a partial line is copied).
   */
  push(chunk: Uint8Array, onLine: (line: string) => void): void {
    let start = 0;
    if (this.#parts.length === 0 && !this.#skipping) {
      // The common chunk: whole lines (and maybe the start of the next one) within the limit.
      // They are decoded at once and split as text (a newline byte never occurs inside a UTF-8
      // sequence), one decode per chunk instead of one per line.
      const last = chunk.lastIndexOf(NEWLINE);
      let text: string | undefined;
      if (last > 0 && last <= this.#max) {
        try {
          text = this.#decoder.decode(chunk.subarray(0, last));
        } catch {
          // a line that is not UTF-8 (strict decoding): split by bytes below, line by line
        }
      }
      if (text !== undefined) {
        let from = 0;
        for (;;) {
          const nl = text.indexOf("\n", from);
          let end = nl < 0 ? text.length : nl;
          if (end > from && text.charCodeAt(end - 1) === CR) end--;
          if (end > from) onLine(text.slice(from, end));
          if (nl < 0) break;
          from = nl + 1;
        }
        start = last + 1;
        this.#longSeen = false;
      }
    }
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (this.#skipping) {
        if (nl < 0) return;
        this.#skipping = false;
        start = nl + 1;
        continue;
      }
      if (nl < 0) {
        if (this.#partLen + chunk.length - start > this.#max) {
          this.#overflow(this.#partLen + chunk.length - start, chunk.subarray(start));
          return;
        }
        const rest = chunk.slice(start);
        this.#parts.push(rest);
        this.#partLen += rest.length;
        if (!this.#longSeen && this.#partLen > this.#long) this.#longLine();
        return;
      }
      if (this.#partLen + nl - start > this.#max) {
        this.#overflow(this.#partLen + nl - start, chunk.subarray(start, nl));
        this.#skipping = false;
        start = nl + 1;
        continue;
      }
      this.#longSeen = false;
      let bytes: Uint8Array;
      if (this.#parts.length > 0) {
        bytes = new Uint8Array(this.#partLen + nl - start);
        let off = 0;
        for (const p of this.#parts) {
          bytes.set(p, off);
          off += p.length;
        }
        bytes.set(chunk.subarray(start, nl), off);
        this.#parts = [];
        this.#partLen = 0;
      } else {
        bytes = chunk.subarray(start, nl);
      }
      start = nl + 1;
      let end = bytes.length;
      if (end > 0 && bytes[end - 1] === CR) end--;
      if (end > 0) this.#emit(end === bytes.length ? bytes : bytes.subarray(0, end), onLine);
    }
  }

  /** The first {@linkcode LINE_HEAD_BYTES} bytes of the unfinished line (and `more`) as text. */
  #head(more?: Uint8Array): string {
    const out = new Uint8Array(LINE_HEAD_BYTES);
    let off = 0;
    for (const p of more ? [...this.#parts, more] : this.#parts) {
      if (off >= out.length) break;
      const n = Math.min(p.length, out.length - off);
      out.set(p.subarray(0, n), off);
      off += n;
    }
    // a character cut at the end decodes as U+FFFD, which is harmless here
    return new TextDecoder().decode(out.subarray(0, off));
  }

  #longLine(): void {
    this.#longSeen = true;
    if (!this.#onLongLine?.(this.#head(), this.#partLen)) return;
    this.#parts = [];
    this.#partLen = 0;
    this.#skipping = true;
    this.#longSeen = false;
  }

  #overflow(bytes: number, more: Uint8Array): void {
    const head = this.#onOverflow ? this.#head(more) : "";
    this.#parts = [];
    this.#partLen = 0;
    this.#skipping = true;
    this.#longSeen = false;
    this.#onOverflow?.(bytes, head);
  }

  /** Bytes of an unfinished line held so far. */
  get pendingBytes(): number {
    return this.#partLen;
  }

  /**
   * The unfinished line held so far as text (kept), or undefined if none. Bytes that are not
   * UTF-8 are shown as U+FFFD: see {@linkcode pendingInvalidUtf8Offset}.
   */
  peek(): string | undefined {
    if (this.#partLen === 0) return undefined;
    return lenientDecoder.decode(this.#joined());
  }

  /** Where the unfinished line held so far stops being UTF-8 (bytes), or -1 (also if none). */
  pendingInvalidUtf8Offset(): number {
    if (this.#partLen === 0) return -1;
    return invalidUtf8Offset(this.#joined());
  }

  /** Returns and forgets the unfinished line (at end of stream), or undefined if none. */
  flush(): string | undefined {
    if (this.#partLen === 0) return undefined;
    const bytes = this.#joined();
    this.#parts = [];
    this.#partLen = 0;
    this.#longSeen = false;
    return lenientDecoder.decode(bytes);
  }

  #joined(): Uint8Array {
    if (this.#parts.length === 1) return this.#parts[0];
    const bytes = new Uint8Array(this.#partLen);
    let off = 0;
    for (const p of this.#parts) {
      bytes.set(p, off);
      off += p.length;
    }
    this.#parts = [bytes];
    return bytes;
  }
}
