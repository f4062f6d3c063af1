/**
 * The engine services of one run (the worker→engine side of the protocol: blobs, nested flows,
 * batches), or of the engine when no run is given. Nested runs started through them are children
 * of the run: they follow its cancellation, count against its budget, and carry where they come
 * from (parent run, step, item) for a deterministic run key.
 * @module
 */
import type { FlowResult } from "../core/flow_result.ts";
import { describeError } from "../errors.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "../json/exact_json.ts";
import type { Flow } from "../flow/model.ts";
import type {
  BatchDetails,
  BatchOutputInfo,
  Blob,
  EngineServices,
  NestedRunOptions,
} from "../plugins/plugin.ts";
import type { StateStore } from "../state/store.ts";
import type { BatchManager } from "./batch.ts";
import { flowFromJson } from "./flow_id.ts";
import { CheckNotLoaded, withChecks } from "../core/lazy_check.ts";
import type { RunBudget } from "./limits.ts";
import type { Redactor } from "./secrets.ts";
import type { ResumeMode } from "./resume.ts";
import type { SignalWaits } from "./signal_wait.ts";

/** Run options the engine passes to the nested runs it starts. */
export interface NestedRunStart {
  overrides?: JsonValue;
  runId?: string;
  /** `runId` was made just now by the caller (see `InternalRunOptions.newRunId`). */
  newRunId?: boolean;
  parentRunId?: string;
  signal?: AbortSignal;
  /** Depth of the nested run (parent's + 1). */
  depth: number;
  /** The budget of the top-level run. */
  budget?: RunBudget;
  /** The parent's step that started the run, and the item index. */
  parentStepId?: string;
  item?: number;
  /** The secrets of the parent run (its nested runs redact them too). */
  secrets?: Redactor;
  /**
   * Set when the parent run is a resumed one: the nested run may exist already (found by its
   * key, then given or resumed instead of started again).
   */
  resumeMode?: ResumeMode;
}

/** What {@linkcode RunServices} needs from the engine. */
export interface ServicesHost {
  readonly store: StateStore;
  /** Stores a flow as a flow blob; returns its id. */
  storeFlow(flow: Flow): string;
  /** @throws {Error} `Not found: flow with ID '<id>'`. */
  getFlow(flowId: string): Promise<Flow>;
  /** Runs a nested flow. */
  runNested(flow: Flow, input: JsonValue, options: NestedRunStart): Promise<FlowResult>;
  /** The engine's signal waits (`/builtin/wait_for`). */
  readonly waits: SignalWaits;
}

/** The engine services of one run: one small object per run, methods on the prototype. */
export class RunServices implements EngineServices {
  constructor(
    readonly host: ServicesHost,
    readonly batches: BatchManager,
    readonly runId: string | undefined,
    readonly signal: AbortSignal | undefined,
    /** Depth of the runs this one starts. */
    readonly nested: number,
    readonly budget: RunBudget | undefined,
    /** The run's secrets, redacted in the runs it starts too. */
    readonly secrets?: Redactor,
    /** Set for a resumed run: its nested runs are looked up by key first. */
    readonly resumeMode?: ResumeMode,
  ) {}

  putBlob(data: JsonValue, blobType: "data" | "flow"): Promise<string> {
    if (blobType === "flow") {
      const invalid = (e: unknown) =>
        new Error(`Invalid flow blob: ${describeError(e)}`, { cause: e });
      let flow: Flow;
      try {
        flow = flowFromJson(data);
      } catch (e) {
        if (!(e instanceof CheckNotLoaded)) return Promise.reject(invalid(e));
        // a flow the zod-free reader declines: read again once the zod model is loaded
        return withChecks(() => flowFromJson(data)).then(
          (f) => this.host.storeFlow(f),
          (e) => Promise.reject(invalid(e)),
        );
      }
      return Promise.resolve(this.host.storeFlow(flow));
    }
    return Promise.resolve(this.host.store.putBlob(data, "data"));
  }

  async getBlob(blobId: string): Promise<Blob> {
    const b = await this.host.store.getBlob(blobId);
    if (!b) throw new Error(`Blob not found: ${blobId}`);
    return { data: b.data, blobType: b.blobType };
  }

  async evaluateFlow(
    flowId: string,
    input: JsonValue,
    options: NestedRunOptions = {},
  ): Promise<FlowResult> {
    const flow = await this.host.getFlow(flowId);
    return await this.host.runNested(flow, input, {
      overrides: options.overrides,
      parentRunId: options.parentRunId ?? this.runId,
      signal: options.signal ?? this.signal,
      depth: this.nested,
      budget: this.budget,
      parentStepId: options.stepId,
      item: options.item,
      secrets: this.secrets,
      resumeMode: this.resumeMode,
    });
  }

  async getMetadata(
    flowId: string,
    stepId?: string,
  ): Promise<{ flow_metadata: JsonObject; step_metadata?: JsonObject | null }> {
    const flow = await this.host.getFlow(flowId);
    const flowMetadata = (isJsonObject(flow.metadata) ? flow.metadata : {}) as JsonObject;
    if (stepId === undefined) return { flow_metadata: flowMetadata };
    const step = (flow.steps ?? []).find((s) => s.id === stepId);
    if (!step) throw new Error(`Not found: step with ID '${stepId}'`);
    return {
      flow_metadata: flowMetadata,
      step_metadata: (isJsonObject(step.metadata) ? step.metadata : {}) as JsonObject,
    };
  }

  async submitBatch(
    flowId: string,
    inputs: JsonValue[],
    options: { overrides?: JsonValue; maxConcurrency?: number; stepId?: string } = {},
  ): Promise<{ batch_id: string; total_runs: number }> {
    const flow = await this.host.getFlow(flowId);
    // a resumed parent: the items' runs that exist already keep their ids (found by key)
    let runIds: (string | undefined)[] | undefined;
    if (this.resumeMode !== undefined && this.runId !== undefined && options.stepId !== undefined) {
      const prefix = `${this.runId}/${options.stepId}/`;
      runIds = await Promise.all(
        inputs.map(async (_, i) => (await this.host.store.findRunByKey(prefix + i))?.runId),
      );
    }
    return this.batches.submit(
      flowId,
      flow.name,
      inputs,
      (input, itemRunId, index) =>
        this.host.runNested(flow, input, {
          runId: itemRunId,
          // a batch of no run: its items are top-level runs, with ids the batch just made
          newRunId: this.runId === undefined,
          parentRunId: this.runId,
          signal: this.signal,
          overrides: options.overrides,
          depth: this.nested,
          budget: this.budget,
          parentStepId: options.stepId,
          item: index,
          secrets: this.secrets,
          resumeMode: this.resumeMode,
        }),
      { maxConcurrency: options.maxConcurrency, signal: this.signal, runIds },
    );
  }

  waitForSignal(
    name: string,
    options: { stepId: string; signal: AbortSignal; timeoutMs?: number },
  ): Promise<{ id: number; data: JsonValue } | undefined> {
    if (this.runId === undefined) {
      return Promise.reject(new Error("waiting for a signal needs a run"));
    }
    return this.host.waits.wait(this.runId, name, options);
  }

  getBatch(
    batchId: string,
    options?: { wait?: boolean; includeResults?: boolean },
  ): Promise<{ details: BatchDetails; outputs?: BatchOutputInfo[] | null }> {
    return this.batches.get(batchId, options);
  }
}
