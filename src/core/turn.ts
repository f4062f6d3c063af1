/**
 * Cooperative turns of the event loop for long runs of promise-chained work.
 *
 * Work that only ever continues in promise callbacks (microtasks) never lets the event loop turn:
 * timers do not fire and signal handlers (Ctrl-C, SIGTERM) do not run until it is all done. A
 * run of 100,000 built-in steps is such work. The scheduler asks {@linkcode turnDue} before it
 * starts a step; when the loop has not turned for {@linkcode TURN_SLICE_MS}, it waits for
 * {@linkcode nextTurn} first, so run timeouts and signals are handled within about that long.
 *
 * How it knows: the first check after a turn queues one `setImmediate` callback (a macrotask)
 * and notes the time. If that callback has not run {@linkcode TURN_SLICE_MS} later, the loop is
 * starved. So work that waits on I/O (step services) never yields needlessly, and the cost of the
 * check on the hot path is a counter and, every {@linkcode CHECK_EVERY} calls, a clock read.
 * @module
 */
import { setImmediate } from "node:timers";

/** Longest stretch without a turn of the event loop, in ms, before work yields. */
export const TURN_SLICE_MS = 10;

/** The clock is read once per this many checks (a power of two). */
const CHECK_EVERY = 32;

let calls = 0;
/** When the pending heartbeat was queued (ms, performance.now()). */
let queuedAt = 0;
let heartbeatPending = false;
let waiting: Promise<void> | undefined;

function heartbeat(): void {
  heartbeatPending = false;
}

/**
 * True when the event loop has not turned for {@linkcode TURN_SLICE_MS}: the caller should
 * await {@linkcode nextTurn} before starting more work.
 */
export function turnDue(): boolean {
  if ((++calls & (CHECK_EVERY - 1)) !== 0) return false;
  const now = performance.now();
  if (!heartbeatPending) {
    heartbeatPending = true;
    queuedAt = now;
    setImmediate(heartbeat);
    return false;
  }
  return now - queuedAt >= TURN_SLICE_MS;
}

/**
 * Resolves after the event loop has turned once (timers, I/O and signal handlers had their
 * chance). Everyone waiting in the same turn shares one promise.
 */
export function nextTurn(): Promise<void> {
  waiting ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      waiting = undefined;
      heartbeatPending = false;
      calls = 0;
      resolve();
    })
  );
  return waiting;
}
