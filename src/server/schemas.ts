/**
 * The REST API's shapes (stepflow 0.8 §8, camelCase), as zod schemas: the handlers validate
 * requests with them and the OpenAPI document is generated from them (`@hono/zod-openapi`).
 * Response schemas document what the handlers send; `null` appears where 0.8 sends it.
 * @module
 */
import { z } from "@hono/zod-openapi";
import { isRawNumber, toNumber } from "../json/exact_json.ts";

/**
 * Any JSON value (numbers are kept exactly as written). Typed `any` so that values pass between
 * the engine's `JsonValue` and Hono's response types without casts; `undefined` (a missing key)
 * is refused.
 */
/**
 * A number field of a request (not data): bodies are parsed keeping numbers as written, so `5.0`,
 * `1e1` or `2.0` (what Python's json.dumps writes for a float) arrive as raw numbers; they are
 * read as their value here (a client writing `timeoutSecs: 5.0` meant 5 seconds), instead of being
 * refused as "expected number, received object".
 */
function exactNumber<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => isRawNumber(v) ? toNumber(v) : v, schema);
}

export const Json = z.any().refine((v) => v !== undefined, "required: any JSON value").openapi(
  "JsonValue",
  { description: "Any JSON value" },
);

const FlowValue = z.any().refine((v) => v !== undefined, "required: a flow").openapi("Flow", {
  type: "object",
  description:
    "A flow as in a flow file (schema: https://stepflow.org/schemas/v1/flow.json; see schemas/flow.json)",
});

/** 0.8 `FlowResult`. */
export const FlowResultSchema = z.object({
  outcome: z.enum(["success", "skipped", "failed"]),
  result: Json.optional(),
  reason: z.string().optional(),
  error: z.object({
    code: z.number().int(),
    message: z.string(),
    data: Json.optional(),
  }).optional(),
}).openapi("FlowResult", {
  description:
    "{outcome: success, result} | {outcome: skipped, reason?} | {outcome: failed, error: {code, message, data?}}",
});

const StackEntry = z.object({
  error: z.string(),
  attachments: z.array(z.string()).optional(),
  backtrace: z.string().optional(),
});

/** Every error answer (0.8 `ErrorResponse`). */
export const ErrorSchema = z.object({
  code: z.number().int().openapi({ description: "The HTTP status code", example: 404 }),
  message: z.string(),
  stack: z.array(StackEntry).optional(),
}).openapi("ErrorResponse");

const HexId = z.string().regex(/^[0-9a-fA-F]{64}$/, "expected a flow id: 64 hex digits").openapi({
  description: "Flow id: SHA-256 (64 hex) of the flow's normalised JSON",
  example: "6b2a…(64 hex)",
});

const Uuid = z.string().openapi({
  description: "UUID (hyphenated, or 32 hex digits)",
  example: "0190f1a2-7c3e-7d10-8a4b-3f2e1d0c9b8a",
});

/** Run status; `queued` is an extension (waiting for a slot). */
export const RunStatusSchema = z.enum([
  "queued",
  "running",
  "completed",
  "failed",
  "cancelled",
  "paused",
]).openapi("ExecutionStatus");

export const StepStatusSchema = z.enum([
  "blocked",
  "runnable",
  "running",
  "completed",
  "skipped",
  "failed",
]).openapi("StepStatus");

export const BatchStatusSchema = z.enum(["running", "cancelled"]).openapi("BatchStatus");

// ---------------------------------------------------------------------------------------------
// health, components

export const HealthQuery = z.object({
  error: z.string().optional().openapi({
    description:
      "Test error answers (0.8): bad_request → 400, not_found → 404, stack → 500 with a stack, anything else → 500",
  }),
});

export const HealthResponse = z.object({
  status: z.literal("healthy"),
  timestamp: z.string(),
  version: z.string(),
}).openapi("HealthResponse");

/** The state store's condition (extension, in `/health`'s 503 answer). */
export const StoreConditionSchema = z.object({
  healthy: z.boolean(),
  kind: z.string().openapi({ description: "sqlite, postgres or inMemory" }),
  database: z.string().optional().openapi({
    description: "The database file, or the PostgreSQL URL without its password",
  }),
  error: z.string().optional().openapi({
    description: "The latest failure: the database, the cause and what to do",
  }),
  since: z.string().optional().openapi({
    description: "When the first of the failures in a row happened (RFC 3339)",
  }),
  failedCommits: z.number().int().optional().openapi({
    description: "Commits that failed since the last one that succeeded",
  }),
  unstoredRunEnds: z.number().int().optional().openapi({
    description:
      "Runs failed with 507 whose end waits to be stored (written once a commit succeeds)",
  }),
}).openapi("StoreCondition");

/** `/health` when the state store cannot commit (extension; 0.8 always answered healthy). */
export const UnhealthyResponse = z.object({
  code: z.literal(503),
  message: z.string().openapi({ description: "What is wrong and what to do" }),
  status: z.literal("unhealthy"),
  timestamp: z.string(),
  version: z.string(),
  store: StoreConditionSchema,
}).openapi("UnhealthyResponse");

export const ComponentsQuery = z.object({
  includeSchemas: z.enum(["true", "false"]).optional().openapi({
    description: "Include input/output schemas (default true)",
  }),
});

export const ComponentInfoSchema = z.object({
  component: z.string(),
  description: z.string().optional(),
  input_schema: Json.optional().nullable(),
  output_schema: Json.optional().nullable(),
}).openapi("ComponentInfo");

export const ComponentsResponse = z.object({
  components: z.array(ComponentInfoSchema),
  errors: z.array(z.string()).optional().openapi({
    description: "Extension: plugins that could not list their components, and why",
  }),
}).openapi("ListComponentsResponse");

// ---------------------------------------------------------------------------------------------
// flows

export const StoreFlowRequest = z.object({ flow: FlowValue }).openapi("StoreFlowRequest");

const DiagnosticSchema = z.object({
  message: z.object({ type: z.string() }),
  level: z.enum(["fatal", "error", "warning"]),
  text: z.string(),
  path: z.string(),
  ignore: z.boolean(),
  code: z.string().optional(),
  hint: z.string().optional(),
}).openapi("Diagnostic");

const DiagnosticsSchema = z.object({
  diagnostics: z.array(DiagnosticSchema),
  numFatal: z.number().int(),
  numError: z.number().int(),
  numWarning: z.number().int(),
}).openapi("Diagnostics");

const AnalysisSchema = z.record(z.string(), Json).openapi("FlowAnalysis", {
  description:
    "{flowId, flow, steps: {<stepId>: {inputDepends, skipIfDepend}}, outputDepends} (stepflow 0.8)",
});

export const StoreFlowResponse = z.object({
  flowId: HexId.optional().openapi({ description: "Absent when a diagnostic is fatal" }),
  analysis: AnalysisSchema.optional(),
  diagnostics: DiagnosticsSchema,
}).openapi("StoreFlowResponse");

export const FlowIdParams = z.object({
  flowId: z.string().openapi({ param: { name: "flowId", in: "path" }, example: "6b2a…" }),
});

export const FlowResponse = z.object({
  flow: FlowValue,
  flowId: HexId,
  allExamples: z.array(Json).optional(),
  analysis: AnalysisSchema,
}).openapi("FlowResponse");

// ---------------------------------------------------------------------------------------------
// runs

export const CreateRunRequest = z.object({
  flowId: HexId,
  input: Json,
  overrides: Json.optional().openapi({ description: "Step overrides (stepflow 0.8 §1.7)" }),
  variables: z.record(z.string(), Json).optional().openapi({
    description: "Run variables, read by `$from: {variable: name}`",
  }),
  debug: z.boolean().optional().openapi({
    description:
      "0.8 debug mode: the run answers at once (status paused) and stops before each step; /debug/runnable, /debug/step and /debug/continue drive it",
  }),
  wait: z.boolean().optional().openapi({
    description:
      "Extension: wait for the run to finish (default true, as 0.8). false answers 202 at once.",
  }),
  timeoutSecs: exactNumber(z.number().positive()).optional().openapi({
    description:
      "Extension: with wait, answer 202 (run id and status) if the run has not finished after this many seconds; the run goes on",
  }),
}).openapi("CreateRunRequest");

export const CreateRunResponse = z.object({
  runId: Uuid,
  result: FlowResultSchema.optional(),
  status: RunStatusSchema,
  debug: z.boolean(),
}).openapi("CreateRunResponse");

export const IdempotencyHeader = z.object({
  "Idempotency-Key": z.string().min(1).max(255).optional().openapi({
    param: { name: "Idempotency-Key", in: "header" },
    description:
      "Extension: the same key (with the same request) answers with the same run instead of starting another",
  }),
});

export const RunIdParams = z.object({
  runId: Uuid.openapi({ param: { name: "runId", in: "path" } }),
});

export const RunSummarySchema = z.object({
  runId: Uuid,
  flowId: HexId,
  flowName: z.string().nullable(),
  flowLabel: z.string().nullable(),
  status: RunStatusSchema,
  debugMode: z.boolean(),
  createdAt: z.string(),
  completedAt: z.string().nullable(),
}).openapi("RunSummary");

export const RunDetailsSchema = RunSummarySchema.extend({
  input: Json,
  result: FlowResultSchema.nullable(),
  overrides: Json.optional(),
  parentRunId: Uuid.optional().openapi({ description: "Extension: the run that started this one" }),
  owner: z.object({
    engineId: z.string(),
    leaseEpoch: z.number().int().optional(),
    leaseExpiresAt: z.string().optional(),
    url: z.string().optional(),
    host: z.string().optional(),
    pid: z.number().int().optional(),
  }).optional().openapi({
    description:
      "Extension (PostgreSQL store, several engines): the engine executing (or that last executed) the run, its lease epoch and expiry, and where that engine's service answers (GET /api/v1/engines)",
  }),
}).openapi("RunDetails");

export const ListRunsQuery = z.object({
  status: RunStatusSchema.optional(),
  flowName: z.string().optional(),
  since: z.string().optional().openapi({
    description: "RFC 3339 time: runs created at or after it",
    example: "2025-01-01T00:00:00Z",
  }),
  limit: z.coerce.number().int().nonnegative().optional(),
  offset: z.coerce.number().int().nonnegative().optional(),
  rootOnly: z.enum(["true", "false"]).optional().openapi({
    description: "Only runs without a parent (leave out nested eval/map/iterate runs)",
  }),
});

export const ListRunsResponse = z.object({ runs: z.array(RunSummarySchema) }).openapi(
  "ListRunsResponse",
);

export const RunFlowResponse = z.object({ flow: FlowValue, flowId: HexId }).openapi(
  "RunFlowResponse",
);

export const StepRunSchema = z.object({
  stepIndex: z.number().int(),
  stepId: z.string(),
  component: z.string().optional(),
  status: StepStatusSchema,
  result: FlowResultSchema.optional(),
  attempt: z.number().int().optional().openapi({
    description: "Extension: the last attempt started (1 for the first); absent before it starts",
  }),
  startedAt: z.string().optional().openapi({
    description: "Extension: when the step started (RFC 3339)",
  }),
  completedAt: z.string().optional().openapi({
    description: "Extension: when its result was stored (RFC 3339)",
  }),
  durationMs: z.number().optional().openapi({
    description: "Extension: how long it took, ms (all attempts); while running, so far",
  }),
  durationEstimated: z.boolean().optional().openapi({
    description:
      "Extension: true when the start was not journaled and is taken as the moment the step's inputs were ready",
  }),
  input: Json.optional().openapi({
    description:
      "Extension: the input the step was given (resolved from the run's input, variables and step results; values marked is_secret redacted); absent before it starts",
  }),
}).openapi("StepRunResponse");

export const ListStepsResponse = z.object({ steps: z.record(z.string(), StepRunSchema) })
  .openapi("ListStepRunsResponse");

export const DebugStepRequest = z.object({ stepIds: z.array(z.string()) }).openapi(
  "DebugStepRequest",
);

export const DebugStepResponse = z.object({ results: z.record(z.string(), FlowResultSchema) })
  .openapi("DebugStepResponse");

export const DebugRunnableResponse = z.object({ runnableSteps: z.array(z.string()) }).openapi(
  "DebugRunnableResponse",
);

// ---------------------------------------------------------------------------------------------
// batches

export const CreateBatchRequest = z.object({
  flowId: HexId,
  inputs: z.array(Json).min(1, {
    error: "a batch needs at least one input (one run per input): got an empty array",
  }),
  maxConcurrency: exactNumber(z.number().int().positive()).optional().openapi({
    description: "Runs of this batch at once (default: all; the service's limit still applies)",
  }),
  overrides: Json.optional().openapi({ description: "Applied to every run (0.8 ignored them)" }),
  variables: z.record(z.string(), Json).optional().openapi({
    description: "Extension: variables of every run",
  }),
}).openapi("CreateBatchRequest");

export const CreateBatchResponse = z.object({
  batchId: Uuid,
  totalInputs: z.number().int(),
  status: BatchStatusSchema,
}).openapi("CreateBatchResponse");

export const BatchIdParams = z.object({
  batchId: Uuid.openapi({ param: { name: "batchId", in: "path" } }),
});

export const BatchMetadataSchema = z.object({
  batchId: Uuid,
  flowId: HexId,
  flowName: z.string().nullable(),
  totalInputs: z.number().int(),
  createdAt: z.string(),
  status: BatchStatusSchema,
}).openapi("BatchMetadata");

export const BatchDetailsSchema = BatchMetadataSchema.extend({
  completedRuns: z.number().int(),
  runningRuns: z.number().int().openapi({ description: "Runs running or waiting to start" }),
  failedRuns: z.number().int(),
  cancelledRuns: z.number().int(),
  pausedRuns: z.number().int(),
  completedAt: z.string().nullable(),
}).openapi("BatchDetails");

export const ListBatchesQuery = z.object({
  status: BatchStatusSchema.optional(),
  flowName: z.string().optional(),
  limit: z.coerce.number().int().nonnegative().optional(),
  offset: z.coerce.number().int().nonnegative().optional(),
});

export const ListBatchesResponse = z.object({ batches: z.array(BatchMetadataSchema) }).openapi(
  "ListBatchesResponse",
);

export const BatchRunsResponse = z.object({
  runs: z.array(RunSummarySchema.extend({ batchInputIndex: z.number().int() })),
}).openapi("ListBatchRunsResponse");

export const BatchOutputsResponse = z.object({
  outputs: z.array(z.object({
    batchInputIndex: z.number().int(),
    status: RunStatusSchema,
    result: FlowResultSchema.nullable(),
  })),
}).openapi("ListBatchOutputsResponse");

export const CancelBatchResponse = z.object({ batchId: Uuid, status: BatchStatusSchema }).openapi(
  "CancelBatchResponse",
);
