/**
 * What every subcommand writes with: stdout (results only) and stderr (everything else), and how
 * it sets the exit code. A leaf module, so subcommands need not import the CLI's entry.
 * @module
 */

import { terminalSafe } from "../core/terminal_text.ts";

/** Sets the process exit code from inside an action. */
export type SetExit = (code: number) => void;

/**
 * stdout could not be written (a full disk, a closed file): the message is the OS's. The CLI's
 * entry prints `error: cannot write to stdout: <message>` and exits 1 (not 2: something may have
 * been run).
 */
export class StdoutWriteError extends Error {
  override name = "StdoutWriteError";
}

/**
 * Writes text to stdout, all of it. On a terminal, control characters in it (an ESC in a flow
 * name or an output) are shown as escapes (src/core/terminal_text.ts); piped or redirected output
 * is written as it is. When the reader went away (`stepflow test | head -1`), the
 * rest of the output is dropped instead of throwing out of the command half-way, so the command
 * still stops its step services and exits with its own code.
 * @throws {StdoutWriteError} when stdout cannot be written for another reason (disk full).
 */
export function writeStdout(s: string): void {
  if (stdoutClosed) return;
  beforeWrite?.();
  try {
    writeAll(Deno.stdout, stdoutIsTerminal() ? terminalSafe(s) : s);
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) {
      throw new StdoutWriteError((e as Error).message, { cause: e });
    }
    stdoutClosed = true;
  }
}

let stdoutClosed = false;
let beforeWrite: (() => void) | undefined;

/**
 * True once a write found stdout's reader gone (a closed pipe: `stepflow run-batch ... | head
 * -1`): what was written after that was dropped.
 */
export function stdoutReaderGone(): boolean {
  return stdoutClosed;
}

/**
 * Sets what runs before any text is written to stdout or stderr (the progress line on a
 * terminal erases itself: src/cli/progress.ts); `undefined` removes it. Returns the previous one.
 */
export function setBeforeWrite(fn: (() => void) | undefined): (() => void) | undefined {
  const prev = beforeWrite;
  beforeWrite = fn;
  return prev;
}

/**
 * Writes text to stderr, all of it: messages for people, so control characters in it (from a flow
 * name, a step id, a step service's error) are shown as escapes, never sent to the terminal.
 */
export function writeStderr(s: string): void {
  beforeWrite?.();
  writeAll(Deno.stderr, terminalSafe(s));
}

let stdoutTerminal: boolean | undefined;

function stdoutIsTerminal(): boolean {
  if (stdoutTerminal === undefined) {
    try {
      stdoutTerminal = Deno.stdout.isTerminal();
    } catch {
      stdoutTerminal = false;
    }
  }
  return stdoutTerminal;
}

function writeAll(w: { writeSync(p: Uint8Array): number }, s: string): void {
  const bytes = new TextEncoder().encode(s);
  let off = 0;
  while (off < bytes.length) off += w.writeSync(bytes.subarray(off));
}
