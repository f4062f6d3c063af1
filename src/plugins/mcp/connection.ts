/**
 * One live session with an MCP server: the SDK `Client` on a stdio or Streamable HTTP transport,
 * after the handshake and `tools/list` (all pages), with each tool's input check compiled.
 * A connection is used until its transport closes; the plugin then opens a new one.
 * @module
 */
import {
  Client,
  ErrorCode,
  isMcpError,
  isSdkTimeout,
  type StreamableHttpTransport,
  streamableHttpTransport,
  type Tool,
  type Transport,
} from "./_sdk.ts";
import { DEFAULT_MAX_LINE_BYTES, StdioTransport } from "./stdio_transport.ts";
import { boundedFetch } from "./http_fetch.ts";
import { settlesWithin } from "../../core/abort.ts";
import { compileSchemaCheck, mcpJsonSchemaValidator, type SchemaCheck } from "./schema_check.ts";
import type { Logger } from "../../log.ts";
import { TransportError } from "../../errors.ts";

/** The client identity sent in `initialize`. */
export const CLIENT_INFO = { name: "stepflow", version: "0.1.0" };

/** A tool as the plugin keeps it. */
export interface ToolEntry {
  tool: Tool;
  /** Checks a step input against the tool's `inputSchema`. */
  checkInput: SchemaCheck;
}

/** Where the server is. */
export type McpEndpoint =
  | {
    kind: "stdio";
    command: string;
    args: string[];
    env: Record<string, string>;
    cwd: string;
    closeGraceMs?: number;
    /** Largest answer read, bytes (the output size limit + room for the envelope). */
    maxAnswerBytes?: number;
  }
  | {
    kind: "http";
    url: string;
    /**
     * Largest JSON answer or SSE event read, bytes (the output size limit + room for the
     * envelope). @default DEFAULT_MAX_LINE_BYTES (as stdio lines)
     */
    maxAnswerBytes?: number;
  };

/** A connected MCP session. Create with {@linkcode McpConnection.open}. */
export class McpConnection {
  readonly client: Client;
  readonly tools: Map<string, ToolEntry>;
  readonly #transport: Transport;
  readonly #http: boolean;
  #closed = false;
  #closeWaiters: (() => void)[] = [];
  #closing?: Promise<void>;

  private constructor(client: Client, transport: Transport, tools: Map<string, ToolEntry>) {
    this.client = client;
    this.#transport = transport;
    this.#http = !(transport instanceof StdioTransport);
    this.tools = tools;
  }

  /** True once the transport has closed (server exited, connection dropped, or `close()`). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Why the session ended, when known (stdio: exit code or signal, stderr tail, junk lines).
   * Undefined while the server runs.
   */
  endDescription(): string | undefined {
    return this.#transport instanceof StdioTransport
      ? this.#transport.exitDescription()
      : (this.#closed ? "closed the connection" : undefined);
  }

  /** What the server printed that may explain a failure, while it still runs (stdio only). */
  diagnostics(): string {
    return this.#transport instanceof StdioTransport ? this.#transport.diagnostics() : "";
  }

  /**
   * Starts (stdio) or reaches (HTTP) the server, runs `initialize`/`initialized` and lists its
   * tools. `timeoutMs` bounds the handshake and each `tools/list` page; `signal` abandons the
   * start (the plugin is closing), stopping the server.
   * @throws {TransportError} saying what went wrong in words a user can act on (spawn error,
   * exit code during the handshake with stderr and junk lines, handshake timeout, HTTP error);
   * the transport is closed first, so no process is left behind.
   */
  static async open(
    endpoint: McpEndpoint,
    log: Logger,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<McpConnection> {
    const transport: Transport = endpoint.kind === "stdio"
      ? new StdioTransport({ ...endpoint, log })
      : streamableHttpTransport(
        new URL(endpoint.url),
        boundedFetch(endpoint.maxAnswerBytes ?? DEFAULT_MAX_LINE_BYTES),
      );
    const client = new Client(CLIENT_INFO, {
      capabilities: {},
      jsonSchemaValidator: mcpJsonSchemaValidator,
    });
    let closed = false;
    let conn: McpConnection | undefined;
    client.onclose = () => {
      closed = true;
      if (conn) conn.#markClosed();
    };
    client.onerror = (err: Error) => log.debug(`client error: ${err.message}`);
    /** The request in flight, for an answer that breaks the MCP schema. */
    let phase = "initialize";
    try {
      await client.connect(transport, { timeout: timeoutMs, signal });
      phase = "tools/list";
      const tools = new Map<string, ToolEntry>();
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor ? { cursor } : undefined, {
          timeout: timeoutMs,
          signal,
        });
        for (const tool of page.tools) {
          const { check, compileError } = compileSchemaCheck(tool.inputSchema);
          if (compileError) {
            log.warn(`tool '${tool.name}': inputSchema not checked (${compileError})`);
          }
          tools.set(tool.name, { tool, checkInput: check });
        }
        cursor = page.nextCursor;
      } while (cursor);
      conn = new McpConnection(client, transport, tools);
      if (closed) conn.#markClosed();
      return conn;
    } catch (err) {
      // Read how the server ended before our own close() stops it.
      const end = transport instanceof StdioTransport ? transport.exitReason() : undefined;
      const hints = transport instanceof StdioTransport ? transport.diagnostics() : "";
      await client.close().catch(() => {});
      await transport.close().catch(() => {});
      throw startError(err, end, hints, timeoutMs, phase);
    }
  }

  /** Marks the session unusable after a transport failure (its owner then closes it). */
  invalidate(): void {
    this.#markClosed();
  }

  /** Resolves when the session has ended. */
  whenClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((r) => this.#closeWaiters.push(r));
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#closeWaiters.splice(0)) w();
  }

  /**
   * Ends the session: HTTP sessions are terminated (best effort), stdio servers stopped.
   * Idempotent: later calls return the first call's promise.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    const t = this.#transport;
    if (this.#http && !this.#closed) {
      await settlesWithin(
        (t as StreamableHttpTransport).terminateSession().catch(() => {}),
        1000,
      );
    }
    await this.client.close().catch(() => {});
    await t.close().catch(() => {});
    this.#markClosed();
  }
}

/** A {@linkcode TransportError} saying why a start failed, in words a user can act on. */
function startError(
  err: unknown,
  end: string | undefined,
  hints: string,
  timeoutMs: number,
  phase: string,
) {
  if (err instanceof TransportError && !end) return err;
  let what: string;
  // the SDK's zod error: its message is the issues as multi-line JSON
  const issues = (err as { issues?: unknown })?.issues;
  if (end) what = `${end} during the handshake${hints ? `; ${hints}` : ""}`;
  else if (isSdkTimeout(err)) {
    what = `did not answer the handshake within ${timeoutMs} ms${hints ? `; ${hints}` : ""}`;
  } else if (isMcpError(err) && err.code === ErrorCode.ConnectionClosed) {
    what = `closed the connection during the handshake${hints ? `; ${hints}` : ""}`;
  } else if (Array.isArray(issues)) {
    what = `its answer to '${phase}' does not fit the MCP schema: ${
      issues.map((i: { path?: unknown[]; message?: string }) =>
        `${(i.path ?? []).join(".") || "(result)"}: ${i.message ?? "invalid"}`
      ).join("; ")
    }`;
  } else {
    what = err instanceof Error ? err.message : String(err);
    if (err instanceof Error && err.cause instanceof Error && !what.includes(err.cause.message)) {
      what += ` (${err.cause.message})`;
    }
    return new TransportError(what, { cause: err });
  }
  // said in words: the SDK's error (e.g. "MCP error -32000: Connection closed") would only be
  // appended to them by describeError
  return new TransportError(what);
}
