/**
 * The one child-process supervisor of the engine, shared by both stdio transports (step services,
 * src/plugins/stepflow/stdio.ts; MCP servers, src/plugins/mcp/stdio_transport.ts): spawning, the
 * stdout line reader, the stderr tail, draining the pipes after an exit, and stopping the whole
 * tree of processes the child started (core/process_tree.ts) with escalation from a closed stdin
 * to SIGTERM to SIGKILL. One set of limits for both:
 * {@linkcode DEFAULT_MAX_LINE_BYTES}, {@linkcode STDERR_TAIL_LINES},
 * {@linkcode STDERR_LOG_LINES_PER_SECOND}, {@linkcode DEFAULT_CLOSE_GRACE_MS},
 * {@linkcode PIPE_DRAIN_MS}.
 * @module
 */
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { settlesWithin } from "../core/abort.ts";
import { ProcessTree } from "../core/process_tree.ts";
import { LineSplitter } from "../protocol/line_splitter.ts";

/**
 * Longest line read from a child's stdout, in bytes (about the longest string V8 can hold). A
 * longer line (a child streaming without newlines) stops the child instead of exhausting the
 * engine's memory.
 */
export const DEFAULT_MAX_LINE_BYTES = 512 * 1024 * 1024;

/** How long a child gets to exit after its stdin closed, and after SIGTERM, ms. */
export const DEFAULT_CLOSE_GRACE_MS = 2000;

/** Lines of a child's stderr kept for failure messages. */
export const STDERR_TAIL_LINES = 10;

/** Longest stderr line kept in the tail (longer ones are cut, with `...`). */
const STDERR_LINE_CHARS = 300;

/**
 * Most stderr lines of one child logged per second (at `info`). A child flooding stderr would
 * otherwise flood the engine's log (and `--log-file`) at its own pace: past this, lines are
 * counted, not logged, and one note per second says how many lines (and bytes) were dropped.
 * The tail ({@linkcode STDERR_TAIL_LINES}) keeps the last lines regardless.
 */
export const STDERR_LOG_LINES_PER_SECOND = 1000;

/** The window {@linkcode STDERR_LOG_LINES_PER_SECOND} counts lines in, ms. */
const STDERR_LOG_WINDOW_MS = 1000;

/**
 * How long the pipes are still read after the child exited, ms (0.8 drains 500 ms); a grandchild
 * that inherited them may keep them open forever.
 */
export const PIPE_DRAIN_MS = 500;

/** ANSI escape sequences (colours, cursor moves): noise in a failure message. */
// deno-lint-ignore no-control-regex
const ANSI_ESCAPE = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;

/** Size of the buffer stdout is read into, bytes. */
const READ_BUFFER_BYTES = 1 << 16;

/** How to start a child. */
export interface ChildOptions {
  /** Names the child in messages: `step service 'x'`, `MCP server 'x'`. */
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** True: the child gets only `env`; false: the engine's environment plus `env`. */
  clearEnv: boolean;
  cwd: string;
  log: Logger;
  /** Each stdout line (without its newline); not used with `readStdout`. */
  onStdoutLine?: (line: string) => void;
  /**
   * A stdout line that is not UTF-8 (its text with U+FFFD for the bad bytes, the offset of the
   * first one). @default given to `onStdoutLine` with U+FFFD in it
   */
  onStdoutInvalidUtf8?: (text: string, byteOffset: number) => void;
  /**
   * Reads stdout itself (a transport with its own framing rules): called once with a BYOB reader
   * of the child's stdout; resolves when it stopped reading. The supervisor cancels the reader
   * when a grandchild keeps the pipe open after the child exited.
   */
  readStdout?: (reader: ReadableStreamBYOBReader) => Promise<void>;
  /**
   * Text after the last newline when stdout ended. @default given to `onStdoutLine` as a line
   */
  onUnfinishedLine?: (rest: string) => void;
  /** A stdout line went over `maxLineBytes` (the child is being stopped). */
  onOverflow?: (maxLineBytes: number) => void;
  /** @default DEFAULT_MAX_LINE_BYTES */
  maxLineBytes?: number;
  /**
   * When an unfinished stdout line passes this many bytes, `onLongLine` sees its first 4 KiB
   * once; returning true drops the line (the rest is skipped up to its newline).
   */
  longLineBytes?: number;
  onLongLine?: (head: string, bytes: number) => boolean;
  /** @default DEFAULT_CLOSE_GRACE_MS */
  closeGraceMs?: number;
}

/** A running child process and the tree of processes it starts. */
export class Child {
  readonly #o: ChildOptions;
  readonly #process: Deno.ChildProcess;
  readonly #tree: ProcessTree;
  readonly #readers: { cancel(): Promise<void> }[] = [];
  /** The last stderr lines (colour codes removed, long lines cut). */
  readonly stderrTail: string[] = [];
  /** stdin, to write messages. */
  readonly stdin: WritableStreamDefaultWriter<Uint8Array>;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Resolves when stdout reached its end (or reading it was stopped). */
  readonly stdoutDone: Promise<void>;
  /** Resolves when stderr reached its end (or reading it was stopped). */
  readonly stderrDone: Promise<void>;
  #exitStatus?: Deno.CommandStatus;
  #stopping = false;

  private constructor(o: ChildOptions, process: Deno.ChildProcess) {
    this.#o = o;
    this.#process = process;
    // own process group (detached) and, where possible, a cgroup: stop() reaches all of it
    this.#tree = ProcessTree.track(process.pid);
    this.stdin = process.stdin.getWriter();
    this.stdin.closed.catch(() => {}); // a broken pipe surfaces through write() and the exit
    this.status = process.status.then((s) => this.#exitStatus = s);
    this.stdoutDone = this.#readStdout();
    this.stderrDone = this.#readStderr();
  }

  /**
   * Spawns `options.command` in its own process group (and, where possible, its own cgroup), with
   * piped stdin, stdout and stderr.
   * @throws the `Deno.errors` value of a spawn that failed (`NotFound`, `PermissionDenied`, ...):
   *   see {@linkcode spawnFailure} for a message.
   */
  static spawn(options: ChildOptions): Child {
    const process = new Deno.Command(options.command, {
      args: options.args,
      cwd: options.cwd,
      env: options.env,
      clearEnv: options.clearEnv,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    return new Child(options, process);
  }

  /** The child's process id. */
  get pid(): number {
    return this.#process.pid;
  }

  /** The exit status, once known. */
  get exitStatus(): Deno.CommandStatus | undefined {
    return this.#exitStatus;
  }

  /** `exited with code 3` / `was killed by SIGKILL`, once exited. */
  exitReason(): string | undefined {
    const s = this.#exitStatus;
    if (!s) return undefined;
    return s.signal ? `was killed by ${s.signal}` : `exited with code ${s.code}`;
  }

  /** `; last stderr: a | b | c` from the tail (the last `lines`), or empty. */
  stderrSummary(lines = STDERR_TAIL_LINES): string {
    const tail = this.stderrTail.filter((l) => l.trim() !== "").slice(-lines);
    return tail.length > 0 ? `; last stderr: ${tail.join(" | ")}` : "";
  }

  /**
   * After the exit: lets the last stdout lines and stderr in for up to {@linkcode PIPE_DRAIN_MS}
   * (a grandchild may hold the pipes: then reading stops), then closes stdin.
   */
  async drain(): Promise<void> {
    const drained = Promise.all([this.stdoutDone, this.stderrDone]);
    if (!(await settlesWithin(drained, PIPE_DRAIN_MS))) {
      await Promise.allSettled(this.#readers.map((r) => r.cancel()));
    }
    await this.stdin.close().catch(() => {});
  }

  /**
   * Stops the child and its tree: closes stdin and (when `graceful`) waits `closeGrace` for it
   * to exit, then sends SIGTERM to the tree, waits `closeGrace` again, then SIGKILL. Resolves once
   * the child has exited and every process of its tree is gone. Safe to call twice.
   */
  async stop(graceful: boolean): Promise<void> {
    const grace = this.#o.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
    if (!this.#stopping) {
      this.#stopping = true;
      // closing stdin may end the child and orphan what it started: note its tree first
      this.#tree.snapshot();
      await this.stdin.close().catch(() => {});
      if (!graceful || !(await settlesWithin(this.status, grace))) {
        this.#tree.signal("SIGTERM");
        if (!(await settlesWithin(this.status, grace))) this.#tree.signal("SIGKILL");
      }
    }
    await this.status;
    await this.reapTree();
  }

  /**
   * After the child exited: what is left of its tree (children that outlived it, including ones
   * that left its process group with `setsid()`) gets SIGTERM, then SIGKILL after `closeGrace`.
   * Resolves once the tree is empty.
   */
  async reapTree(): Promise<void> {
    if (Deno.build.os === "windows") return;
    const tree = this.#tree;
    if (!tree.alive()) {
      tree.release();
      return;
    }
    tree.signal("SIGTERM");
    const deadline = Date.now() + (this.#o.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS);
    while (tree.alive()) {
      if (Date.now() >= deadline) {
        tree.signal("SIGKILL");
        // SIGKILL cannot be ignored: the tree is gone once the kernel has reaped it
        for (let i = 0; i < 100 && tree.alive(); i++) await new Promise((r) => setTimeout(r, 10));
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    tree.release();
  }

  /** Sends SIGKILL to the child's whole tree at once (a line over the limit, a broken child). */
  kill(): void {
    this.#tree.signal("SIGKILL");
  }

  async #readStdout(): Promise<void> {
    // A BYOB reader into one reused buffer: measured 10-15 µs faster per round trip than the
    // default reader or `for await` (bench/protocol_roundtrip.ts). Lines are decoded (or their
    // partial bytes copied) before the buffer is reused.
    const reader = this.#process.stdout.getReader({ mode: "byob" });
    this.#readers.push(reader);
    if (this.#o.readStdout) {
      try {
        await this.#o.readStdout(reader);
      } catch (err) {
        this.#o.log.debug(`${this.#o.name}: stdout read failed: ${describeError(err)}`);
      } finally {
        reader.releaseLock();
      }
      return;
    }
    let buf = new Uint8Array(READ_BUFFER_BYTES);
    const max = this.#o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const lines = new LineSplitter({
      maxLineBytes: max,
      onOverflow: () => this.#o.onOverflow?.(max),
      longLineBytes: this.#o.longLineBytes,
      onLongLine: this.#o.onLongLine,
      onInvalidUtf8: this.#o.onStdoutInvalidUtf8,
    });
    const onLine = this.#o.onStdoutLine ?? (() => {});
    try {
      for (;;) {
        const { value, done } = await reader.read(buf);
        if (done || !value) break;
        lines.push(value, onLine);
        buf = new Uint8Array(value.buffer); // the read transferred it: take it back
      }
    } catch (err) {
      this.#o.log.debug(`${this.#o.name}: stdout read failed: ${describeError(err)}`);
    } finally {
      reader.releaseLock();
    }
    const rest = lines.flush();
    if (rest !== undefined) (this.#o.onUnfinishedLine ?? onLine)(rest);
  }

  async #readStderr(): Promise<void> {
    // A BYOB reader into one reused buffer (as stdout): a child flooding stderr then costs the
    // engine the lines it keeps or logs, not a fresh 64 KiB chunk per read.
    const reader = this.#process.stderr.getReader({ mode: "byob" });
    this.#readers.push(reader);
    const lines = new LineSplitter({ maxLineBytes: 64 * 1024 });
    const log = this.#o.log;
    const limit = new StderrLogLimit(log);
    const onLine = (raw: string) => {
      const clean = raw.includes("\x1b") ? raw.replace(ANSI_ESCAPE, "") : raw;
      const line = clean.length > STDERR_LINE_CHARS
        ? clean.slice(0, STDERR_LINE_CHARS - 3) + "..."
        : clean;
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
      if (limit.admit(raw.length)) log.info(`stderr: ${line}`);
    };
    let buf = new Uint8Array(READ_BUFFER_BYTES);
    try {
      for (;;) {
        const { value, done } = await reader.read(buf);
        if (done || !value) break;
        lines.push(value, onLine);
        buf = new Uint8Array(value.buffer); // the read transferred it: take it back
      }
    } catch {
      // the process is gone; stderr is informational only
    } finally {
      reader.releaseLock();
    }
    const rest = lines.flush();
    if (rest !== undefined) onLine(rest);
    limit.end();
  }
}

/**
 * Lets at most {@linkcode STDERR_LOG_LINES_PER_SECOND} stderr lines a second through to the log;
 * counts the others and says once per window how many were dropped (`stderr: 12,345 more lines
 * (1.2 MB) not logged: over 1000 lines a second`). Nothing is queued: a line is logged when it
 * comes or never.
 */
class StderrLogLimit {
  #windowStart = 0;
  #logged = 0;
  #dropped = 0;
  #droppedChars = 0;
  #timer?: ReturnType<typeof setTimeout>;

  constructor(readonly log: Logger) {}

  /** True when a line of `chars` characters may be logged now. */
  admit(chars: number): boolean {
    if (!this.log.enabled("info")) return false;
    const now = Date.now();
    if (now - this.#windowStart >= STDERR_LOG_WINDOW_MS) {
      this.#note();
      this.#windowStart = now;
      this.#logged = 0;
    }
    if (this.#logged < STDERR_LOG_LINES_PER_SECOND) {
      this.#logged++;
      return true;
    }
    this.#dropped++;
    this.#droppedChars += chars;
    if (this.#timer === undefined) {
      // the note comes at the window's end even when the child falls silent
      const timer = setTimeout(() => {
        this.#timer = undefined;
        this.#note();
      }, Math.max(0, this.#windowStart + STDERR_LOG_WINDOW_MS - now));
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
    return false;
  }

  /** At the end of stderr: the last note, if lines were dropped. */
  end(): void {
    this.#note();
  }

  #note(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dropped === 0) return;
    const n = this.#dropped;
    const chars = this.#droppedChars;
    this.#dropped = 0;
    this.#droppedChars = 0;
    this.log.info(
      `stderr: ${n.toLocaleString("en-US")} more line${n === 1 ? "" : "s"} (${
        sizeText(chars)
      }) not logged: over ${STDERR_LOG_LINES_PER_SECOND} lines a second`,
    );
  }
}

/** `812 characters`, `1.2 MB` (of text: characters counted as bytes, near enough). */
function sizeText(chars: number): string {
  if (chars < 10_000) return `${chars} characters`;
  if (chars < 1e6) return `${(chars / 1e3).toFixed(0)} kB`;
  return `${(chars / 1e6).toFixed(1)} MB`;
}

/**
 * Why a command could not be spawned in `cwd`: `not found (ENOENT); check the plugin's command
 * ...`, `its working directory ... does not exist`, `permission denied (...)`, or the error.
 */
export function spawnFailure(cwd: string, err: unknown): string {
  if (err instanceof Deno.errors.NotFound && !isDirectory(cwd)) {
    return `its working directory ${cwd} does not exist`;
  }
  if (err instanceof Deno.errors.NotFound) {
    return `not found (ENOENT); check the plugin's \`command\` (looked up on PATH, relative ` +
      `paths from ${cwd})`;
  }
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return `permission denied (${(err as Error).message})`;
  }
  return describeError(err);
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
