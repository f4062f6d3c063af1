/**
 * Ctrl-C / SIGTERM handling shared by the commands that start plugins (`run`, `test`,
 * `list-components`): the first signal aborts a signal so that running steps are cancelled and
 * step services are closed (no process is left behind); a second one kills what this process
 * started (step services, MCP servers, test servers, with their process groups) and exits at once.
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
      if (ctrl.signal.aborted) {
        killChildren();
        Deno.exit(EXIT_CANCELLED);
      }
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

/**
 * SIGKILLs every process this one started, with its process group when it leads one (stdio
 * workers do: a shell script's own children go too). Linux only (`/proc`); does nothing when
 * `/proc` cannot be read (scoped permissions) — the children then see their stdin close.
 */
function killChildren(): void {
  const me = String(Deno.pid);
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc");
  } catch {
    return;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
    const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (ppid !== me) continue;
    const pid = Number(e.name);
    try {
      Deno.kill(pgrp === e.name ? -pid : pid, "SIGKILL");
    } catch {
      // gone already, or not allowed
    }
  }
}
