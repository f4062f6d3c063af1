/**
 * Newline framing (stepflow 0.8 §3.4): one JSON message per `\n`-terminated UTF-8 line.
 * {@linkcode LineSplitter} turns byte chunks into lines without copying in the common case (a
 * chunk holding whole lines) and without quadratic concatenation for long lines (a 20 MB
 * message arriving in 64 KiB chunks is joined once).
 * @module
 */

const NEWLINE = 10;
const CR = 13;

/**
 * Splits a byte stream into text lines. Empty lines are dropped; a trailing `\r` is removed.
 * A line longer than `maxLineBytes` is dropped (its bytes are not kept) and reported once
 * through `onOverflow`; splitting resumes after its newline.
 */
export class LineSplitter {
  #parts: Uint8Array[] = [];
  #partLen = 0;
  #decoder = new TextDecoder();
  #max: number;
  #onOverflow?: (bytes: number) => void;
  #skipping = false;

  /**
   * @param options.maxLineBytes longest line kept, in bytes. @default Infinity
   * @param options.onOverflow called when a line passes the limit (with the bytes seen so far).
   */
  constructor(
    options: { maxLineBytes?: number; onOverflow?: (bytes: number) => void } = {},
  ) {
    this.#max = options.maxLineBytes ?? Infinity;
    this.#onOverflow = options.onOverflow;
  }

  /**
   * Feeds one chunk; calls `onLine` for each complete line, in order.
   * The chunk may be reused by the caller afterwards (a partial line is copied).
   */
  push(chunk: Uint8Array, onLine: (line: string) => void): void {
    let start = 0;
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
          this.#overflow(this.#partLen + chunk.length - start);
          return;
        }
        const rest = chunk.slice(start);
        this.#parts.push(rest);
        this.#partLen += rest.length;
        return;
      }
      if (this.#partLen + nl - start > this.#max) {
        this.#overflow(this.#partLen + nl - start);
        this.#skipping = false;
        start = nl + 1;
        continue;
      }
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
      if (end > 0) {
        onLine(this.#decoder.decode(end === bytes.length ? bytes : bytes.subarray(0, end)));
      }
    }
  }

  #overflow(bytes: number): void {
    this.#parts = [];
    this.#partLen = 0;
    this.#skipping = true;
    this.#onOverflow?.(bytes);
  }

  /** Bytes of an unfinished line held so far. */
  get pendingBytes(): number {
    return this.#partLen;
  }

  /** Returns and forgets the unfinished line (at end of stream), or undefined if none. */
  flush(): string | undefined {
    if (this.#partLen === 0) return undefined;
    const bytes = new Uint8Array(this.#partLen);
    let off = 0;
    for (const p of this.#parts) {
      bytes.set(p, off);
      off += p.length;
    }
    this.#parts = [];
    this.#partLen = 0;
    return this.#decoder.decode(bytes);
  }
}
