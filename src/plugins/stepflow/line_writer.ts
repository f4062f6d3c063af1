/**
 * Coalesced writes of newline-delimited messages (stepflow 0.8 §3.4) to a worker's stdin: the
 * messages sent in the same turn of the event loop, or while a write is in progress, go out as
 * one write (one syscall for many calls under load; one microtask of delay when idle), and share
 * one promise (not one per message); {@linkcode LineWriter.post} makes no promise at all.
 * @module
 */

interface QueuedWrite {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function queuedWrite(): QueuedWrite {
  const w = Promise.withResolvers<void>();
  w.promise.catch(() => {}); // each sender handles the failure of its own message
  return w;
}

const encoder = new TextEncoder();
/** Largest reused write buffer, bytes; larger batches get a buffer of their own. */
const MAX_KEPT_BUFFER = 1 << 20;

/** Writes message lines in batches; see the module doc. */
export class LineWriter {
  readonly #write: (bytes: Uint8Array) => Promise<void>;
  readonly #failed: (err: unknown) => unknown;
  /** Messages waiting while a write is in progress (sent together as one write). */
  #queue: string[] = [];
  /** Settles when the queued messages are written (made by the first `send` of a batch). */
  #queued: QueuedWrite | undefined;
  /** The failure callbacks of the queued messages sent with {@linkcode post}. */
  #onFail: ((err: unknown) => void)[] = [];
  #writing = false;
  /** The reused buffer of {@linkcode #encode}. */
  #buf = new Uint8Array(16 * 1024);

  /**
   * @param write writes bytes (a stream writer's `write`); a rejection fails the batch.
   * @param failed called once when a write fails, with its error; returns the error the
   *   messages of that batch, and those queued meanwhile, are rejected with. Later messages
   *   are written again (the caller stops using a broken writer).
   */
  constructor(write: (bytes: Uint8Array) => Promise<void>, failed: (err: unknown) => unknown) {
    this.#write = write;
    this.#failed = failed;
  }

  /** Queues one message (without its newline); resolves when the write carrying it is done. */
  send(text: string): Promise<void> {
    const w = this.#queued ??= queuedWrite();
    this.#enqueue(text);
    return w.promise;
  }

  /**
   * Queues one message (without its newline); `failed` is called with the batch's error if the
   * write carrying it fails. No promise per message (issue 17: a step's call on the hot path).
   */
  post(text: string, failed: (err: unknown) => void): void {
    this.#onFail.push(failed);
    this.#enqueue(text);
  }

  #enqueue(text: string): void {
    this.#queue.push(text);
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => void this.#flush());
    }
  }

  /**
   * The batch's lines as bytes, in a buffer reused from write to write (the previous write is
   * done when the next batch is encoded): no joined string and no new buffer per batch (issue 17:
   * they were ~650 bytes of garbage per message of a map item).
   */
  #encode(batch: string[]): Uint8Array {
    let max = batch.length;
    for (let i = 0; i < batch.length; i++) max += batch[i].length * 3; // UTF-16 unit → ≤ 3 bytes
    if (max > this.#buf.length) {
      if (max > MAX_KEPT_BUFFER) return encoder.encode(batch.join("\n") + "\n");
      this.#buf = new Uint8Array(Math.max(max, this.#buf.length * 2));
    }
    const buf = this.#buf;
    let off = 0;
    for (let i = 0; i < batch.length; i++) {
      off += encoder.encodeInto(batch[i], buf.subarray(off)).written;
      buf[off++] = 10; // \n
    }
    return buf.subarray(0, off);
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      const w = this.#queued;
      // (an empty list stays: messages posted during the write go into it)
      const onFail = this.#onFail.length > 0 ? this.#onFail : undefined;
      this.#queue = [];
      this.#queued = undefined;
      if (onFail !== undefined) this.#onFail = [];
      try {
        await this.#write(this.#encode(batch));
        w?.resolve();
      } catch (err) {
        const e = this.#failed(err);
        w?.reject(e);
        if (onFail !== undefined) { for (let i = 0; i < onFail.length; i++) onFail[i](e); }
        // messages queued during the failed write
        const later = this.#queued as QueuedWrite | undefined;
        const laterFail = this.#onFail;
        later?.reject(e);
        for (let i = 0; i < laterFail.length; i++) laterFail[i](e);
        this.#queue = [];
        this.#queued = undefined;
        this.#onFail = [];
      }
    }
    this.#writing = false;
  }
}
