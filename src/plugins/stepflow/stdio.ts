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
 * its whole process tree is sent SIGTERM, then SIGKILL. Spawning, pipes, the stderr tail and
 * stopping the tree are the engine's one child-process supervisor's (src/plugins/supervisor.ts).
 * @module
 */
import { settlesWithin } from "../../core/abort.ts";
import { sleep } from "../../core/clock.ts";
import type { JsonValue } from "../../json/exact_json.ts";
import { describeError, OutputLimitError, TransportError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import { Peer } from "../../protocol/peer.ts";
import { LineSplitter } from "../../protocol/line_splitter.ts";
import { Child, DEFAULT_CLOSE_GRACE_MS, DEFAULT_MAX_LINE_BYTES } from "../supervisor.ts";
import {
  ENVELOPE_BYTES,
  type RequestHandler,
  WorkerCrashError,
  type WorkerTransport,
} from "./transport.ts";
import { initializeWorker } from "./handshake.ts";
import { LineWriter } from "./line_writer.ts";

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

export { DEFAULT_CLOSE_GRACE_MS, DEFAULT_MAX_LINE_BYTES };

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
  child: Child;
  peer: Peer;
  /** Its stdin, written in coalesced batches. */
  out: LineWriter;
  alive: boolean;
  /** True until `initialize` is answered (a failure then is reported by the handshake). */
  handshaking: boolean;
  /** Set when we stop it on purpose (close, broken stdin). */
  stopping?: string;
  /** Resolves when the process has exited and its open calls were failed. */
  exited: Promise<void>;
}

/** Size of the buffer stdout is read into, bytes. */
const READ_BUFFER_BYTES = 1 << 16;

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
  /** Process trees whose first process exited but whose children may still run. */
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
  request(method: string, params: unknown, signal?: AbortSignal): Promise<JsonValue> {
    // the hot path: a running worker is called without waiting a turn for #ready(), and the
    // peer's promise is returned as it is (the restart count is reset by its `onResult`)
    const live = this.#proc;
    if (live?.alive) return live.peer.request(method, params, signal);
    return this.#ready().then((proc) => proc.peer.request(method, params, signal));
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
        await settlesWithin(proc.child.stderrDone, 200);
        await proc.child.status;
        ended = `${this.#name} ${proc.child.exitReason()} before answering 'initialize'${
          stderrTail(proc.child)
        }`;
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
    const proc = {} as Proc;
    let child: Child;
    try {
      child = Child.spawn({
        name: this.#name,
        command: o.command,
        args: o.args,
        env: o.env,
        clearEnv: true, // 0.8: nothing is inherited
        cwd: o.cwd,
        log: o.log,
        closeGraceMs: o.closeGraceMs,
        maxLineBytes: o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
        readStdout: (reader) => this.#readStdout(proc, reader),
      });
    } catch (err) {
      const msg = `could not start ${this.#name} (${o.command} ${o.args.join(" ")}): ${
        describeError(err)
      }`;
      this.#lastExit = msg;
      throw new TransportError(msg, { cause: err });
    }
    Object.assign(proc, {
      child,
      peer: new Peer({
        name: this.#name,
        log: o.log,
        write: (text: string, failed?: (err: unknown) => void) => this.#write(proc, text, failed),
        onRequest: o.onRequest,
        // stepflow 0.8: the restart count resets after a successful message (not `initialize`:
        // a worker that crashes on every call after its handshake must not restart forever)
        onResult: () => {
          if (!proc.handshaking) this.#restarts = 0;
        },
      }),
      out: new LineWriter((bytes) => child.stdin.write(bytes), (err) => {
        this.#discard(proc, `it closed its stdin (${describeError(err)})`);
        return new TransportError(`its stdin is closed (${describeError(err)})`, { cause: err });
      }),
      alive: true,
      handshaking: true,
    });
    void child.stdoutDone.then(() => this.#closedStdout(proc));
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
  #write(proc: Proc, text: string, failed?: (err: unknown) => void): Promise<void> | undefined {
    if (!proc.alive) return Promise.reject(new TransportError(`${this.#name} has exited`));
    if (failed === undefined) return proc.out.send(text);
    proc.out.post(text, failed); // no promise per message (issue 17)
    return undefined;
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

  /**
   * Reads the worker's stdout (through the supervisor's BYOB reader into one reused buffer):
   * answer lines go to the peer; an answer over the output size limit fails its call (413); an
   * answer without its newline is tried once stdout has been quiet for QUIET_MS.
   */
  async #readStdout(proc: Proc, reader: ReadableStreamBYOBReader): Promise<void> {
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
      // a line that is not UTF-8 fails the call it answers instead of reaching it changed
      onInvalidUtf8: (text, at) => {
        stallReported = false;
        proc.peer.receiveInvalidUtf8(text, at);
      },
    });
    /** The unfinished line held now was reported as stalled (once per line). */
    let stallReported = false;
    const onLine = (line: string) => {
      stallReported = false;
      proc.peer.receiveText(line);
    };
    // A whole answer without its newline: tried once stdout has been quiet for QUIET_MS.
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const onQuiet = () => {
      quiet = undefined;
      const text = lines.peek();
      if (text === undefined) return;
      const bad = lines.pendingInvalidUtf8Offset();
      if (bad >= 0 && isWholeJson(text)) {
        // a whole answer without its newline, but not UTF-8: fails its call as a line would
        lines.flush();
        proc.peer.receiveInvalidUtf8(text, bad);
        return;
      }
      if (proc.peer.receiveUnterminated(text)) {
        lines.flush();
      } else if (!stallReported) {
        // half a message and silence (a worker stuck mid-write): say so rather than wait mutely
        stallReported = true;
        this.#o.log.warn(
          `${this.#name}: wrote part of a line on stdout and went quiet with ${proc.peer.pendingCount} ` +
            `call(s) open: ${
              JSON.stringify(text.length > 200 ? text.slice(0, 200) + "…" : text)
            }; its calls wait for the rest of the line (a step timeout ends the wait)`,
        );
      }
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
    }
    const rest = lines.flush();
    if (rest !== undefined) {
      this.#o.log.warn(
        `${this.#name}: skipped an unfinished last line on stdout: ${
          JSON.stringify(rest.length > 200 ? rest.slice(0, 200) + "…" : rest)
        }`,
      );
    }
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

  async #onExit(proc: Proc, status: Deno.CommandStatus): Promise<void> {
    proc.alive = false;
    if (this.#proc === proc) this.#proc = undefined;
    // let the last responses and stderr lines in (0.8 drains 500 ms)
    await proc.child.drain();
    // children left behind (also ones that left the process group): SIGTERM, then SIGKILL
    const reap = proc.child.reapTree();
    this.#reaping.add(reap);
    void reap.finally(() => this.#reaping.delete(reap));
    const how = status.signal
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    const msg = proc.stopping
      ? `${this.#name} was stopped because ${proc.stopping}`
      : `${this.#name} ${how}${stderrTail(proc.child)}`;
    if (!proc.stopping) {
      this.#lastExit = msg;
      if ((status.code !== 0 || proc.peer.pendingCount > 0) && !proc.handshaking) {
        this.#o.log.warn(msg);
      }
    }
    // a worker stopped because the engine closes did not crash: its calls are not retried
    // (they were, once each, with a warning per call, into a transport already closed)
    proc.peer.failPending(this.#closed ? new TransportError(msg) : new WorkerCrashError(msg));
    this.#all.delete(proc);
  }

  async #stop(proc: Proc, why: string): Promise<void> {
    if (!proc.alive) return await proc.exited;
    proc.stopping ??= why;
    await proc.child.stop(why === "the engine is closing");
    await proc.exited;
  }
}

/** True when `text` parses as JSON (a whole message, not the start of one). */
function isWholeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** `; last stderr: a | b` (the supervisor's tail), or empty. */
function stderrTail(child: Child): string {
  return child.stderrTail.length > 0 ? `; last stderr: ${child.stderrTail.join(" | ")}` : "";
}
