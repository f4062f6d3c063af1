/**
 * Cooperative turns of the event loop for long runs of promise-chained work, and deadlines and
 * interrupts that are not starved by it.
 *
 * Work that only ever continues in promise callbacks (microtasks) never lets the event loop turn:
 * timers do not fire and signal handlers (Ctrl-C, SIGTERM) do not run until it is all done. A
 * run of 100,000 built-in steps is such work. Before the engine starts a step or a nested run it
 * asks {@linkcode turnDue}; when the loop has not turned for {@linkcode TURN_SLICE_MS}, it hands
 * the start to {@linkcode onNextTurn} instead.
 *
 * How it knows: the first check after a turn queues one `setImmediate` callback (a macrotask)
 * and notes the time. If that callback has not run {@linkcode TURN_SLICE_MS} later, the loop is
 * starved. So work that waits on I/O (step services) never yields needlessly, and the cost of the
 * check on the hot path is a flag test and, every {@linkcode CHECK_EVERY} calls, a clock read.
 * Deferred work runs first in, first out, in later macrotasks, each taking at most about half a
 * slice before it lets the loop turn again: 100,000 deferred starts are not all resumed at once.
 *
 * Turning the loop is not always enough in Deno: its Rust runtime polls timers, signals and I/O
 * every few dozen loop iterations or when the loop sleeps, and a loop kept busy by immediates was
 * seen to fire a timer 300-900 ms late and to handle SIGTERM only after the run. So:
 * - a turn is a burst of {@linkcode BURST_HOPS} empty iterations at most every
 *   {@linkcode BURST_EVERY_MS} (they cost system calls: other timers and I/O wait up to that);
 * - {@linkcode setDeadline} (run timeouts) is also checked here at every clock read;
 * - {@linkcode watchInterrupt} reads a flag another thread sets (the CLI's signal watcher,
 *   src/cli/signals.ts) at every clock read.
 * A due deadline or interrupt runs first in the next turn, within a few ms; once the loop was
 * found starved, at the next clock read instead (the burst of work in flight can go on for
 * hundreds of ms of CPU before the loop turns).
 * @module
 */
import { setImmediate } from "node:timers";

/**
 * Longest stretch without a turn of the event loop, in ms, before work yields. Deadlines and
 * interrupts do not wait for it (they are checked at every clock read); a turn costs the busy
 * work a few percent (measured: 10 ms slices made a 10,000-step chain 35% slower, 50 ms 6%).
 */
export const TURN_SLICE_MS = 50;

/** The clock is read once per this many checks (a power of two). */
const CHECK_EVERY = 32;

/** At most this often, in ms, a turn is a burst of empty iterations (see the module doc). */
export const BURST_EVERY_MS = 100;

/** Iterations of a burst: Deno's runtime polls its drivers at least once in them. */
export const BURST_HOPS = 64;

let calls = 0;
/** When the pending heartbeat was queued (ms, performance.now()). */
let queuedAt = 0;
let heartbeatPending = false;
/** Set once the loop is found starved (or a deadline or interrupt is due); cleared by a turn. */
let due = false;

function heartbeat(): void {
  heartbeatPending = false;
  due = false;
}

/**
 * True when the event loop has not turned for {@linkcode TURN_SLICE_MS}, or a deadline or an
 * interrupt is due: the caller should hand its next piece of work to {@linkcode onNextTurn}
 * instead of starting it now.
 */
export function turnDue(): boolean {
  if ((++calls & (CHECK_EVERY - 1)) !== 0) return due;
  const now = performance.now();
  if (due) {
    // The loop turns only once the current burst of promise callbacks ends, and work already
    // in flight goes on until then (measured: 10,000+ more checks and 200-850 ms of CPU in a
    // 100,000-item map, seconds of wall time on a loaded machine). A deadline or an interrupt
    // that comes meanwhile runs here, at a clock read, not after that burst.
    if (now >= nextDeadline || interruptPending()) runDue(now);
    return true;
  }
  if (now >= nextDeadline || interruptPending()) {
    queueDrain();
    due = true;
    return true;
  }
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
/** When the last burst began (performance.now()). */
let lastBurst = 0;

function queueDrain(): void {
  if (drainQueued) return;
  drainQueued = true;
  const now = performance.now();
  if (now - lastBurst < BURST_EVERY_MS) {
    setImmediate(drain);
    return;
  }
  lastBurst = now;
  let hops = BURST_HOPS;
  const hop = () => --hops > 0 ? setImmediate(hop) : drain();
  setImmediate(hop);
}

/**
 * Runs `task` after the event loop has turned (timers, I/O and signal handlers had their chance),
 * after the tasks deferred before it. Tasks should not throw (one that does is reported as an
 * uncaught error would be).
 */
export function onNextTurn(task: () => void): void {
  tasks.push(task);
  queueDrain();
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
  runDue(performance.now());
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
      queueDrain();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// deadlines

interface Deadline {
  at: number;
  fire: () => void;
}

let deadlines: Deadline[] = [];
let nextDeadline = Infinity;

/**
 * Calls `fn` once, `ms` milliseconds from now: by a timer, or by {@linkcode turnDue} when busy
 * work keeps the timer from firing (whichever comes first). Returns the function that cancels it.
 */
export function setDeadline(ms: number, fn: () => void): () => void {
  let done = false;
  const d: Deadline = {
    at: performance.now() + ms,
    fire: () => {
      if (done) return;
      cancel();
      fn();
    },
  };
  const timer = setTimeout(d.fire, ms);
  const cancel = () => {
    done = true;
    clearTimeout(timer);
    deadlines = deadlines.filter((x) => x !== d);
    nextDeadline = deadlines.reduce((m, x) => Math.min(m, x.at), Infinity);
  };
  deadlines.push(d);
  if (d.at < nextDeadline) nextDeadline = d.at;
  return cancel;
}

// ---------------------------------------------------------------------------------------------
// interrupts

interface Interrupt {
  flag: Int32Array;
  seen: number;
  fn: () => void;
}

let interrupts: Interrupt[] = [];

function interruptPending(): boolean {
  for (const i of interrupts) if (Atomics.load(i.flag, 0) !== i.seen) return true;
  return false;
}

/**
 * Calls `fn` whenever another thread (a Worker) changes `flag[0]` (e.g. adds one per signal),
 * within a few ms even while busy work keeps the event loop from turning. Each change is seen
 * once; `fn` reads what it needs from the flag. Returns the function that stops watching.
 */
export function watchInterrupt(flag: Int32Array, fn: () => void): () => void {
  const i: Interrupt = { flag, seen: Atomics.load(flag, 0), fn };
  interrupts.push(i);
  return () => {
    interrupts = interrupts.filter((x) => x !== i);
  };
}

/** Runs due deadlines and changed interrupts (first in a turn). */
function runDue(now: number): void {
  if (now >= nextDeadline) {
    for (const d of deadlines.filter((x) => x.at <= now)) d.fire();
  }
  for (const i of interrupts) {
    const v = Atomics.load(i.flag, 0);
    if (v !== i.seen) {
      i.seen = v;
      i.fn();
    }
  }
}

/**
 * Runs what is due now (deadlines, interrupts) without waiting for a turn: for callers that learn
 * of an interrupt through the event loop (a Worker's message) and want it handled once.
 */
export function runDueNow(): void {
  runDue(performance.now());
}
