/**
 * The Stepflow protocol methods (stepflow 0.8 §3.2): params and results as zod schemas with
 * snake_case fields, defined once; types are inferred from them and schemas/protocol.json is
 * generated from them (see json_schema.ts).
 *
 * Objects are loose (unknown keys are kept), as 0.8's serde structs accept extra keys.
 * @module
 */
import { z } from "zod";
import { JsonValueSchema } from "../json/schema.ts";

const Value = JsonValueSchema.describe("Any JSON value.");
const BlobId = z.string().describe(
  "A blob id: the lowercase hex SHA-256 of the blob's compact JSON (64 characters, no prefix).",
);
const JsonObject = z.record(z.string(), JsonValueSchema);

/** Observability context: trace and run ids, absent keys omitted (0.8 `ObservabilityContext`). */
export const ObservabilitySchema = z.looseObject({
  trace_id: z.string().optional().describe("OpenTelemetry trace id (32 hex), when tracing is on."),
  span_id: z.string().optional().describe("OpenTelemetry span id (16 hex), when tracing is on."),
  run_id: z.string().optional().describe("The run (hyphenated UUID), for calls inside a run."),
  flow_id: z.string().optional().describe("The flow's blob id, for calls inside a run."),
  step_id: z.string().optional().describe("The step, for step-level calls."),
}).describe("Observability context for tracing and logging.");
export type Observability = z.infer<typeof ObservabilitySchema>;

const ObsOpt = ObservabilitySchema.nullable().optional();

/** Overrides of a flow's steps (`{<step_id>: {$type?: merge_patch|json_patch, value}}`). */
export const OverridesSchema = z.record(
  z.string(),
  z.looseObject({
    $type: z.enum(["merge_patch", "json_patch"]).optional(),
    value: Value,
  }),
).describe("Workflow overrides keyed by step id.");

/** A component as a worker lists it (0.8 `ComponentInfo`). */
export const ComponentInfoSchema = z.looseObject({
  component: z.string().describe("The component path as the worker knows it, e.g. `/split`."),
  description: z.string().nullable().optional(),
  input_schema: JsonValueSchema.nullable().optional().describe("JSON Schema of the input."),
  output_schema: JsonValueSchema.nullable().optional().describe("JSON Schema of the output."),
}).describe("Information about a component.");

/** A FlowResult on the wire (0.8 §10). */
export const FlowResultSchema = z.discriminatedUnion("outcome", [
  z.looseObject({ outcome: z.literal("success"), result: Value }),
  z.looseObject({ outcome: z.literal("skipped"), reason: z.string().optional() }),
  z.looseObject({
    outcome: z.literal("failed"),
    error: z.looseObject({ code: z.number().int(), message: z.string(), data: Value.optional() }),
  }),
]).describe("The outcome of a step or a flow.");

/** `BatchDetails` (0.8 §3.2). */
export const BatchDetailsSchema = z.looseObject({
  batch_id: z.string(),
  flow_id: z.string(),
  flow_name: z.string().nullable().optional(),
  total_runs: z.number().int().nonnegative(),
  status: z.enum(["running", "cancelled"]),
  created_at: z.string().describe("RFC 3339 time."),
  completed_runs: z.number().int().nonnegative(),
  running_runs: z.number().int().nonnegative(),
  failed_runs: z.number().int().nonnegative(),
  cancelled_runs: z.number().int().nonnegative(),
  paused_runs: z.number().int().nonnegative(),
  completed_at: z.string().nullable().optional(),
});

/** `BatchOutputInfo` (0.8 §3.2). */
export const BatchOutputInfoSchema = z.looseObject({
  batch_input_index: z.number().int().nonnegative(),
  status: z.enum(["running", "completed", "failed", "cancelled", "paused"]),
  result: FlowResultSchema.nullable().optional(),
});

/** Who sends a method. */
export type Direction = "engine_to_worker" | "worker_to_engine";

/** One method: who sends it, its params, its result (absent for notifications). */
export interface MethodSpec {
  direction: Direction;
  notification?: true;
  description: string;
  params: z.ZodType;
  result?: z.ZodType;
}

/** Every method of the protocol (0.8 §3.2), by name. */
export const METHODS = {
  "initialize": {
    direction: "engine_to_worker",
    description: "Starts the session. The engine does not compare versions (0.8).",
    params: z.looseObject({
      runtime_protocol_version: z.number().int().nonnegative().describe("Always 1."),
      observability: ObsOpt,
    }),
    result: z.looseObject({ server_protocol_version: z.number().int().nonnegative() }),
  },
  "initialized": {
    direction: "engine_to_worker",
    notification: true,
    description: "Notification sent after the `initialize` response.",
    params: z.looseObject({}),
  },
  "components/list": {
    direction: "engine_to_worker",
    description: "Lists the worker's components.",
    params: z.looseObject({}),
    result: z.looseObject({ components: z.array(ComponentInfoSchema) }),
  },
  "components/info": {
    direction: "engine_to_worker",
    description: "Describes one component.",
    params: z.looseObject({ component: z.string() }),
    result: z.looseObject({ info: ComponentInfoSchema }),
  },
  "components/execute": {
    direction: "engine_to_worker",
    description: "Runs a component on an input.",
    params: z.looseObject({
      component: z.string().describe("The component path, e.g. `/split` (a string on the wire)."),
      input: Value,
      attempt: z.number().int().positive().describe("1-based attempt number."),
      observability: ObservabilitySchema,
    }),
    result: z.looseObject({ output: Value }),
  },
  "blobs/put": {
    direction: "worker_to_engine",
    description: "Stores a JSON blob (content-addressed).",
    params: z.looseObject({
      data: Value,
      blob_type: z.enum(["data", "flow"]),
      observability: ObsOpt,
    }),
    result: z.looseObject({ blob_id: BlobId }),
  },
  "blobs/get": {
    direction: "worker_to_engine",
    description: "Reads a blob.",
    params: z.looseObject({ blob_id: BlobId, observability: ObsOpt }),
    result: z.looseObject({ data: Value, blob_type: z.enum(["data", "flow"]) }),
  },
  "flows/evaluate": {
    direction: "worker_to_engine",
    description: "Runs a stored flow (a `flow` blob) as a nested run and returns its result.",
    params: z.looseObject({
      flow_id: BlobId,
      input: Value,
      overrides: OverridesSchema.nullable().optional(),
      observability: ObsOpt,
    }),
    result: z.looseObject({ result: FlowResultSchema }),
  },
  "flows/get_metadata": {
    direction: "worker_to_engine",
    description: "Reads a flow's metadata and, with `step_id`, that step's metadata.",
    params: z.looseObject({
      flow_id: BlobId,
      step_id: z.string().nullable().optional(),
      observability: ObsOpt,
    }),
    result: z.looseObject({
      flow_metadata: JsonObject,
      step_metadata: JsonObject.nullable().optional(),
    }),
  },
  "flows/submit_batch": {
    direction: "worker_to_engine",
    description: "Starts one run of a stored flow per input; returns at once.",
    params: z.looseObject({
      flow_id: BlobId,
      inputs: z.array(Value),
      overrides: OverridesSchema.nullable().optional(),
      max_concurrency: z.number().int().nonnegative().nullable().optional(),
      observability: ObsOpt,
    }),
    result: z.looseObject({ batch_id: z.string(), total_runs: z.number().int().nonnegative() }),
  },
  "flows/get_batch": {
    direction: "worker_to_engine",
    description: "A batch's status; `wait` waits for it to finish; `include_results` adds outputs.",
    params: z.looseObject({
      batch_id: z.string(),
      wait: z.boolean().optional(),
      include_results: z.boolean().optional(),
      observability: ObsOpt,
    }),
    result: z.looseObject({
      details: BatchDetailsSchema,
      outputs: z.array(BatchOutputInfoSchema).nullable().optional(),
    }),
  },
} as const satisfies Record<string, MethodSpec>;

/** A method name. */
export type MethodName = keyof typeof METHODS;

/** The params type of a method. */
export type ParamsOf<M extends MethodName> = z.infer<(typeof METHODS)[M]["params"]>;

/** The result type of a (non-notification) method. */
export type ResultOf<M extends MethodName> = (typeof METHODS)[M] extends
  { result: infer R extends z.ZodType } ? z.infer<R> : never;

/** True if `name` is a method of the protocol. */
export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(METHODS, name);
}
