/**
 * The context a component gets when it declares a second parameter: who is calling (run, flow,
 * step, attempt) and the engine's services (blobs, nested flows, batches), reached through
 * worker→engine JSON-RPC requests (stepflow 0.8 §3.2).
 * @module
 */

/** Observability ids of the execute call (snake_case, as on the wire). */
export interface Observability {
  run_id?: string;
  flow_id?: string;
  step_id?: string;
  trace_id?: string;
  span_id?: string;
  /** Extension: the engine's idempotency key of this step execution (see Context.idempotencyKey). */
  idempotency_key?: string;
  [key: string]: unknown;
}

/** A step or flow outcome (stepflow 0.8 FlowResult). */
export type FlowResult =
  | { outcome: "success"; result: unknown }
  | { outcome: "skipped"; reason?: string }
  | { outcome: "failed"; error: { code: number; message: string; data?: unknown } };

/** Sends a request to the engine and resolves with its result. */
export type EngineCall = (method: string, params: Record<string, unknown>) => Promise<unknown>;

/** What a component can ask of the engine while it runs. */
export class Context {
  readonly #call: EngineCall;
  /** Observability ids of this call, passed along with each engine request. */
  readonly observability: Observability;
  /** 1-based attempt number (2 after the engine restarted a crashed worker, or on retries). */
  readonly attempt: number;

  constructor(call: EngineCall, observability: Observability, attempt: number) {
    this.#call = call;
    this.observability = observability;
    this.attempt = attempt;
  }

  /** The run's id (hyphenated UUID). */
  get runId(): string | undefined {
    return this.observability.run_id;
  }
  /** The flow's id (blob id). */
  get flowId(): string | undefined {
    return this.observability.flow_id;
  }
  /** The step being executed. */
  get stepId(): string | undefined {
    return this.observability.step_id;
  }
  /**
   * A key that is the same for every attempt of this step in this run — retries, a restarted
   * worker, and the run resumed after the engine crashed (issue 12) — and different for any other
   * step or run: use it to make a side effect happen once, e.g. as the `Idempotency-Key` header
   * of a payment or e-mail API, or a unique key in your database.
   *
   * The engine's own key when it sends one (`observability.idempotency_key`, which also tells
   * apart the items of a `/map`), else `<run_id>/<step_id>` (a nested run — a `/map` item — has
   * its own run id). Undefined when the engine sent neither (a stepflow 0.8 engine always sends
   * both).
   */
  get idempotencyKey(): string | undefined {
    const own = this.observability.idempotency_key;
    if (typeof own === "string" && own !== "") return own;
    const { run_id: run, step_id: step } = this.observability;
    return run && step ? `${run}/${step}` : undefined;
  }

  /** Stores JSON data as a blob. @returns the blob id (64 hex). */
  async putBlob(data: unknown, blobType: "data" | "flow" = "data"): Promise<string> {
    const r = await this.#call("blobs/put", {
      data,
      blob_type: blobType,
      observability: this.observability,
    }) as { blob_id: string };
    return r.blob_id;
  }

  /** Reads a blob's data. @throws {EngineError} for an unknown id. */
  async getBlob(blobId: string): Promise<unknown> {
    const r = await this.#call("blobs/get", {
      blob_id: blobId,
      observability: this.observability,
    }) as { data: unknown };
    return r.data;
  }

  /**
   * Runs a flow as a nested run. `flow` is a flow object (stored first as a `flow` blob) or
   * the id of a stored flow.
   * @returns the nested run's FlowResult (success, skipped or failed: it does not throw for a
   *   failed run).
   */
  async evaluateFlow(
    flow: Record<string, unknown> | string,
    input: unknown,
    options: { overrides?: Record<string, unknown> } = {},
  ): Promise<FlowResult> {
    const flowId = typeof flow === "string" ? flow : await this.putBlob(flow, "flow");
    const r = await this.#call("flows/evaluate", {
      flow_id: flowId,
      input,
      ...(options.overrides ? { overrides: options.overrides } : {}),
      observability: this.observability,
    }) as { result: FlowResult };
    return r.result;
  }

  /** Metadata of the current flow and of a step (the current one by default). */
  async getMetadata(
    stepId: string | undefined = this.stepId,
  ): Promise<{ flow_metadata: Record<string, unknown>; step_metadata?: unknown }> {
    return await this.#call("flows/get_metadata", {
      flow_id: this.flowId,
      ...(stepId !== undefined ? { step_id: stepId } : {}),
      observability: this.observability,
    }) as { flow_metadata: Record<string, unknown>; step_metadata?: unknown };
  }

  /** Starts one run of a flow per input; returns at once. */
  async submitBatch(
    flow: Record<string, unknown> | string,
    inputs: unknown[],
    options: { maxConcurrency?: number; overrides?: Record<string, unknown> } = {},
  ): Promise<{ batch_id: string; total_runs: number }> {
    const flowId = typeof flow === "string" ? flow : await this.putBlob(flow, "flow");
    return await this.#call("flows/submit_batch", {
      flow_id: flowId,
      inputs,
      ...(options.maxConcurrency !== undefined ? { max_concurrency: options.maxConcurrency } : {}),
      ...(options.overrides ? { overrides: options.overrides } : {}),
      observability: this.observability,
    }) as { batch_id: string; total_runs: number };
  }

  /** A batch's status; `wait` waits until it finishes; `includeResults` adds each run's result. */
  async getBatch(
    batchId: string,
    options: { wait?: boolean; includeResults?: boolean } = {},
  ): Promise<{ details: Record<string, unknown>; outputs?: unknown[] | null }> {
    return await this.#call("flows/get_batch", {
      batch_id: batchId,
      wait: options.wait ?? false,
      include_results: options.includeResults ?? false,
      observability: this.observability,
    }) as { details: Record<string, unknown>; outputs?: unknown[] | null };
  }
}

/** The engine answered a context call with a JSON-RPC error. */
export class EngineError extends Error {
  override name = "EngineError";
  constructor(readonly code: number, message: string, readonly data?: unknown) {
    super(message);
  }
}
