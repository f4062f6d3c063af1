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
 * The process (in its own process group; its whole tree is stopped) is run by the engine's one
 * child-process supervisor (src/plugins/supervisor.ts), with the same limits as step services.
 * @module
 */
import type { JSONRPCMessage, Transport } from "./_sdk.ts";
import { isJsonObject, parseJson, stringifyJson } from "../../json/exact_json.ts";
import { TransportError } from "../../errors.ts";
import { ANSWER_TOO_LARGE, INTERNAL_ERROR } from "../../core/rpc_error_codes.ts";
import type { Logger } from "../../log.ts";
import {
  Child,
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_MAX_LINE_BYTES,
  spawnFailure,
} from "../supervisor.ts";

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
   * @default DEFAULT_CLOSE_GRACE_MS
   */
  closeGraceMs?: number;
  /**
   * Longest stdout line accepted; a longer one kills the server (it cannot be a sane reply).
   * @default DEFAULT_MAX_LINE_BYTES
   */
  maxLineBytes?: number;
  /**
   * Largest answer read (bytes of its line): a longer answer to one of our requests is answered
   * for the server with {@linkcode ANSWER_TOO_LARGE} and the rest of its line is skipped, so a
   * server cannot make the engine read and parse hundreds of MB it would refuse anyway.
   * @default no limit but `maxLineBytes`
   */
  maxAnswerBytes?: number;
}

export { DEFAULT_CLOSE_GRACE_MS, DEFAULT_MAX_LINE_BYTES };

const JUNK_KEPT = 3;
const encoder = new TextEncoder();

/** The SDK `Transport` over a child process's stdin/stdout. */
export class StdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  #opts: StdioServerOptions;
  #child?: Child;
  #closing = false;
  #closedFired = false;
  #done?: Promise<void>;
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
    let child: Child;
    try {
      child = Child.spawn({
        name: `MCP server '${o.command}'`,
        command: o.command,
        args: o.args,
        env: o.env,
        clearEnv: false, // stepflow 0.8: MCP servers inherit the engine's environment
        cwd: o.cwd,
        log: o.log,
        closeGraceMs: o.closeGraceMs,
        maxLineBytes: o.maxLineBytes,
        onStdoutLine: (line) => this.#onLine(line),
        onStdoutInvalidUtf8: (text, at) => this.#notUtf8(text, at),
        onOverflow: (max) => {
          this.#killReason = `wrote a stdout line longer than ${max} bytes and was stopped`;
          child.kill();
        },
        longLineBytes: o.maxAnswerBytes,
        onLongLine: (head, bytes) => this.#tooLarge(head, bytes),
      });
    } catch (err) {
      return Promise.reject(
        new TransportError(
          `cannot start '${o.command}': ${spawnFailure(o.cwd, err)}`,
          { cause: err },
        ),
      );
    }
    this.#child = child;
    this.#done = (async () => {
      await child.status;
      // a grandchild that inherited the pipes may keep them open: read what is left for a
      // moment, then stop reading, so the end is reported and close() returns
      await child.drain();
      this.#fireClose();
      await child.reapTree();
    })();
    return Promise.resolve();
  }

  /** Writes one message line. @throws {TransportError} when the server's stdin is closed. */
  async send(message: JSONRPCMessage): Promise<void> {
    const w = this.#child?.stdin;
    if (!w || this.#child?.exitStatus || this.#closing) {
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
    await child.stop(true);
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
    const reason = this.#child?.exitReason();
    if (reason === undefined) return undefined;
    return this.#killReason ?? reason;
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
    const tail = (this.#child?.stderrTail ?? []).filter((l) => l.trim() !== "");
    if (tail.length > 0) parts.push(`stderr: ${tail.slice(-3).join(" | ")}`);
    return parts.join("; ");
  }

  #fireClose(): void {
    if (this.#closedFired) return;
    this.#closedFired = true;
    this.onclose?.();
  }

  /**
   * An answer line past `maxAnswerBytes`: when its first bytes carry a response id, the request
   * gets an {@linkcode ANSWER_TOO_LARGE} error now and the rest of the line is skipped.
   */
  #tooLarge(head: string, bytes: number): boolean {
    const m = /^\s*\{[^{]*?"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")/.exec(head);
    if (!m || !/"(result|error)"\s*:/.test(head)) return false;
    const id = JSON.parse(m[1]) as string | number;
    try {
      this.onmessage?.({
        jsonrpc: "2.0",
        id,
        error: {
          code: ANSWER_TOO_LARGE,
          message: `the answer is more than ${bytes} bytes, not read to its end`,
          data: { sizeBytes: bytes, limitBytes: this.#opts.maxAnswerBytes },
        },
      } as unknown as JSONRPCMessage);
    } catch (err) {
      this.onerror?.(err as Error);
    }
    return true;
  }

  /**
   * A stdout line that is not UTF-8: when it answers a request (a response id in it), the request
   * gets an error now instead of a changed answer; anything else is skipped with a warning.
   */
  #notUtf8(text: string, at: number): void {
    const shown = text.length > 200 ? text.slice(0, 197) + "..." : text;
    let msg: unknown;
    try {
      msg = JSON.parse(text); // U+FFFD in place of the bad bytes: only its id is used
    } catch {
      msg = undefined;
    }
    const id = isJsonObject(msg as never) ? (msg as Record<string, unknown>).id : undefined;
    const answer = isJsonObject(msg as never) &&
      ("result" in (msg as object) || "error" in (msg as object));
    if (answer && (typeof id === "string" || typeof id === "number")) {
      this.#opts.log.warn(
        `an answer on stdout is not UTF-8 (byte ${at}), not used: ${JSON.stringify(shown)}`,
      );
      try {
        this.onmessage?.({
          jsonrpc: "2.0",
          id,
          error: {
            code: INTERNAL_ERROR,
            message: `the answer is not UTF-8 text (an invalid byte at offset ${at}); its data ` +
              `was not used: MCP servers must write UTF-8`,
          },
        } as unknown as JSONRPCMessage);
      } catch (err) {
        this.onerror?.(err as Error);
      }
      return;
    }
    this.#junk.push(shown);
    if (this.#junk.length > JUNK_KEPT) this.#junk.shift();
    this.#opts.log.warn(
      `stdout line that is not UTF-8 ignored (byte ${at}): ${JSON.stringify(shown)}`,
    );
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
}
