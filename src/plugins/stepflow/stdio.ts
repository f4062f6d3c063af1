/**
 * The stdio transport (stepflow 0.8 §3.4): a child process speaking newline-delimited JSON-RPC
 * on stdin/stdout, many calls multiplexed on one process, worker→engine requests answered on
 * stdin while the engine's calls are open.
 *
 * Faults, each failing a call and never the engine:
 * - a non-JSON line on stdout is logged (with the plugin name) and skipped (0.8: restarts); an
 *   answer with other text before it on its line, or without its newline (stdout then quiet for
 *   200 ms), is taken with a warning;
 * - an answer line longer than the output size limit is not read further: its call fails with
 *   413 (src/errors.ts `OutputLimitError`), the worker stays; any other line longer than
 *   `maxLineBytes` stops the worker;
 * - the process dies: open calls fail with a {@linkcode WorkerCrashError} naming the exit code
 *   and the last stderr lines; the next call restarts it after a backoff (0.8: 1 s doubling to
 *   30 s, at most 5 consecutive restarts; the count resets after a successful call); a
 *   restarted process gets `initialize` again (0.8 does not; 0.8 workers accept both);
 * - writing to a closed stdin fails that call; the process is then stopped and restarted.
 * At {@linkcode StdioWorker.close}, stdin is closed, the process gets `graceMs` to exit, then
 * its whole process group is sent SIGTERM, then SIGKILL.
 * @module
 */
import { settlesWithin } from "../_settles_within.ts";
import type { JsonValue } from "../../json/exact_json.ts";
import { describeError, OutputLimitError, TransportError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import { Peer } from "../../protocol/peer.ts";
import { LineSplitter } from "../../protocol/line_splitter.ts";
import {
  ENVELOPE_BYTES,
  type RequestHandler,
  WorkerCrashError,
  type WorkerTransport,
} from "./transport.ts";
import { initializeWorker } from "./handshake.ts";

/** Restart policy of a crashed worker (defaults are stepflow 0.8's). */
export interface RestartPolicy {
  /** Delay before the first restart, ms; doubles each time. @default 1000 */
  initialDelayMs: number;
  /** Longest delay, ms. @default 30000 */
  maxDelayMs: number;
  /** Most consecutive restarts before calls fail for good. @default 5 */
  maxRestarts: number;
}

/** stepflow 0.8's restart policy. */
export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicy> = {
  initialDelayMs: 1000,
  maxDelayMs: 30_000,
  maxRestarts: 5,
};

/**
 * Longest message line read from a worker, in bytes (about the longest string V8 can hold). A
 * longer line (a worker streaming without newlines) stops the worker instead of exhausting the
 * engine's memory.
 */
export const DEFAULT_MAX_LINE_BYTES = 512 * 1024 * 1024;

/** How long {@linkcode StdioWorker.close} waits after closing stdin before SIGTERM, ms. */
export const DEFAULT_CLOSE_GRACE_MS = 2000;

/** Options of a {@linkcode StdioWorker}. */
export interface StdioWorkerOptions {
  /** Plugin name (log tag and messages). */
  name: string;
  /** Absolute path of the executable. */
  command: string;
  args: string[];
  /** The whole environment of the process (0.8: nothing is inherited). */
  env: Record<string, string>;
  /** Working directory of the process. */
  cwd: string;
  log: Logger;
  /** Answers the worker's requests. */
  onRequest: RequestHandler;
  /** @default DEFAULT_RESTART_POLICY */
  restart?: RestartPolicy;
  /** @default DEFAULT_CLOSE_GRACE_MS */
  closeGraceMs?: number;
  /** @default DEFAULT_MAX_LINE_BYTES */
  maxLineBytes?: number;
  /**
   * The engine's output size limit (config `maxOutputSize`), bytes: an answer line passing it
   * (plus {@linkcode ENVELOPE_BYTES}) is not read further and its call fails with 413.
   * @default no limit but `maxLineBytes`
   */
  maxOutputBytes?: number;
}

/**
 * How long stdout must stay quiet, with a call open and an unfinished line held, before that
 * line is tried as a whole answer (a worker that does not end its answer with a newline), ms.
 */
const QUIET_MS = 200;
/** Longest unfinished line tried that way, bytes. */
const QUIET_PEEK_MAX = 1 << 20;

interface Proc {
  child: Deno.ChildProcess;
  peer: Peer;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Messages waiting while a write is in progress (sent together as one write). */
  queue: QueuedWrite[];
  writing: boolean;
  alive: boolean;
  /** True until `initialize` is answered (a failure then is reported by the handshake). */
  handshaking: boolean;
  /** Set when we stop it on purpose (close, broken stdin). */
  stopping?: string;
  stderrTail: string[];
  /** Resolves when stdout reached its end. */
  stdoutDone: Promise<void>;
  stderrDone: Promise<void>;
  /** The stdout and stderr readers (cancelled when a grandchild keeps the pipes open). */
  readers: { cancel(): Promise<void> }[];
  /** Resolves when the process has exited and its open calls were failed. */
  exited: Promise<void>;
}

interface QueuedWrite {
  text: string;
  resolve(): void;
  reject(err: unknown): void;
}

const STDERR_TAIL = 8;
/** ANSI escape sequences (colours, cursor moves) in a worker's stderr lines. */
// deno-lint-ignore no-control-regex
const ANSI_ESCAPE = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;

/** Size of the buffer stdout is read into, bytes. */
const READ_BUFFER_BYTES = 1 << 16;
const encoder = new TextEncoder();

/** A step service process, restarted when it crashes. */
export class StdioWorker implements WorkerTransport {
  readonly #o: StdioWorkerOptions;
  readonly #policy: RestartPolicy;
  readonly #name: string;
  #proc?: Proc;
  #starting?: Promise<Proc>;
  #all = new Set<Proc>();
  #restarts = 0;
  #lastExit = "";
  #closed = false;
  #closeAc = new AbortController();
  /** Process groups whose leader exited but whose children may still run (see #reap). */
  readonly #reaping = new Set<Promise<void>>();

  constructor(options: StdioWorkerOptions) {
    this.#o = options;
    this.#policy = options.restart ?? DEFAULT_RESTART_POLICY;
    this.#name = `step service '${options.name}'`;
  }

  /** Spawns the process and does the handshake. @throws {TransportError} */
  async start(): Promise<void> {
    await this.#ready();
  }

  /** See {@linkcode WorkerTransport.request}. */
  async request(method: string, params: unknown, signal?: AbortSignal): Promise<JsonValue> {
    const proc = await this.#ready();
    const result = await proc.peer.request(method, params, signal);
    this.#restarts = 0; // stepflow 0.8: the restart count resets after a successful message
    return result;
  }

  /** Closes stdin, waits, then terminates the process group. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) {
      await Promise.all([...this.#all].map((p) => p.exited));
      return;
    }
    this.#closed = true;
    this.#closeAc.abort();
    await this.#starting?.catch(() => {});
    await Promise.all([...this.#all].map((p) => this.#stop(p, "the engine is closing")));
    await Promise.all([...this.#reaping]);
  }

  async #ready(): Promise<Proc> {
    if (this.#proc?.alive) return this.#proc;
    if (this.#closed) throw new TransportError(`${this.#name} is closed`);
    this.#starting ??= this.#launch().finally(() => this.#starting = undefined);
    return await this.#starting;
  }

  async #launch(): Promise<Proc> {
    if (this.#lastExit !== "") {
      // a restart
      if (this.#restarts >= this.#policy.maxRestarts) {
        throw new WorkerCrashError(
          `${this.#lastExit}; gave up after ${this.#policy.maxRestarts} restarts in a row`,
        );
      }
      const delay = Math.min(
        this.#policy.initialDelayMs * 2 ** this.#restarts,
        this.#policy.maxDelayMs,
      );
      this.#restarts++;
      this.#o.log.warn(
        `restarting ${this.#name} in ${delay} ms (restart ${this.#restarts} of at most ${this.#policy.maxRestarts})`,
      );
      await sleep(delay, this.#closeAc.signal);
      if (this.#closed) throw new TransportError(`${this.#name} is closed`);
    }
    const proc = this.#spawn();
    try {
      await initializeWorker(proc.peer, this.#name, this.#closeAc.signal);
    } catch (err) {
      // A worker that exited before answering: say so (with its exit code and stderr) rather
      // than report the broken pipe the handshake ran into.
      let ended: string | undefined;
      if (await settlesWithin(proc.child.status, 500)) {
        await settlesWithin(proc.stderrDone, 200);
        const status = await proc.child.status;
        const how = status.signal
          ? `was killed by ${status.signal}`
          : `exited with code ${status.code}`;
        const tail = proc.stderrTail.length > 0
          ? `; last stderr: ${proc.stderrTail.join(" | ")}`
          : "";
        ended = `${this.#name} ${how} before answering 'initialize'${tail}`;
        this.#lastExit = ended;
      }
      await this.#stop(proc, "its handshake failed");
      if (ended) throw new TransportError(ended);
      throw err instanceof TransportError ? err : new TransportError(
        `${this.#name} failed the initialize handshake: ${describeError(err)}`,
        { cause: err },
      );
    }
    proc.handshaking = false;
    this.#proc = proc;
    return proc;
  }

  #spawn(): Proc {
    const o = this.#o;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(o.command, {
        args: o.args,
        cwd: o.cwd,
        env: o.env,
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        detached: true, // own process group, so close() can stop its children too
      }).spawn();
    } catch (err) {
      const msg = `could not start ${this.#name} (${o.command} ${o.args.join(" ")}): ${
        describeError(err)
      }`;
      this.#lastExit = msg;
      throw new TransportError(msg, { cause: err });
    }
    const started = Promise.resolve();
    const proc: Proc = {
      child,
      peer: new Peer({
        name: this.#name,
        log: o.log,
        write: (text) => this.#write(proc, text),
        onRequest: o.onRequest,
      }),
      writer: child.stdin.getWriter(),
      queue: [],
      writing: false,
      readers: [],
      alive: true,
      handshaking: true,
      stderrTail: [],
      stdoutDone: started,
      stderrDone: started,
      exited: started,
    };
    proc.stdoutDone = this.#readStdout(proc);
    proc.stderrDone = this.#readStderr(proc);
    proc.exited = child.status.then((status) => this.#onExit(proc, status));
    this.#all.add(proc);
    return proc;
  }

  /**
   * Writes one message line. Messages sent in the same turn of the event loop, or while a write
   * is in progress, are coalesced into one write (one syscall for many calls under load; a
   * single microtask of delay when idle). A failed write fails the calls whose messages it
   * carried.
   */
  #write(proc: Proc, text: string): Promise<void> {
    if (!proc.alive) return Promise.reject(new TransportError(`${this.#name} has exited`));
    return new Promise((resolve, reject) => {
      proc.queue.push({ text, resolve, reject });
      if (!proc.writing) {
        proc.writing = true;
        queueMicrotask(() => void this.#flush(proc));
      }
    });
  }

  async #flush(proc: Proc): Promise<void> {
    proc.writing = true;
    while (proc.queue.length > 0) {
      const batch = proc.queue;
      proc.queue = [];
      const text = batch.length === 1
        ? batch[0].text + "\n"
        : batch.map((b) => b.text).join("\n") + "\n";
      try {
        await proc.writer.write(encoder.encode(text));
        for (const b of batch) b.resolve();
      } catch (err) {
        this.#discard(proc, `it closed its stdin (${describeError(err)})`);
        const e = new TransportError(`its stdin is closed (${describeError(err)})`, {
          cause: err,
        });
        for (const b of [...batch, ...proc.queue]) b.reject(e);
        proc.queue = [];
      }
    }
    proc.writing = false;
  }

  /** Stops a process that can no longer be used; the next call starts a new one. */
  #discard(proc: Proc, why: string): void {
    if (proc.stopping) return;
    if (!proc.handshaking) {
      this.#o.log.warn(`${this.#name}: ${why}; stopping it, it restarts on the next call`);
    }
    this.#lastExit = `${this.#name} was stopped because ${why}`;
    if (this.#proc === proc) this.#proc = undefined;
    void this.#stop(proc, why);
  }

  async #readStdout(proc: Proc): Promise<void> {
    // A BYOB reader into one reused buffer: measured 10-15 µs faster per round trip than the
    // default reader or `for await` (bench/protocol_roundtrip.ts). Lines are decoded (or their
    // partial bytes copied) before the buffer is reused.
    const reader = proc.child.stdout.getReader({ mode: "byob" });
    proc.readers.push(reader);
    let buf = new Uint8Array(READ_BUFFER_BYTES);
    const max = this.#o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const limit = this.#o.maxOutputBytes;
    // An answer too large to use fails its call at once (413, never retried): the rest of the
    // line is skipped, the worker stays. The call is found by the id in the line's first bytes.
    const tooLarge = (head: string, bytes: number, limitBytes: number) =>
      proc.peer.failCallIn(head, (method) =>
        new OutputLimitError(
          `${this.#name} sent an answer to '${method}' of more than ${bytes} bytes, ` +
            `not read to its end`,
          { limitBytes, sizeBytes: bytes },
        ));
    const lines = new LineSplitter({
      maxLineBytes: max,
      onOverflow: (bytes, head) => {
        if (tooLarge(head, bytes, Math.min(limit ?? max, max))) return;
        this.#discard(proc, `it wrote a line longer than ${max} bytes on stdout`);
      },
      longLineBytes: limit === undefined ? undefined : limit + ENVELOPE_BYTES,
      onLongLine: (head, bytes) => tooLarge(head, bytes, limit!),
    });
    const onLine = (line: string) => proc.peer.receiveText(line);
    // A whole answer without its newline: tried once stdout has been quiet for QUIET_MS.
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const onQuiet = () => {
      quiet = undefined;
      const text = lines.peek();
      if (text !== undefined && proc.peer.receiveUnterminated(text)) lines.flush();
    };
    try {
      for (;;) {
        const { value, done } = await reader.read(buf);
        if (done || !value) break;
        if (quiet !== undefined) clearTimeout(quiet);
        quiet = undefined;
        lines.push(value, onLine);
        buf = new Uint8Array(value.buffer); // the read transferred it: take it back
        const held = lines.pendingBytes;
        if (held > 0 && held <= QUIET_PEEK_MAX && proc.peer.pendingCount > 0) {
          quiet = setTimeout(onQuiet, QUIET_MS);
        }
      }
    } catch (err) {
      this.#o.log.debug(`${this.#name}: stdout read failed: ${describeError(err)}`);
    } finally {
      if (quiet !== undefined) clearTimeout(quiet);
      reader.releaseLock();
    }
    const rest = lines.flush();
    if (rest !== undefined) {
      this.#o.log.warn(
        `${this.#name}: skipped an unfinished last line on stdout: ${
          JSON.stringify(rest.length > 200 ? rest.slice(0, 200) + "…" : rest)
        }`,
      );
    }
    void this.#closedStdout(proc);
  }

  /**
   * stdout ended. A worker that exits now is handled by {@linkcode #onExit}; one that keeps
   * running can never answer again, so it is stopped (its open calls fail naming why) instead
   * of leaving them waiting forever.
   */
  async #closedStdout(proc: Proc): Promise<void> {
    if (!proc.alive || proc.stopping) return;
    if (await settlesWithin(proc.child.status, 500)) return;
    if (!proc.alive || proc.stopping) return;
    this.#discard(proc, "it closed its stdout but kept running");
  }

  async #readStderr(proc: Proc): Promise<void> {
    const reader = proc.child.stderr.getReader();
    proc.readers.push(reader);
    const lines = new LineSplitter();
    const onLine = (raw: string) => {
      // colour codes (a Deno worker's stack trace) would end up escaped in the FlowResult
      const line = raw.includes("\x1b") ? raw.replace(ANSI_ESCAPE, "") : raw;
      proc.stderrTail.push(line);
      if (proc.stderrTail.length > STDERR_TAIL) proc.stderrTail.shift();
      this.#o.log.info(`stderr: ${line}`);
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        lines.push(value, onLine);
      }
    } catch {
      // the process is gone
    } finally {
      reader.releaseLock();
    }
    const rest = lines.flush();
    if (rest !== undefined) onLine(rest);
  }

  async #onExit(proc: Proc, status: Deno.CommandStatus): Promise<void> {
    proc.alive = false;
    if (this.#proc === proc) this.#proc = undefined;
    // let the last responses and stderr lines in (0.8 drains 500 ms)
    const drained = Promise.all([proc.stdoutDone, proc.stderrDone]);
    if (!(await settlesWithin(drained, 500))) {
      // a grandchild outside the process group holds the pipes: stop reading them
      await Promise.allSettled(proc.readers.map((r) => r.cancel()));
    }
    await proc.writer.close().catch(() => {});
    killGroup(proc.child.pid, "SIGTERM"); // children left behind
    const reap = this.#reap(proc.child.pid);
    this.#reaping.add(reap);
    void reap.finally(() => this.#reaping.delete(reap));
    const how = status.signal
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    const tail = proc.stderrTail.length > 0 ? `; last stderr: ${proc.stderrTail.join(" | ")}` : "";
    const msg = proc.stopping
      ? `${this.#name} was stopped because ${proc.stopping}`
      : `${this.#name} ${how}${tail}`;
    if (!proc.stopping) {
      this.#lastExit = msg;
      if ((status.code !== 0 || proc.peer.pendingCount > 0) && !proc.handshaking) {
        this.#o.log.warn(msg);
      }
    }
    proc.peer.failPending(new WorkerCrashError(msg));
    this.#all.delete(proc);
  }

  /**
   * The worker exited and its group got SIGTERM: a child that ignores it (or is slow) gets
   * SIGKILL after `closeGrace`, so no process of the worker outlives the engine. Returns at
   * once when the group is empty.
   */
  async #reap(pgid: number): Promise<void> {
    if (Deno.build.os === "windows") return;
    const grace = this.#o.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
    const deadline = Date.now() + grace;
    while (groupAlive(pgid)) {
      if (Date.now() >= deadline) {
        killGroup(pgid, "SIGKILL");
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async #stop(proc: Proc, why: string): Promise<void> {
    if (!proc.alive) return await proc.exited;
    proc.stopping ??= why;
    await proc.writer.close().catch(() => {});
    const grace = this.#o.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
    if (why !== "the engine is closing" || !(await settlesWithin(proc.exited, grace))) {
      killGroup(proc.child.pid, "SIGTERM");
      if (!(await settlesWithin(proc.exited, grace))) killGroup(proc.child.pid, "SIGKILL");
    }
    await proc.exited;
  }
}

/** True while the process group `pgid` has a member (probed with the harmless SIGCONT). */
function groupAlive(pgid: number): boolean {
  try {
    Deno.kill(-pgid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** Sends `signal` to the process group of `pid` (falls back to the process itself). */
function killGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    try {
      Deno.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
