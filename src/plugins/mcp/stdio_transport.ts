/**
 * An MCP stdio client transport on `Deno.Command`, for the SDK `Client`.
 *
 * The SDK's own `StdioClientTransport` runs on `node:child_process` and forgets how the server
 * ended; this one keeps what a failure message needs: the spawn error (`ENOENT`), the exit code or
 * signal, the last lines of stderr and any non-JSON lines the server wrote on stdout. Framing is
 * the MCP stdio framing (one JSON-RPC message per line, UTF-8), parsed with exact numbers.
 *
 * Faults never throw out of the transport: a non-JSON line is logged and remembered (the server
 * keeps running, as DESIGN.md asks of workers), a dead process fires `onclose` once its exit
 * status is known, so pending requests fail with {@linkcode StdioTransport.exitDescription}.
 * @module
 */
import { LineSplitter } from "../../protocol/line_splitter.ts";
import type { JSONRPCMessage, Transport } from "./_sdk.ts";
import { isJsonObject, parseJson, stringifyJson } from "../../json/exact_json.ts";
import { TransportError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import { settlesWithin } from "../../core/abort.ts";

/** How to start a stdio MCP server. */
export interface StdioServerOptions {
  /** Program to run (PATH lookup as `Deno.Command` does it). */
  command: string;
  /** Arguments, already env-substituted. */
  args: string[];
  /** Added to the inherited environment (stepflow 0.8: MCP servers inherit the parent env). */
  env: Record<string, string>;
  /** Working directory of the server. */
  cwd: string;
  /** Logger for stderr lines and junk on stdout. */
  log: Logger;
  /**
   * How long `close()` waits after closing stdin before SIGTERM, and after SIGTERM before SIGKILL.
   * @default {2000} ms
   */
  closeGraceMs?: number;
  /**
   * Longest stdout line accepted; a longer one kills the server (it cannot be a sane reply).
   * @default {67108864} bytes (64 MiB)
   */
  maxLineBytes?: number;
}

/** Default grace in ms between the steps of `close()`. */
export const DEFAULT_CLOSE_GRACE_MS = 2000;
/** Default longest stdout line, in bytes. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;

/** How long the pipes are read after the process exited (grandchildren may hold them), ms. */
const PIPE_DRAIN_MS = 500;
const STDERR_TAIL_LINES = 10;
const JUNK_KEPT = 3;
const encoder = new TextEncoder();

/** The SDK `Transport` over a child process's stdin/stdout. */
export class StdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  #opts: StdioServerOptions;
  #child?: Deno.ChildProcess;
  #writer?: WritableStreamDefaultWriter<Uint8Array>;
  #status?: Deno.CommandStatus;
  #closing = false;
  #closedFired = false;
  #done?: Promise<void>;
  #stderrTail: string[] = [];
  #junk: string[] = [];
  #killReason?: string;

  constructor(opts: StdioServerOptions) {
    this.#opts = opts;
  }

  /**
   * Spawns the server.
   * @throws {TransportError} `cannot start '<command>': not found (ENOENT)` and similar; the cause
   * is the `Deno.errors` value.
   */
  start(): Promise<void> {
    const o = this.#opts;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(o.command, {
        args: o.args,
        env: o.env,
        cwd: o.cwd,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      return Promise.reject(
        new TransportError(spawnFailure(o.command, o.cwd, err), { cause: err }),
      );
    }
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#writer.closed.catch(() => {}); // a broken pipe surfaces through send() and the exit
    const outReader = child.stdout.getReader();
    const errReader = child.stderr.getReader();
    const drained = Promise.allSettled([
      this.#readStdout(outReader),
      this.#readStderr(errReader),
    ]);
    this.#done = (async () => {
      this.#status = await child.status;
      // A grandchild that inherited the pipes may keep them open: read what is left for a
      // moment, then stop reading, so the end is reported and close() returns.
      if (!(await settlesWithin(drained, PIPE_DRAIN_MS))) {
        outReader.cancel().catch(() => {});
        errReader.cancel().catch(() => {});
        await drained;
      }
      this.#fireClose();
    })();
    return Promise.resolve();
  }

  /** Writes one message line. @throws {TransportError} when the server's stdin is closed. */
  async send(message: JSONRPCMessage): Promise<void> {
    const w = this.#writer;
    if (!w || this.#status || this.#closing) {
      throw new TransportError(this.exitDescription() ?? "MCP server is not running");
    }
    try {
      await w.write(encoder.encode(stringifyJson(message) + "\n"));
    } catch (err) {
      throw new TransportError(
        `cannot write to the server's stdin (${(err as Error).message})`,
        { cause: err },
      );
    }
  }

  /**
   * Stops the server: closes stdin, waits `closeGraceMs`, then SIGTERM, waits again, then SIGKILL.
   * Resolves once the process has exited and its pipes are drained. Safe to call twice.
   */
  async close(): Promise<void> {
    const child = this.#child;
    if (!child) {
      this.#fireClose();
      return;
    }
    this.#closing = true;
    const grace = this.#opts.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
    try {
      await this.#writer?.close();
    } catch {
      // already closed or broken
    }
    if (!this.#status && !(await this.#waitExit(grace))) {
      this.#kill("SIGTERM");
      if (!(await this.#waitExit(grace))) this.#kill("SIGKILL");
    }
    await this.#done;
  }

  /**
   * Why the server is gone, for error messages: `exited with code 3`, `was killed by SIGKILL`,
   * plus the last stderr line and any non-JSON stdout lines. Undefined while it runs.
   */
  exitDescription(): string | undefined {
    const reason = this.exitReason();
    if (reason === undefined) return undefined;
    const hints = this.diagnostics();
    return hints ? `${reason}; ${hints}` : reason;
  }

  /** `exited with code 3`, `was killed by SIGKILL`, ...; undefined while the server runs. */
  exitReason(): string | undefined {
    const s = this.#status;
    if (!s) return undefined;
    return this.#killReason ??
      (s.signal ? `was killed by ${s.signal}` : `exited with code ${s.code}`);
  }

  /** What the server printed that may explain a failure: stderr tail and junk stdout lines. */
  diagnostics(): string {
    const parts: string[] = [];
    if (this.#junk.length > 0) {
      parts.push(
        `it wrote non-JSON on stdout (MCP servers must write only JSON-RPC lines there): ${
          this.#junk.map((j) => JSON.stringify(j)).join(", ")
        }`,
      );
    }
    const tail = this.#stderrTail.filter((l) => l.trim() !== "");
    if (tail.length > 0) parts.push(`stderr: ${tail.slice(-3).join(" | ")}`);
    return parts.join("; ");
  }

  async #waitExit(ms: number): Promise<boolean> {
    return this.#status !== undefined || await settlesWithin(this.#child!.status, ms);
  }

  #kill(signal: Deno.Signal): void {
    try {
      this.#child?.kill(signal);
    } catch {
      // already exited
    }
  }

  #fireClose(): void {
    if (this.#closedFired) return;
    this.#closedFired = true;
    this.onclose?.();
  }

  async #readStdout(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const max = this.#opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    // the protocol's newline framing: no quadratic joins for a long line arriving in chunks
    const lines = new LineSplitter({
      maxLineBytes: max,
      onOverflow: () => {
        this.#killReason = `wrote a stdout line longer than ${max} bytes and was stopped`;
        this.#kill("SIGKILL");
      },
    });
    const onLine = (line: string) => this.#onLine(line);
    try {
      while (true) {
        const { value: chunk, done } = await reader.read();
        if (done) break;
        lines.push(chunk, onLine);
      }
      const rest = lines.flush();
      if (rest !== undefined) this.#onLine(rest);
    } catch (err) {
      this.onerror?.(new TransportError(`reading stdout failed: ${(err as Error).message}`));
    }
  }

  #onLine(raw: string): void {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return;
    let msg: unknown;
    try {
      msg = parseJson(line);
    } catch {
      msg = undefined;
    }
    if (!isJsonObject(msg) || msg.jsonrpc !== "2.0") {
      const shown = line.length > 200 ? line.slice(0, 197) + "..." : line;
      this.#junk.push(shown);
      if (this.#junk.length > JUNK_KEPT) this.#junk.shift();
      this.#opts.log.warn(`non-JSON-RPC line on stdout ignored: ${JSON.stringify(shown)}`);
      return;
    }
    try {
      this.onmessage?.(msg as unknown as JSONRPCMessage);
    } catch (err) {
      this.onerror?.(err as Error);
    }
  }

  async #readStderr(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      while (true) {
        const { value: chunk, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(chunk, { stream: true });
        let nl = buf.indexOf("\n");
        while (nl >= 0) {
          this.#onStderr(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          nl = buf.indexOf("\n");
        }
        if (buf.length > 64 * 1024) {
          this.#onStderr(buf);
          buf = "";
        }
      }
      if (buf !== "") this.#onStderr(buf);
    } catch {
      // stderr is informational only
    }
  }

  #onStderr(raw: string): void {
    // deno-lint-ignore no-control-regex
    const line = raw.replace(/\x1b\[[0-9;]*m/g, ""); // colour codes are noise in a message
    const l = line.length > 300 ? line.slice(0, 297) + "..." : line;
    this.#stderrTail.push(l);
    if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.shift();
    this.#opts.log.info(`stderr: ${l}`);
  }
}

function spawnFailure(command: string, cwd: string, err: unknown): string {
  if (err instanceof Deno.errors.NotFound && !isDirectory(cwd)) {
    return `cannot start '${command}': its working directory ${cwd} does not exist`;
  }
  if (err instanceof Deno.errors.NotFound) {
    return `cannot start '${command}': not found (ENOENT); check the plugin's \`command\` ` +
      `(looked up on PATH, relative paths from ${cwd})`;
  }
  if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
    return `cannot start '${command}': permission denied (${(err as Error).message})`;
  }
  return `cannot start '${command}': ${err instanceof Error ? err.message : String(err)}`;
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
