/**
 * WAL checkpoints of the SQLite store off the event loop. `node:sqlite` is synchronous: a
 * checkpoint run by the writing connection (SQLite's automatic one) copies the WAL into the
 * database file and fsyncs it while every request of the process waits — tens of milliseconds
 * every 10,000 pages under load. The store turns the automatic checkpoint off
 * (`wal_autocheckpoint=0`) and this class runs `PRAGMA wal_checkpoint(PASSIVE)` in a worker
 * thread with its own connection: PASSIVE never blocks the writer (it copies the frames no
 * reader needs; the writer starts the WAL over once everything was copied), and the fsync of the
 * database file happens on the worker's thread.
 *
 * The worker starts with the first checkpoint (a short `stepflow run` never starts it; closing
 * the last connection checkpoints anyway). A checkpoint is asked for at most every
 * {@linkcode CHECKPOINT_INTERVAL_MS} while the store commits, and again at once while the last
 * one could not copy every frame (the writer went on meanwhile), so the WAL cannot grow without
 * bound. If the worker cannot start (no worker support), the store falls back to SQLite's own
 * checkpoints on its connection.
 * @module
 */

/** Least time between two checkpoints while the store commits, ms. */
export const CHECKPOINT_INTERVAL_MS = 250;

/** The worker's code (inline, so the bundled program needs no second file). */
const WORKER_SOURCE = `
import { DatabaseSync } from "node:sqlite";
let db;
self.onmessage = (e) => {
  const m = e.data;
  try {
    if (m.type === "open") {
      db = new DatabaseSync(m.path, { timeout: m.busyTimeoutMs });
      self.postMessage({ type: "opened" });
    } else if (m.type === "checkpoint") {
      const r = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get();
      self.postMessage({ type: "checkpointed", busy: r.busy, log: r.log, checkpointed: r.checkpointed });
    } else if (m.type === "close") {
      db?.close();
      db = undefined;
      self.postMessage({ type: "closed" });
    }
  } catch (err) {
    self.postMessage({ type: "error", message: String(err && err.message || err) });
  }
};
`;

/** What the last checkpoint did (frames of the WAL, frames copied into the database). */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

/** Runs the checkpoints of one database file in a worker. */
export class Checkpointer {
  #worker?: Worker;
  #inFlight = false;
  #again = false;
  /** Set at creation: the first checkpoint comes after the first interval of commits. */
  #last = performance.now();
  #closed = false;
  #failed = false;
  #closing?: Promise<void>;
  #onClosed?: () => void;
  /** Checkpoints run so far (tests, benchmarks). */
  count = 0;
  /** The last checkpoint's answer. */
  lastResult?: CheckpointResult;

  /**
   * @param path the database file.
   * @param onFailure called once when the worker cannot run checkpoints (the store then turns
   *   SQLite's automatic checkpoint back on).
   */
  constructor(
    readonly path: string,
    readonly busyTimeoutMs: number,
    private readonly onFailure: (message: string) => void,
  ) {}

  /** Called after each commit: asks for a checkpoint when the last one is old enough. */
  committed(): void {
    if (this.#closed || this.#failed) return;
    if (this.#inFlight) return;
    const now = performance.now();
    if (!this.#again && now - this.#last < CHECKPOINT_INTERVAL_MS) return;
    this.#request();
  }

  /**
   * Runs a checkpoint now (after the one in flight) and resolves with what it did.
   * @throws {Error} (rejects) when the worker cannot run it, or after {@linkcode close}.
   */
  checkpointNow(): Promise<CheckpointResult> {
    if (this.#closed || this.#failed) {
      return Promise.reject(new Error("the checkpointer is closed or failed"));
    }
    const p = new Promise<CheckpointResult>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
    });
    this.#request();
    return p;
  }

  #waiting: { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void }[] = [];

  #request(): void {
    this.#again = false;
    this.#inFlight = true;
    this.#last = performance.now();
    const w = this.#worker ??= this.#start();
    if (w !== undefined) w.postMessage({ type: "checkpoint" });
  }

  #start(): Worker | undefined {
    let w: Worker;
    try {
      const url = URL.createObjectURL(
        new Blob([WORKER_SOURCE], { type: "application/javascript" }),
      );
      w = new Worker(url, { type: "module" });
      URL.revokeObjectURL(url);
    } catch (e) {
      this.#fail(`cannot start the checkpoint worker: ${(e as Error)?.message ?? e}`);
      return undefined;
    }
    w.onmessage = (e: MessageEvent) => {
      const m = e.data as { type: string; message?: string } & CheckpointResult;
      if (m.type === "checkpointed") {
        this.count++;
        this.#inFlight = false;
        this.lastResult = { busy: m.busy, log: m.log, checkpointed: m.checkpointed };
        // frames were added while it ran: go on at the next commit
        this.#again = m.log > m.checkpointed || m.busy !== 0;
        this.#waiting.shift()?.resolve(this.lastResult);
      } else if (m.type === "error") {
        this.#inFlight = false;
        this.#fail(`a WAL checkpoint failed: ${m.message}`);
      } else if (m.type === "closed") {
        this.#onClosed?.();
      }
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#inFlight = false;
      this.#fail(`the checkpoint worker failed: ${e.message}`);
    };
    w.postMessage({ type: "open", path: this.path, busyTimeoutMs: this.busyTimeoutMs });
    return w;
  }

  #fail(message: string): void {
    if (this.#failed) return;
    this.#failed = true;
    for (const w of this.#waiting.splice(0)) w.reject(new Error(message));
    this.#stop();
    this.onFailure(message);
  }

  #stop(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
  }

  /** Closes the worker's connection and stops it (after a checkpoint in flight, if any). */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    const w = this.#worker;
    if (w === undefined) return this.#closing = Promise.resolve();
    return this.#closing = new Promise<void>((resolve) => {
      const timer = setTimeout(done, 5_000);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#onClosed = done;
      w.postMessage({ type: "close" }); // after the checkpoint in flight: messages are in order
    }).finally(() => this.#stop());
  }
}
