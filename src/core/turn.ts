/**
 * Cooperative turns of the event loop for long runs of promise-chained work.
 *
 * Work that only ever continues in promise callbacks (microtasks) never lets the event loop turn:
 * timers do not fire and signal handlers (Ctrl-C, SIGTERM) do not run until it is all done. A
 * run of 100,000 built-in steps is such work. Before the engine starts a step or a nested run it
 * asks {@linkcode turnDue}; when the loop has not turned for {@linkcode TURN_SLICE_MS}, it hands
 * the start to {@linkcode onNextTurn} instead, so run timeouts and signals are handled within
 * about that long.
 *
 * How it knows: the first check after a turn queues one `setImmediate` callback (a macrotask)
 * and notes the time. If that callback has not run {@linkcode TURN_SLICE_MS} later, the loop is
 * starved. So work that waits on I/O (step services) never yields needlessly, and the cost of the
 * check on the hot path is a flag test and, every {@linkcode CHECK_EVERY} calls, a clock read.
 *
 * Deferred work runs first in, first out, in later macrotasks, each taking at most about half a
 * slice before it lets the loop turn again: 100,000 deferred starts are not all resumed at once.
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
/** Set once the loop is found starved; cleared by the next turn. */
let due = false;

function heartbeat(): void {
  heartbeatPending = false;
  due = false;
}

/**
 * True when the event loop has not turned for {@linkcode TURN_SLICE_MS}: the caller should hand
 * its next piece of work to {@linkcode onNextTurn} instead of starting it now.
 */
export function turnDue(): boolean {
  if (due) return true;
  if ((++calls & (CHECK_EVERY - 1)) !== 0) return false;
  const now = performance.now();
  if (!heartbeatPending) {
    heartbeatPending = true;
    queuedAt = now;
    setImmediate(heartbeat);
    return false;
  }
  due = now - queuedAt >= TURN_SLICE_MS;
  return due;
}

/** Deferred work, first in, first out (`head` is the next to run). */
let tasks: (() => void)[] = [];
let head = 0;
let drainQueued = false;

/**
 * Runs `task` after the event loop has turned (timers, I/O and signal handlers had their chance),
 * after the tasks deferred before it. A task that throws is reported as an uncaught error would
 * be; tasks should not throw.
 */
export function onNextTurn(task: () => void): void {
  tasks.push(task);
  if (!drainQueued) {
    drainQueued = true;
    setImmediate(drain);
  }
}

/** The same as {@linkcode onNextTurn}, as a promise. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => onNextTurn(resolve));
}

function drain(): void {
  drainQueued = false;
  heartbeatPending = false;
  due = false;
  calls = 0;
  const start = performance.now();
  const budget = TURN_SLICE_MS / 2;
  try {
    while (head < tasks.length) {
      const task = tasks[head];
      tasks[head++] = undefined as unknown as () => void;
      task();
      if ((head & 15) === 0 && performance.now() - start >= budget) break;
    }
  } finally {
    if (head >= tasks.length) {
      tasks = [];
      head = 0;
    } else {
      if (head > 4096) {
        tasks = tasks.slice(head);
        head = 0;
      }
      drainQueued = true;
      setImmediate(drain);
    }
  }
}
