/**
 * The stepflow 0.8 flow model (§1), defined once as zod schemas; TS types are inferred from them
 * and `schemas/flow.json` is generated from them.
 *
 * Values inside flows (`input`, `output`, `defaultValue`, ...) are JSON values that may
 * hold raw numbers (see src/json/exact_json.ts); they are typed with `z.custom`.
 *
 * Unknown keys are ignored here, as in 0.8 (`z.object` strips them); the validator reports them
 * as warnings with a suggestion. `null` for an optional field reads as absent wherever 0.8's
 * schema allows null ({@linkcode nullable}).
 * @module
 */
import { z } from "zod";
import { fileNumber, JsonValueSchema } from "../json/schema.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { SourceMap } from "../core/diagnostics.ts";

import { FLOW_SCHEMA_URL } from "./fast_model.ts";

/** The required value of a flow's `schema` key (stepflow 0.8). */
export { FLOW_SCHEMA_URL };

/**
 * An optional field that may also be `null` in a file, which reads as absent. stepflow 0.8's
 * schema allows null for these (its `Option` fields), and tools that write flows (Pydantic's
 * `model_dump`) write every unset optional field as null. The JSON Schema says `[type, null]`.
 */
export function nullable<T extends z.ZodType>(schema: T) {
  return schema.nullish().transform((v) => v ?? undefined).optional();
}

/** A value template (§1.3): JSON where `{$from: ...}` objects are references and `{$literal: x}` escapes. */
export const ValueTemplateSchema = JsonValueSchema.describe(
  "A value template: any JSON value; objects with `$from` are references, objects with `$literal` are escaped literals.",
);

/** `onSkip` of a reference (§1.3): `{action: skip}` (default) or `{action: useDefault, defaultValue?}`. */
export const SkipActionSchema = z.discriminatedUnion("action", [
  z.object({ action: z.literal("skip") }),
  z.object({ action: z.literal("useDefault"), defaultValue: JsonValueSchema.optional() }),
]);
export type SkipAction = z.infer<typeof SkipActionSchema>;

/** A duration: milliseconds, or a string such as `"500ms"`, `"30s"`, `"5m"`, `"1h"`. */
export const DurationSchema = z.union([
  fileNumber(z.number().int().positive()),
  z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)$/, "a duration such as 500ms, 30s, 5m or 1h"),
]).describe('Milliseconds, or a string such as "30s"');

/** A delay that may be zero: milliseconds (0 or more), or a string such as `"0s"`, `"250ms"`. */
export const DelaySchema = z.union([
  fileNumber(z.number().int().nonnegative()),
  z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)$/, "a duration such as 0s, 500ms, 30s or 5m"),
]).describe('Milliseconds (0 or more), or a string such as "500ms"');

/** What applies once a retried step's last attempt failed (extension, issue 5). */
export const RetryFallbackSchema = z.discriminatedUnion("action", [
  z.object({ action: z.literal("fail") }),
  z.object({ action: z.literal("skip") }),
  z.object({ action: z.literal("useDefault"), defaultValue: JsonValueSchema.optional() }),
]);

/**
 * Retry settings for `onError: {action: retry}`. stepflow 0.8 parses `retry` but never retries;
 * this engine retries (see docs/error-handling.md and src/flow/retry_policy.ts, which
 * applies the defaults). Issue 5 owns the fields beyond `action`.
 */
export const RetryActionSchema = z.looseObject({
  action: z.literal("retry"),
  /** Retries after the first attempt for component and timeout failures (default 3). */
  maxRetries: fileNumber(z.number().int().nonnegative().max(1000)).optional(),
  /** Retries for transport failures: worker crash, closed pipe (default = maxRetries). */
  maxTransportRetries: fileNumber(z.number().int().nonnegative().max(1000)).optional(),
  /** Delay before the first retry (default 1s). */
  initialDelay: DelaySchema.optional(),
  /** Each further delay is multiplied by this (default 2). */
  backoffFactor: fileNumber(z.number().min(1).max(100)).optional(),
  /** Cap on any one delay (default 30s). */
  maxDelay: DurationSchema.optional(),
  /** `none` (default): exact delays; `full`: each delay random in [0, delay]. */
  jitter: z.enum(["none", "full"]).optional(),
  /**
   * Failure categories (`component`, `transport`, `timeout`, `invalid`) and/or integer error
   * codes; unknown names are reported by the validator (src/flow/policy_diagnostics.ts).
   */
  retryOn: z.array(z.union([z.string(), fileNumber(z.number().int())])).optional(),
  /** What applies after the last attempt failed (default `{action: fail}`). */
  fallback: RetryFallbackSchema.optional(),
});

/** `onError` (§1.2): `fail` (default), `skip`, `useDefault` with `defaultValue`, `retry`. */
export const ErrorActionSchema = z.discriminatedUnion("action", [
  z.object({ action: z.literal("fail") }),
  z.object({ action: z.literal("skip") }),
  z.object({ action: z.literal("useDefault"), defaultValue: ValueTemplateSchema.optional() }),
  RetryActionSchema,
]);
export type ErrorAction = z.infer<typeof ErrorActionSchema>;

/** A step (§1.2). */
export const StepSchema = z.object({
  id: z.string(),
  component: z.string(),
  description: nullable(z.string()),
  input: ValueTemplateSchema.optional(),
  inputSchema: nullable(JsonValueSchema),
  outputSchema: nullable(JsonValueSchema),
  skipIf: nullable(ValueTemplateSchema),
  onError: nullable(ErrorActionSchema),
  mustExecute: nullable(z.boolean()),
  metadata: z.record(z.string(), JsonValueSchema).optional(),
  /** Extension: a step timeout (issue 5). */
  timeout: nullable(DurationSchema),
});
export type Step = z.infer<typeof StepSchema>;

/** A test case (§7). */
export const TestCaseSchema = z.object({
  name: z.string(),
  description: nullable(z.string()),
  input: JsonValueSchema,
  output: nullable(JsonValueSchema),
});
export type TestCase = z.infer<typeof TestCaseSchema>;

/** The `test` section (§7): servers, config and cases. */
export const TestConfigSchema = z.object({
  servers: z.record(z.string(), JsonValueSchema).optional(),
  config: JsonValueSchema.optional(),
  stepflow_config: JsonValueSchema.optional(),
  cases: z.array(TestCaseSchema).default([]),
});
export type TestConfig = z.infer<typeof TestConfigSchema>;

/** An example input (REST/UI). */
export const ExampleSchema = z.object({
  name: z.string(),
  description: nullable(z.string()),
  input: JsonValueSchema,
});

/** A flow (§1.1). Serialisation order of keys matters for flow ids: keep this order. */
export const FlowSchema = z.object({
  schema: z.literal(FLOW_SCHEMA_URL),
  name: nullable(z.string()),
  description: nullable(z.string()),
  version: nullable(z.string()),
  inputSchema: nullable(JsonValueSchema),
  outputSchema: nullable(JsonValueSchema),
  variables: nullable(JsonValueSchema),
  steps: z.array(StepSchema).default([]),
  output: ValueTemplateSchema.optional(),
  test: nullable(TestConfigSchema),
  examples: nullable(z.array(ExampleSchema)),
  metadata: z.record(z.string(), JsonValueSchema).optional(),
});
export type Flow = z.infer<typeof FlowSchema>;

/** A flow with the document it came from (src/flow/load.ts loads one). */
export interface LoadedFlow {
  /** The validated model (values keep raw numbers). */
  flow: Flow;
  /** The document as parsed (unknown keys included), for diagnostics. */
  raw: JsonValue;
  /** Positions of the document's nodes, when it came from text. */
  source?: SourceMap;
  /** The file it came from, as the user named it. */
  file?: string;
}
