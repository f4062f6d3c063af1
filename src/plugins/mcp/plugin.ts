/**
 * `type: mcp`: the tools of an MCP server as components (stepflow 0.8 §5), on the official MCP
 * SDK client. Tool `T` is component `/T` (so `/fs/T` through route `/fs/{*component}`).
 *
 * - Servers: `command`/`args`/`env` (stdio; the child inherits the engine's environment plus
 *   `env`, cwd = working directory, as 0.8) or, extension, `url` (Streamable HTTP).
 * - Calls: the step input is the tool's `arguments`, checked against its `inputSchema` first.
 *   Output: the result's `content` (0.8), or per the `output` setting (see docs/mcp.md).
 * - Failures are `failed` step results, so `onError` applies (0.8 ignored `isError` and aborted the
 *   run on most faults): see {@linkcode MCP_ERROR_CODES}. Calling a tool the server does not have
 *   throws {@linkcode PluginError}.
 * - Many calls run at once on one server (0.8: one at a time); each has a timeout that progress
 *   notifications extend; a timed-out or aborted call is cancelled with `notifications/cancelled`.
 * - A server that cannot start, exits or drops the connection fails the affected steps; the next
 *   call starts it again. `close()` stops every server process.
 *
 * One concept, kept whole (just under 500 lines): an MCP server's life (start, restart, calls,
 * results, close) as the plugin sees it; the session is connection.ts, the process
 * stdio_transport.ts on the supervisor.
 * @module
 */
import { rethrowIfPermission } from "../../core/permission_hint.ts";
import type { CallToolResult, McpError } from "./_sdk.ts";
import { registerPluginType } from "../registry.ts";
import type { ComponentInfo, ExecuteContext, Plugin, PluginInitContext } from "../plugin.ts";
import type { McpPluginConfig, PluginConfig } from "../../config/model.ts";
import { failed, type FlowResult, success } from "../../core/flow_result.ts";
import { isJsonObject, type JsonValue } from "../../json/exact_json.ts";
import { describeError, PluginError, TransportError } from "../../errors.ts";
import { type Logger, logger } from "../../log.ts";
import type { McpConnection, McpEndpoint } from "./connection.ts";
import { abortable, deadline, settlesWithin } from "../../core/abort.ts";
import { substituteEnv } from "../../config/env.ts";
import { parseDuration } from "../../core/duration.ts";
import { Limiter, type Release } from "../../core/limiter.ts";
import {
  CANCELLED,
  COMPONENT_FAILED,
  engineFailure,
  outputTooLarge,
  TIMEOUT,
  TRANSPORT_FAILED,
} from "../../core/error_codes.ts";
import { ANSWER_TOO_LARGE, VALIDATION_ERROR } from "../../core/rpc_error_codes.ts";

/**
 * The MCP SDK (and ajv, which checks tool schemas) load with the first MCP connection: commands
 * and runs without an MCP plugin never load them (they were 40% of the CLI's module loading;
 * issue 17, cold start).
 */
let sdkModules:
  | Promise<[typeof import("./_sdk.ts"), typeof import("./connection.ts")]>
  | undefined;
let sdk: typeof import("./_sdk.ts") | undefined;

function loadSdk(): Promise<[typeof import("./_sdk.ts"), typeof import("./connection.ts")]> {
  return sdkModules ??= Promise.all([import("./_sdk.ts"), import("./connection.ts")]).then(
    (m) => {
      sdk = m[0];
      return m;
    },
  );
}

/** The SDK's `McpError` (false before the SDK is loaded: no call can have failed with it). */
function isMcpError(err: unknown): err is McpError {
  return sdk?.isMcpError(err) ?? false;
}

/** The SDK's own request timeout (see _sdk.ts). */
function isSdkTimeout(err: unknown): boolean {
  return sdk?.isSdkTimeout(err) ?? false;
}

/**
 * Default timeout of one tool call in ms, restarted by each progress notification
 * (stepflow 0.8: 30 s to read each response line). The start handshake gets the plugin's
 * timeout, but never less than this.
 */
export const DEFAULT_MCP_TIMEOUT_MS = 30_000;

/**
 * Error codes of failed MCP steps (`error.code`), from the engine's table
 * (src/core/error_codes.ts, docs/error-handling.md), so `onError: retry` treats them by kind.
 */
export const MCP_ERROR_CODES = {
  /** The step input does not match the tool's `inputSchema` (the tool was not called). */
  invalidInput: VALIDATION_ERROR,
  /** The call was aborted by the engine (run cancelled): `data.kind: "CANCELLED"`. */
  cancelled: CANCELLED,
  /**
   * The tool returned `isError: true`, or the server answered `tools/call` with a JSON-RPC error
   * (stepflow 0.8's code for `Tool 'T' execution failed`).
   */
  toolError: COMPONENT_FAILED,
  /** The server could not be started, exited, or its connection failed. */
  unavailable: TRANSPORT_FAILED,
  /** No response (nor progress) within the call's timeout; the call was cancelled. */
  timeout: TIMEOUT,
} as const;

/** What a step gets from a successful tool result (plugin setting `output`). */
export type McpOutputMode = "content" | "structured" | "result";

/** The MCP plugin. Built by the registry from a `type: mcp` config entry. */
export class McpPlugin implements Plugin {
  readonly type = "mcp";
  /** Timeouts restart on progress and cancel on the server; `maxConcurrency` is its own. */
  readonly enforces = { timeout: true, concurrency: true } as const;
  readonly name: string;
  readonly #config: McpPluginConfig;
  readonly #timeoutMs: number;
  /** Aborted by close(): stops servers still starting. */
  readonly #closing = new AbortController();
  readonly #output: McpOutputMode;
  readonly #limiter?: Limiter;
  #log: Logger;
  #workingDirectory = ".";
  /** The engine's output size limit (bytes): a longer answer is not read to its end. */
  #maxOutputBytes: number | undefined;
  #current?: Promise<McpConnection>;
  /** The started connection, while it is open (the fast path of `execute`). */
  #live: McpConnection | undefined;
  #open = new Set<McpConnection>();
  #starting = new Set<Promise<unknown>>();
  #retiring = new Set<Promise<void>>();
  #closed = false;
  #starts = 0;
  /**
   * Warnings of the servers' starts already logged: a failing server is started again at the
   * next call, and says the same things (junk on stdout, unchecked schemas) each time.
   */
  #warned = new Set<string>();

  /**
   * @throws {PluginError} when the config has neither or both of `command` and `url`, or a bad
   * `timeout`.
   */
  constructor(name: string, config: McpPluginConfig) {
    this.name = name;
    this.#config = config;
    this.#log = logger(`mcp:${name}`);
    if ((config.command === undefined) === (config.url === undefined)) {
      throw new PluginError(
        `MCP plugin '${name}' needs exactly one of \`command\` (stdio server) or \`url\` ` +
          `(Streamable HTTP server)`,
      );
    }
    try {
      this.#timeoutMs = config.timeout === undefined
        ? DEFAULT_MCP_TIMEOUT_MS
        : parseDuration(config.timeout, { what: `plugins.${name}.timeout` });
    } catch (err) {
      throw new PluginError(`MCP plugin '${name}': ${(err as Error).message}`, [], { cause: err });
    }
    this.#output = config.output ?? "content";
    if (config.maxConcurrency) this.#limiter = new Limiter(config.maxConcurrency);
  }

  /**
   * Starts the server and lists its tools (as 0.8 does at engine start). A server that cannot
   * start is logged, not thrown: its steps fail, and the next call tries again. A missing Deno
   * permission is thrown: nothing would fix it on a later call, and the CLI turns it into one
   * line naming the flag.
   */
  async init(ctx: PluginInitContext): Promise<void> {
    this.#workingDirectory = ctx.workingDirectory;
    this.#maxOutputBytes = ctx.maxOutputBytes;
    this.#log = ctx.log;
    try {
      await this.#connection();
    } catch (err) {
      rethrowIfPermission(err);
      if (!this.#closed) this.#onceLog().warn(this.#startFailure(err));
    }
  }

  /**
   * Every tool as a component `/T`, with its description and input schema.
   * @throws {PluginError} when the server cannot be started or listed.
   */
  async listComponents(): Promise<ComponentInfo[]> {
    let conn: McpConnection;
    try {
      conn = await this.#connection();
    } catch (err) {
      const message = this.#startFailure(err);
      throw new PluginError(message, [], { cause: err, reported: this.#warned.has(message) });
    }
    return [...conn.tools.values()].map(({ tool }) => {
      const info: ComponentInfo = {
        component: `/${tool.name}`,
        input_schema: tool.inputSchema as JsonValue,
        output_schema: this.#outputSchema(tool.outputSchema as JsonValue | undefined),
      };
      const description = tool.description ?? tool.title;
      if (description !== undefined) info.description = description;
      return info;
    });
  }

  /**
   * Calls the tool named by the last path segment of `component` (stepflow 0.8) with `input` as
   * its arguments. Failures come back as `failed` results with {@linkcode MCP_ERROR_CODES}.
   * @throws {PluginError} when the server has no such tool.
   */
  async execute(component: string, input: JsonValue, ctx: ExecuteContext): Promise<FlowResult> {
    const tool = component.slice(component.lastIndexOf("/") + 1);
    let release: Release | undefined;
    try {
      if (this.#limiter) release = await this.#limiter.acquire(ctx.signal);
    } catch {
      return this.#cancelled(tool, ctx.signal); // aborted while waiting for a slot
    }
    try {
      if (ctx.signal.aborted) return this.#cancelled(tool, ctx.signal);
      const timeout = ctx.timeoutMs ?? this.#timeoutMs;
      // The usual case, a live connection, costs no timer, listener or extra await.
      let conn = this.#live !== undefined && !this.#live.closed ? this.#live : undefined;
      if (!conn) {
        try {
          // A server that does not answer its handshake holds the step no longer than its timeout,
          // and not past a cancellation (the start goes on in the background for the next call).
          // Without an explicit step/plugin timeout, the start keeps its own (>= 30 s) limit.
          const waited = await waitFor(
            this.#connection(),
            ctx.signal,
            ctx.timeoutMs ?? (this.#config.timeout === undefined ? undefined : this.#timeoutMs),
          );
          if (waited === "aborted") return this.#cancelled(tool, ctx.signal);
          if (waited === "timeout") {
            return engineFailure(
              "TIMEOUT",
              `Step '${ctx.stepId}': tool '${tool}' of MCP plugin '${this.name}' timed out after ${timeout} ms: the server ${this.#where()} has not finished starting`,
            );
          }
          conn = waited;
        } catch (err) {
          return engineFailure("TRANSPORT_FAILED", this.#startFailure(err));
        }
      }
      const entry = conn.tools.get(tool);
      if (!entry) {
        throw new PluginError(
          `MCP plugin '${this.name}' has no tool '${tool}' (component '${component}'); its tools: ${
            [...conn.tools.keys()].join(", ") || "(none)"
          }`,
        );
      }
      const problem = entry.checkInput(input) ??
        (isJsonObject(input) ? undefined : "the input must be an object (the tool's arguments)");
      if (problem) {
        return failed(
          MCP_ERROR_CODES.invalidInput,
          `Input of tool '${tool}' (MCP plugin '${this.name}') does not match its inputSchema: ${problem}`,
        );
      }
      // The SDK never removes the abort listener it adds to a request's signal: give it a signal
      // of its own per call, so a long-lived step or run signal does not collect listeners.
      const call = new AbortController();
      const onAbort = () => call.abort(ctx.signal.reason);
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      try {
        const result = await conn.client.callTool(
          { name: tool, arguments: input as Record<string, unknown> },
          undefined,
          { signal: call.signal, timeout, resetTimeoutOnProgress: true, onprogress: noProgress },
        ) as CallToolResult;
        return this.#toFlowResult(tool, result);
      } catch (err) {
        return await this.#callFailure(tool, conn, err, ctx, timeout);
      } finally {
        ctx.signal.removeEventListener("abort", onAbort);
      }
    } finally {
      release?.();
    }
  }

  /** Stops every server process and HTTP session of this plugin. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#current = undefined;
    this.#live = undefined;
    // a server still in its handshake is stopped now, not waited for (up to its start timeout)
    this.#closing.abort(new TransportError("the plugin is closing"));
    await Promise.allSettled([...this.#starting]);
    await Promise.allSettled([...this.#open].map((c) => c.close()));
    await Promise.allSettled([...this.#retiring]);
    this.#open.clear();
  }

  /** The live connection, starting the server when there is none (or it died). */
  #connection(): Promise<McpConnection> {
    if (this.#closed) {
      return Promise.reject(new TransportError("the plugin is closed (engine shutting down)"));
    }
    const cur = this.#current;
    if (cur) return cur.then((c) => c.closed ? this.#restart(cur) : c);
    return this.#restart(undefined);
  }

  #restart(stale: Promise<McpConnection> | undefined): Promise<McpConnection> {
    if (this.#current !== stale) return this.#connection(); // someone else restarted it
    let endpoint: McpEndpoint;
    try {
      endpoint = this.#endpoint();
    } catch (err) {
      return Promise.reject(err);
    }
    const n = ++this.#starts;
    if (n > 1) this.#log.info(`starting the MCP server again (start #${n})`);
    const p = loadSdk().then(([, c]) =>
      c.McpConnection.open(endpoint, this.#onceLog(), this.#startTimeoutMs(), this.#closing.signal)
    );
    this.#current = p;
    this.#starting.add(p);
    p.then((conn) => {
      if (this.#closed) {
        this.#retire(conn); // started while the plugin was closing
        return;
      }
      this.#open.add(conn);
      this.#live = conn;
      conn.whenClosed().then(() => {
        if (this.#live === conn) this.#live = undefined;
        if (this.#closed) return;
        this.#retire(conn);
        this.#log.warn(
          `MCP server ${
            conn.endDescription() ?? "stopped"
          }; it will be started again on the next call`,
        );
      });
    }, () => {
      if (this.#current === p) this.#current = undefined;
    }).finally(() => this.#starting.delete(p));
    return p;
  }

  /**
   * Where the server is; stdio `args` and `env` values get env substitution (0.8 §2.5, with the
   * shell meaning of `${VAR:-default}`).
   * @throws {TransportError} naming an unset variable.
   */
  /** The plugin's logger, each distinct warning once (up to 1,000 remembered). */
  #onceLog(): Logger {
    const log = this.#log;
    const warned = this.#warned;
    return {
      error: (m) => log.error(m),
      warn: (m) => {
        if (warned.has(m)) return;
        if (warned.size < 1000) warned.add(m);
        log.warn(m);
      },
      info: (m) => log.info(m),
      debug: (m) => log.debug(m),
      enabled: (level) => log.enabled(level),
    };
  }

  /** The start handshake gets the call timeout, but never less than the 30 s default. */
  #startTimeoutMs(): number {
    return Math.max(this.#timeoutMs, DEFAULT_MCP_TIMEOUT_MS);
  }

  /** Closes `conn` (reaps the process, drains its pipes) in the background; close() waits. */
  #retire(conn: McpConnection): void {
    const reaped = conn.close().finally(() => {
      this.#open.delete(conn);
      this.#retiring.delete(reaped);
    });
    this.#retiring.add(reaped);
  }

  #endpoint(): McpEndpoint {
    const c = this.#config;
    // room for the envelope around a result at the limit, as for step services
    const maxAnswerBytes = this.#maxOutputBytes === undefined
      ? undefined
      : this.#maxOutputBytes + 64 * 1024;
    if (c.url !== undefined) {
      return maxAnswerBytes === undefined
        ? { kind: "http", url: c.url }
        : { kind: "http", url: c.url, maxAnswerBytes };
    }
    let command = c.command!;
    if (command.includes("/") && !command.startsWith("/")) {
      command = `${this.#workingDirectory.replace(/\/$/, "")}/${command}`;
    }
    const endpoint: McpEndpoint = {
      kind: "stdio",
      command,
      args: c.args.map(substitute),
      env: Object.fromEntries(Object.entries(c.env).map(([k, v]) => [k, substitute(v)])),
      cwd: this.#workingDirectory,
    };
    if (maxAnswerBytes !== undefined) endpoint.maxAnswerBytes = maxAnswerBytes;
    return endpoint;
  }

  #where(): string {
    const c = this.#config;
    return c.url !== undefined ? `at ${c.url}` : `'${[c.command, ...c.args].join(" ")}'`;
  }

  #startFailure(err: unknown): string {
    const what = err instanceof Error ? err.message : String(err);
    return `MCP plugin '${this.name}': server ${this.#where()} failed to start: ${what}`;
  }

  async #callFailure(
    tool: string,
    conn: McpConnection,
    err: unknown,
    ctx: ExecuteContext,
    timeout: number,
  ): Promise<FlowResult> {
    const signal = ctx.signal;
    if (signal.aborted) return this.#cancelled(tool, signal);
    const head = `Step '${ctx.stepId}': tool '${tool}' of MCP plugin '${this.name}'`;
    if (isSdkTimeout(err)) {
      const hints = conn.diagnostics();
      return engineFailure(
        "TIMEOUT",
        `${head} timed out after ${timeout} ms without a response or progress; the call was ` +
          `cancelled${hints ? `; ${hints}` : ""}`,
      );
    }
    // -32000 (the SDK's ConnectionClosed) is also a code servers use for their own errors: only a
    // closed connection says the server is gone.
    if (err instanceof TransportError || conn.closed) {
      await settlesWithin(conn.whenClosed(), 2000);
      const end = conn.endDescription() ?? (err as Error).message;
      return engineFailure(
        "TRANSPORT_FAILED",
        `${head} failed: the server ${this.#where()} ${end}`,
      );
    }
    if (isMcpError(err) && err.code === ANSWER_TOO_LARGE) {
      const size = (err.data as { sizeBytes?: number } | undefined)?.sizeBytes ?? 0;
      return outputTooLarge(ctx.stepId, {
        sizeBytes: size,
        limitBytes: this.#maxOutputBytes ?? size,
        atLeast: true,
        via: `tool '${tool}' of MCP plugin '${this.name}' sent an answer of more than ${size} ` +
          `bytes, not read to its end`,
      });
    }
    const issues = schemaIssues(err);
    if (issues !== undefined) {
      return failed(MCP_ERROR_CODES.toolError, `${head} returned an invalid result: ${issues}`);
    }
    if (!isMcpError(err)) {
      // fetch failures, HTTP errors (e.g. 404 for a session the server forgot), a closed pipe:
      // this session is unusable; the next call opens a new one.
      conn.invalidate();
      return engineFailure(
        "TRANSPORT_FAILED",
        `${head} failed: the server ${this.#where()} could not be reached: ${describeError(err)}`,
      );
    }
    return failed(
      MCP_ERROR_CODES.toolError,
      `Tool '${tool}' execution failed: ${err.message} (MCP plugin '${this.name}')`,
      { mcpCode: err.code },
    );
  }

  #cancelled(tool: string, signal: AbortSignal): FlowResult {
    const reason = signal.reason;
    const timedOut = reason instanceof DOMException && reason.name === "TimeoutError";
    const why = reason instanceof Error && !timedOut ? `: ${reason.message}` : "";
    return engineFailure(
      timedOut ? "TIMEOUT" : "CANCELLED",
      `Tool '${tool}' of MCP plugin '${this.name}' was ${
        timedOut ? "stopped by the step timeout" : "cancelled"
      }${why}`,
    );
  }

  #toFlowResult(tool: string, result: CallToolResult): FlowResult {
    const content = (result.content ?? []) as JsonValue[];
    if (result.isError) {
      const text = content
        .map((c) => isJsonObject(c) && c.type === "text" ? String(c.text) : undefined)
        .filter((t) => t !== undefined).join("\n");
      const data: Record<string, JsonValue> = { content };
      if (result.structuredContent !== undefined) {
        data.structuredContent = result.structuredContent as JsonValue;
      }
      return failed(
        MCP_ERROR_CODES.toolError,
        text || `Tool '${tool}' returned an error (MCP plugin '${this.name}')`,
        data,
      );
    }
    const structured = result.structuredContent as JsonValue | undefined;
    switch (this.#output) {
      case "structured":
        return success(structured ?? content);
      case "result":
        return success(
          structured === undefined ? { content } : { content, structuredContent: structured },
        );
      default:
        // stepflow 0.8: `content`, or the whole result when it has none.
        return success(result.content !== undefined ? content : result as unknown as JsonValue);
    }
  }

  #outputSchema(toolOutput: JsonValue | undefined): JsonValue {
    const contentSchema: JsonValue = { type: "array", items: { type: "object" } };
    switch (this.#output) {
      case "structured":
        return toolOutput ?? contentSchema;
      case "result": {
        const props: Record<string, JsonValue> = { content: contentSchema };
        if (toolOutput !== undefined) props.structuredContent = toolOutput;
        return { type: "object", properties: props, required: ["content"] };
      }
      default:
        return contentSchema;
    }
  }
}

/** Env substitution against the engine's environment. @throws {TransportError} */
function substitute(text: string): string {
  try {
    return substituteEnv(text, (name) => Deno.env.get(name));
  } catch (err) {
    throw new TransportError((err as Error).message, { cause: err });
  }
}

/**
 * The SDK rejects a reply that breaks the MCP result schema with a zod error (`issues`): its
 * issues as `path: message` lines, or undefined for any other error.
 */
function schemaIssues(err: unknown): string | undefined {
  const issues = (err as { issues?: unknown })?.issues;
  if (!Array.isArray(issues)) return undefined;
  return issues.map((i: { path?: unknown[]; message?: string }) =>
    `${(i.path ?? []).join(".") || "(result)"}: ${i.message ?? "invalid"}`
  ).join("; ");
}

/** Progress only restarts the call's timeout (an `onprogress` makes the SDK ask for it). */
function noProgress(): void {}

registerPluginType("mcp", (name: string, config: PluginConfig) => {
  if (config.type !== "mcp") throw new PluginError(`plugin '${name}' is not of type mcp`);
  return new McpPlugin(name, config);
});

/**
 * `p`'s value, or "aborted" when `signal` aborts first, or "timeout" after `ms` (if given); rejects as `p`
 * does. The timer and the listener are always removed.
 */
async function waitFor<T>(
  p: Promise<T>,
  signal: AbortSignal,
  ms: number | undefined,
): Promise<T | "aborted" | "timeout"> {
  const TIMED_OUT = Symbol("timeout");
  const limit = ms === undefined ? undefined : deadline(ms, () => TIMED_OUT);
  try {
    return await abortable(p, [signal, limit?.signal]);
  } catch (e) {
    if (e === TIMED_OUT) return "timeout";
    if (signal.aborted && e === signal.reason) return "aborted";
    throw e;
  } finally {
    limit?.dispose();
  }
}
