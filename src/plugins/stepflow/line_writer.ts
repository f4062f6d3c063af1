/**
 * Coalesced writes of newline-delimited messages (stepflow 0.8 §3.4) to a worker's stdin: the
 * messages sent in the same turn of the event loop, or while a write is in progress, go out as
 * one write (one syscall for many calls under load; one microtask of delay when idle), and share
 * one promise (not one per message).
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

/** Writes message lines in batches; see the module doc. */
export class LineWriter {
  readonly #write: (bytes: Uint8Array) => Promise<void>;
  readonly #failed: (err: unknown) => unknown;
  /** Messages waiting while a write is in progress (sent together as one write). */
  #queue: string[] = [];
  /** Settles when the queued messages are written. */
  #queued: QueuedWrite | undefined;
  #writing = false;

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
    this.#queue.push(text);
    const w = this.#queued ??= queuedWrite();
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => void this.#flush());
    }
    return w.promise;
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      const w = this.#queued!;
      this.#queue = [];
      this.#queued = undefined;
      const text = batch.length === 1 ? batch[0] + "\n" : batch.join("\n") + "\n";
      try {
        await this.#write(encoder.encode(text));
        w.resolve();
      } catch (err) {
        const e = this.#failed(err);
        w.reject(e);
        // messages queued during the failed write
        const later = this.#queued as QueuedWrite | undefined;
        later?.reject(e);
        this.#queue = [];
        this.#queued = undefined;
      }
    }
    this.#writing = false;
  }
}
