/**
 * Ctrl-C / SIGTERM handling shared by the commands that start plugins (`run`, `test`,
 * `list-components`): the first signal aborts a signal so that running steps are cancelled and
 * step services are closed (no process is left behind); a second one kills what this process
 * started (step services, MCP servers, test servers, with their process trees) and exits at once.
 *
 * Signals are received by a small Worker, not by the main thread: a run of many built-in steps
 * can keep the main thread's event loop from handling a signal for seconds (Deno polls signals
 * with its other drivers, src/core/turn.ts). The Worker's loop is idle, so it counts each signal
 * in a shared flag at once; the engine reads the flag between steps and the handler runs within
 * a few ms (issue 10, item 1). Where Workers are not available, the main thread listens itself.
 * The Worker starts {@linkcode WATCHER_AFTER_MS} into the command (a deadline that busy work
 * cannot starve, src/core/turn.ts): a Worker is an isolate of its own, and starting one for a run
 * that is over in a few dozen ms cost it about a tenth of its CPU time (issue 17, goal 5). Until
 * then the main thread's listeners handle signals: a loop that has been busy for under
 * {@linkcode WATCHER_AFTER_MS} still turns often enough for them.
 * @module
 */
import { EXIT_CANCELLED } from "./exit_codes.ts";
import { runDueNow, setDeadline, watchInterrupt } from "../core/turn.ts";
import { killProcessTrees } from "../core/process_tree.ts";

/** The Worker: counts SIGINT (slot 1) and SIGTERM (slot 2); slot 0 is the total. */
const WATCHER_SOURCE = `
self.onmessage = (e) => {
  const flag = new Int32Array(e.data.buffer);
  for (const [slot, sig] of e.data.signals) {
    try {
      Deno.addSignalListener(sig, () => {
        Atomics.add(flag, slot, 1);
        Atomics.add(flag, 0, 1);
        self.postMessage(sig);
      });
    } catch {
      // not supported here
    }
  }
  self.postMessage("ready");
};
`;

const SIGNAL_SLOTS: [number, Deno.Signal][] = [[1, "SIGINT"], [2, "SIGTERM"]];

/** When the signal watcher Worker starts, in ms after the listening began. */
export const WATCHER_AFTER_MS = 150;

/**
 * Listens for SIGINT and SIGTERM until disposed: the first one aborts `signal` (after calling
 * `onFirst`), a second one exits the process at once with {@linkcode EXIT_CANCELLED}.
 */
export function onCancelSignals(onFirst: (signal: Deno.Signal) => void) {
  const ctrl = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handle = (sig: Deno.Signal) => {
    if (ctrl.signal.aborted) {
      killProcessTrees("SIGKILL");
      Deno.exit(EXIT_CANCELLED);
    }
    onFirst(sig);
    ctrl.abort(new Error(`cancelled by ${sig}`));
  };
  // The main thread listens too (from now on, while the Worker starts); both count the same
  // signals, and each signal is handled once (see startWatcher).
  const mainSeen = new Int32Array(SIGNAL_SLOTS.length + 1);
  const watcher = startWatcher(signals, handle, mainSeen);
  const handlers = signals.map((sig) => {
    const slot = SIGNAL_SLOTS.find(([, s]) => s === sig)![0];
    const handler = () => {
      mainSeen[slot]++;
      watcher.deliver();
    };
    try {
      Deno.addSignalListener(sig, handler);
    } catch {
      // signal not supported here
    }
    return [sig, handler] as const;
  });
  return {
    signal: ctrl.signal,
    dispose() {
      watcher.dispose();
      for (const [sig, h] of handlers) {
        try {
          Deno.removeSignalListener(sig, h);
        } catch {
          // already removed
        }
      }
    },
  };
}

/**
 * Starts the signal watcher Worker (when Workers and shared memory are available). Signals are
 * counted by the Worker (in shared memory, seen by the engine between steps) and by the main
 * thread's own listeners (`mainSeen`); `deliver` handles each signal once: as many times as the
 * larger count says, whichever path calls it first.
 */
function startWatcher(
  signals: Deno.Signal[],
  handle: (sig: Deno.Signal) => void,
  mainSeen: Int32Array,
): { deliver: () => void; dispose: () => void } {
  const handled = new Int32Array(SIGNAL_SLOTS.length + 1);
  let flag: Int32Array | undefined;
  const deliver = () => {
    for (const [slot, sig] of SIGNAL_SLOTS) {
      const n = Math.max(flag ? Atomics.load(flag, slot) : 0, mainSeen[slot]);
      while (handled[slot] < n) {
        handled[slot]++;
        handle(sig);
      }
    }
  };
  let worker: Worker | undefined;
  let stop: (() => void) | undefined;
  const start = () => {
    let f: Int32Array;
    try {
      f = new Int32Array(new SharedArrayBuffer(4 * (SIGNAL_SLOTS.length + 1)));
      // the Worker counts on from what the main thread has seen so far
      f.set(mainSeen);
      f[0] = 0;
      for (const [slot] of SIGNAL_SLOTS) f[0] += mainSeen[slot];
      const url = URL.createObjectURL(
        new Blob([WATCHER_SOURCE], { type: "application/javascript" }),
      );
      worker = new Worker(url, { type: "module" });
      URL.revokeObjectURL(url);
    } catch {
      return; // the main thread's listeners go on alone
    }
    flag = f;
    stop = watchInterrupt(f, deliver);
    worker.onmessage = () => {
      runDueNow();
      deliver();
    };
    worker.postMessage({
      buffer: f.buffer,
      signals: SIGNAL_SLOTS.filter(([, s]) => signals.includes(s)),
    });
  };
  const cancelStart = setDeadline(WATCHER_AFTER_MS, start);
  return {
    deliver,
    dispose: () => {
      cancelStart();
      stop?.();
      worker?.terminate();
    },
  };
}
