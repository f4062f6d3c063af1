/**
 * Ctrl-C / SIGTERM handling shared by the commands that start plugins (`run`, `test`,
 * `list-components`): the first signal aborts a signal so that running steps are cancelled and
 * step services are closed (no process is left behind); a second one exits at once.
 * @module
 */
import { EXIT_CANCELLED } from "./exit_codes.ts";

/**
 * Listens for SIGINT and SIGTERM until disposed: the first one aborts `signal` (after calling
 * `onFirst`), a second one exits the process at once with {@linkcode EXIT_CANCELLED}.
 */
export function onCancelSignals(onFirst: (signal: Deno.Signal) => void) {
  const ctrl = new AbortController();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((sig) => {
    const handler = () => {
      if (ctrl.signal.aborted) Deno.exit(EXIT_CANCELLED);
      onFirst(sig);
      ctrl.abort(new Error(`cancelled by ${sig}`));
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
