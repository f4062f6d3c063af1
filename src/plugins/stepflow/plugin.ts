/**
 * The `stepflow` plugin type: components served by a step service (a worker process over
 * stdio, or an HTTP endpoint) speaking the Stepflow protocol (stepflow 0.8 §2.2, §3).
 *
 * Results (docs/protocol.md):
 * - `{output}` from `components/execute` → `{outcome: success, result: output}` (0.8);
 * - a JSON-RPC error → `{outcome: failed, error: {code, message, data?}}` with the worker's code
 *   and message, so the step's `onError` can handle it (0.8 aborts the run instead);
 * - a transport failure (crash, closed pipe, unreachable URL, HTTP 5xx) → failed with -32603 and
 *   a message naming the plugin, the exit code or URL. A crash during an execute call is
 *   retried once on the restarted worker with `attempt + 1` (0.8: `attempt: 2`).
 *
 * Extension config fields (stdio): `restartDelay` (default 1s), `maxRestartDelay` (30s),
 * `maxRestarts` (5), `closeGrace` (2s) — see docs/protocol.md.
 * @module
 */
import { describeError, OutputLimitError, ProtocolError, TransportError } from "../../errors.ts";
import { failed, type FlowResult, success } from "../../core/flow_result.ts";
import { isJsonObject, type JsonValue } from "../../json/exact_json.ts";
import type { Logger } from "../../log.ts";
import type { PluginConfig, StepflowPluginConfig } from "../../config/model.ts";
import { ExecuteParams, type RequestMessage } from "../../protocol/envelope.ts";
import { INTERNAL_ERROR, INVALID_PARAMS } from "../../core/rpc_error_codes.ts";
import type {
  ComponentInfo,
  EngineServices,
  ExecuteContext,
  Plugin,
  PluginInitContext,
} from "../plugin.ts";
import { registerPluginType } from "../registry.ts";
import { parseDuration } from "../../core/duration.ts";
import { outputTooDeep, outputTooLarge } from "../../core/error_codes.ts";
import { answerEngineCall } from "./engine_calls.ts";
import { ComponentInfoSchema } from "../../protocol/methods.ts";
import { deadline } from "../../core/abort.ts";
import { HttpWorker } from "./http.ts";
import { resolveCommand, substituteSpawn } from "./spawn.ts";
import { DEFAULT_CLOSE_GRACE_MS, DEFAULT_RESTART_POLICY, StdioWorker } from "./stdio.ts";
import { WorkerCrashError, type WorkerTransport } from "./transport.ts";
import { IdMap } from "../../core/id_map.ts";

/** A plugin whose components live in a step service. */
export class StepflowPlugin implements Plugin {
  readonly type = "stepflow";
  readonly #config: StepflowPluginConfig;
  #transport?: WorkerTransport;
  #engine?: EngineServices;
  #log?: Logger;
  /** Engine services of the runs with open execute calls (services are per run), by run id. */
  readonly #open = new IdMap<{ runId: string; engine: EngineServices; count: number }>();

  constructor(readonly name: string, config: StepflowPluginConfig) {
    this.#config = config;
  }

  /** Spawns (stdio) or contacts (http) the worker and does the handshake. @throws {TransportError} */
  async init(ctx: PluginInitContext): Promise<void> {
    this.#engine = ctx.engine;
    this.#log = ctx.log;
    const c = this.#config;
    const onRequest = async (req: RequestMessage) =>
      await answerEngineCall(req, this.#engineFor(req));
    if (c.transport === "http") {
      if (!c.url) throw new TransportError(`plugin '${this.name}': transport http needs a 'url'`);
      this.#transport = new HttpWorker({
        name: this.name,
        url: c.url,
        log: ctx.log,
        onRequest,
        maxOutputBytes: ctx.maxOutputBytes,
      });
    } else {
      if (!c.command) {
        throw new TransportError(`plugin '${this.name}': transport stdio needs a 'command'`);
      }
      const command = resolveCommand(c.command, ctx.workingDirectory);
      const { args, env } = substituteSpawn(this.name, c.args ?? [], c.env ?? {});
      this.#transport = new StdioWorker({
        name: this.name,
        command,
        args,
        env,
        cwd: ctx.workingDirectory,
        log: ctx.log,
        onRequest,
        restart: {
          initialDelayMs: ms(
            c.restartDelay,
            DEFAULT_RESTART_POLICY.initialDelayMs,
            `plugins.${this.name}.restartDelay`,
          ),
          maxDelayMs: ms(
            c.maxRestartDelay,
            DEFAULT_RESTART_POLICY.maxDelayMs,
            `plugins.${this.name}.maxRestartDelay`,
          ),
          maxRestarts: c.maxRestarts ?? DEFAULT_RESTART_POLICY.maxRestarts,
        },
        closeGraceMs: ms(c.closeGrace, DEFAULT_CLOSE_GRACE_MS, `plugins.${this.name}.closeGrace`),
        maxOutputBytes: ctx.maxOutputBytes,
      });
    }
    await this.#transport.start();
  }

  /**
   * `components/list`.
   * @throws {PluginError}-like {@linkcode TransportError} / {@linkcode ProtocolError} when the
   *   worker cannot list.
   */
  async listComponents(): Promise<ComponentInfo[]> {
    // bounded like `initialize`: a worker that never answers must not hang list-components
    const limitMs = ms(this.#config.timeout, LIST_TIMEOUT_MS, `plugins.${this.name}.timeout`) ||
      LIST_TIMEOUT_MS;
    const limit = deadline(
      limitMs,
      () =>
        new TransportError(
          `step service '${this.name}' did not answer 'components/list' within ${limitMs} ms`,
        ),
    );
    let r: JsonValue;
    try {
      r = await this.#t().request("components/list", {}, limit.signal);
    } finally {
      limit.dispose();
    }
    if (!isJsonObject(r) || !Array.isArray(r.components)) {
      throw new TransportError(
        `step service '${this.name}' answered components/list without a 'components' list`,
      );
    }
    // each entry by the protocol's schema; a bad entry is skipped, not the whole list
    const infos: ComponentInfo[] = [];
    for (const c of r.components) {
      const parsed = ComponentInfoSchema.safeParse(c);
      if (!parsed.success) continue;
      const p = parsed.data;
      const info: ComponentInfo = { component: p.component };
      if (typeof p.description === "string") info.description = p.description;
      if (p.input_schema !== undefined) info.input_schema = p.input_schema;
      if (p.output_schema !== undefined) info.output_schema = p.output_schema;
      infos.push(info);
    }
    if (infos.length < r.components.length) {
      this.#log?.warn(
        `step service '${this.name}': ignored ${
          r.components.length - infos.length
        } entries of components/list without a string 'component'`,
      );
    }
    return infos;
  }

  /**
   * `components/execute`; see the module doc for how answers map to results. Not an `async`
   * function: one `then` per call costs less than an async frame (issue 17: the hot path of a
   * map over a step service).
   */
  execute(component: string, input: JsonValue, ctx: ExecuteContext): Promise<FlowResult> {
    const observability = { run_id: ctx.runId, flow_id: ctx.flowId, step_id: ctx.stepId };
    const params = new ExecuteParams(component, input, ctx.attempt, observability);
    const open = this.#open.get(ctx.runId);
    if (open) open.count++;
    else this.#open.set(ctx.runId, { runId: ctx.runId, engine: ctx.engine, count: 1 });
    const answered = (result: JsonValue): FlowResult => {
      this.#closeOpen(ctx.runId);
      // the protocol's `{output: <any JSON>}` (METHODS["components/execute"].result), checked
      // by hand: a zod parse per call costs more than the rest of the answer's handling
      if (!isJsonObject(result) || !Object.hasOwn(result, "output")) {
        return failed(
          INTERNAL_ERROR,
          `step service '${this.name}' answered components/execute for ${component} without an 'output'`,
        );
      }
      return success(result.output);
    };
    const refused = (err: unknown): FlowResult => {
      this.#closeOpen(ctx.runId);
      return this.#failure(err, ctx);
    };
    return this.#request(params, ctx).then(answered, (err) => {
      if (!(err instanceof WorkerCrashError) || ctx.signal.aborted || ctx.engineRetries) {
        return refused(err);
      }
      // stepflow 0.8: a call that failed because the worker crashed is retried once (unless
      // the step's own retry policy does the retrying)
      this.#log?.warn(`${describeError(err)}; retrying step '${ctx.stepId}' once`);
      params.attempt = ctx.attempt + 1;
      return this.#request(params, ctx).then(answered, refused);
    });
  }

  /** One `components/execute` request (a synchronous throw becomes a rejection). */
  #request(params: ExecuteParams, ctx: ExecuteContext): Promise<JsonValue> {
    try {
      return this.#t().request("components/execute", params, ctx.signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** One call of run `runId` is over. */
  #closeOpen(runId: string): void {
    const e = this.#open.get(runId)!;
    if (--e.count === 0) this.#open.delete(runId);
  }

  /**
   * The result of a call that failed with `err`.
   * @throws the step's abort reason when its signal aborted (the caller reports the cause).
   */
  #failure(err: unknown, ctx: ExecuteContext): FlowResult {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (err instanceof OutputLimitError) {
      // 413, never retried: the same component would answer the same way
      return "limitDepth" in err.limit
        ? outputTooDeep(ctx.stepId, err.limit.limitDepth, `sent by step service '${this.name}'`)
        : outputTooLarge(ctx.stepId, { ...err.limit, atLeast: true, via: err.message });
    }
    if (err instanceof ProtocolError) {
      return failed(err.code, err.message, err.data as JsonValue | undefined);
    }
    return failed(INTERNAL_ERROR, describeError(err));
  }

  /** Closes the worker (stdio: closes stdin, waits, terminates its process group). */
  async close(): Promise<void> {
    await this.#transport?.close();
  }

  #t(): WorkerTransport {
    if (!this.#transport) throw new TransportError(`plugin '${this.name}' is not initialised`);
    return this.#transport;
  }

  /**
   * The engine services of the run a worker request belongs to: by its `observability.run_id`;
   * else, when only one run has calls open, that run's; else, for requests that start no run
   * (blobs, metadata, `flows/get_batch`), the plugin's (not tied to a run).
   * @throws {ProtocolError} -32602 for a request that starts nested runs (`flows/evaluate`,
   * `flows/submit_batch`) without a `run_id` of an open call while several runs have calls open,
   * or while none has (a worker's background thread after its execute answered): its runs would
   * belong to no run — not cancelled with anything, outside the nesting depth and run budget, so
   * a flow evaluating itself through the step service recursed without end (13,000 levels and
   * 430 MB in a minute). stepflow 0.8 accepts worker requests at any time (§3.4) but has no
   * nesting limits; docs/protocol.md has said "only while an execute call is open".
   */
  #engineFor(req: RequestMessage): EngineServices {
    const params = isJsonObject(req.params) ? req.params : undefined;
    const obs = params && isJsonObject(params.observability) ? params.observability : undefined;
    const hit = typeof obs?.run_id === "string" ? this.#open.get(obs.run_id) : undefined;
    if (hit) return hit.engine;
    if (this.#open.size === 1) return this.#open.values().next().value!.engine;
    if (req.method === "flows/evaluate" || req.method === "flows/submit_batch") {
      const given = typeof obs?.run_id === "string"
        ? `its observability.run_id ${JSON.stringify(obs.run_id.slice(0, 80))} has no call open`
        : "it has no params.observability.run_id";
      const open = this.#open.size === 0
        ? `no components/execute call is open on step service '${this.name}' (runs are started ` +
          `only for the call they are made for, while it is open)`
        : `${this.#open.size} runs have calls open on step service '${this.name}'`;
      throw new ProtocolError(
        INVALID_PARAMS,
        `${req.method}: cannot tell which run it belongs to: ${given}, and ${open}. Send the ` +
          `'observability' params of the components/execute call it is made for (the stepflow ` +
          `SDKs do)`,
      );
    }
    return this.#engine!;
  }
}

/** How long a worker may take to answer `components/list` without a plugin `timeout`, ms. */
const LIST_TIMEOUT_MS = 30_000;

function ms(value: number | string | undefined, dflt: number, what: string): number {
  if (value === undefined) return dflt;
  try {
    return parseDuration(value, { allowZero: true, what });
  } catch (err) {
    throw new TransportError((err as Error).message, { cause: err });
  }
}

registerPluginType(
  "stepflow",
  (name: string, config: PluginConfig) => new StepflowPlugin(name, config as StepflowPluginConfig),
);
