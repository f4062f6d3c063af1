/**
 * Group commit: writes queued during one event-loop turn are committed together, and every
 * writer of a batch gets the same promise, resolved when the batch is durable.
 *
 * The store keeps its own queue of writes; this class decides *when* the store commits and hands
 * out the batch promises. A commit is scheduled on the next macrotask (`setImmediate`: about
 * 15 µs here, where a nested `setTimeout(0)` waits 1–4 ms), so a run whose writes nobody awaits
 * commits in large batches; {@linkcode GroupCommit.soon} commits at the end of the current
 * microtask burst instead, for a caller that waits. While an asynchronous commit is in flight
 * (a remote database), new writes gather into the next batch, committed when it ends.
 * @module
 */
import { setImmediate } from "node:timers";

interface Batch {
  /** 1, 2, ...: batches are committed in this order. */
  seq: number;
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

function newBatch(seq: number): Batch {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A writer may drop the promise: its rejection must not end the process.
  promise.catch(() => {});
  return { seq, promise, resolve, reject };
}

/**
 * Schedules the commits of one store.
 * @param commit commits everything the store queued so far (it must take the queue
 *   synchronously before any `await`); throws or rejects when the transaction failed.
 */
export class GroupCommit {
  #commit: () => void | Promise<void>;
  #open: Batch | undefined;
  #inFlight: Promise<void> | undefined;
  /** The batch being committed (asynchronously), until it settled. */
  #flying: Batch | undefined;
  /** Batches made so far (the last one's `seq`). */
  #seq = 0;
  /** The latest batch that failed, and why. */
  #failed: { seq: number; error: unknown } | undefined;
  #scheduled = false;
  #urgent = false;

  constructor(commit: () => void | Promise<void>) {
    this.#commit = commit;
  }

  /** Whether writes are queued and not yet being committed. */
  get pending(): boolean {
    return this.#open !== undefined;
  }

  /**
   * Called by the store after it queued a write: returns the promise of the batch holding it
   * (scheduling a commit when the batch is new).
   */
  queued(): Promise<void> {
    let b = this.#open;
    if (b === undefined) {
      b = this.#open = newBatch(++this.#seq);
      if (!this.#scheduled && this.#inFlight === undefined) {
        this.#scheduled = true;
        setImmediate(this.#onTurn);
      }
    }
    return b.promise;
  }

  /**
   * Commits the open batch at the end of the current microtask burst; resolves when every write
   * queued so far is stored (immediately when nothing is queued or in flight).
   */
  soon(): Promise<void> {
    const b = this.#open;
    if (b === undefined) return this.#inFlight ?? Promise.resolve();
    if (!this.#urgent && this.#inFlight === undefined) {
      this.#urgent = true;
      queueMicrotask(this.#onTurn);
    }
    return b.promise;
  }

  /**
   * Commits the open batch now (synchronously when the store's commit is synchronous). Used
   * before reads and when a batch grows large. Failures reject the batch promise, never throw.
   */
  now(): void {
    if (this.#open !== undefined && this.#inFlight === undefined) this.#run();
  }

  /**
   * A mark for {@linkcode failedSince}: the oldest batch that may still hold a write queued
   * before now (the one in flight, else the open one, else the next one).
   */
  mark(): number {
    return this.#flying?.seq ?? this.#open?.seq ?? this.#seq + 1;
  }

  /**
   * The error of the latest batch from `mark` ({@linkcode mark}) on that failed, or undefined
   * when none did (so far: a caller waits for {@linkcode soon} first).
   */
  failedSince(mark: number): unknown {
    const f = this.#failed;
    return f !== undefined && f.seq >= mark ? f.error : undefined;
  }

  /** Resolves when nothing is queued or in flight (commits what is queued). */
  async drain(): Promise<void> {
    while (this.#open !== undefined || this.#inFlight !== undefined) {
      this.now();
      try {
        await (this.#inFlight ?? this.#open?.promise);
      } catch {
        // the writers got the error
      }
    }
  }

  #onTurn = (): void => {
    this.#scheduled = false;
    this.#urgent = false;
    if (this.#open !== undefined && this.#inFlight === undefined) this.#run();
  };

  #run(): void {
    const b = this.#open!;
    this.#open = undefined;
    let r: void | Promise<void>;
    try {
      r = this.#commit();
    } catch (e) {
      this.#failed = { seq: b.seq, error: e };
      b.reject(e);
      return;
    }
    if (r === undefined) {
      b.resolve();
      return;
    }
    this.#flying = b;
    const flight = this.#inFlight = r.then(() => b.resolve(), (e) => {
      this.#failed = { seq: b.seq, error: e };
      b.reject(e);
    }).finally(() => {
      if (this.#flying === b) this.#flying = undefined;
      if (this.#inFlight === flight) this.#inFlight = undefined;
      // writes that came while this commit was in flight
      if (this.#open !== undefined && !this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#onTurn);
      }
    });
  }
}
