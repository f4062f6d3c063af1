/**
 * The flow model of src/flow/model.ts written with the zod-free parsers of
 * src/core/fast_shape.ts (issue 17, goal 5: cold start): it reads a common valid flow without
 * loading zod, and declines the rest (a `retry` policy, raw numbers, anything wrong), which the
 * zod model then reads. Field order is the zod model's (a flow's id hashes its serialisation).
 * The key lists here are the ones the validators know (src/flow/keys.ts);
 * tests/flow/fast_shape_test.ts checks them, and the output, against the zod model.
 * @module
 */
import {
  bool,
  byKey,
  decline,
  either,
  int,
  json,
  list,
  literal,
  matching,
  nullable,
  object,
  opt,
  record,
  req,
  str,
  withDefault,
} from "../core/fast_shape.ts";

/** The required value of a flow's `schema` key (stepflow 0.8). */
export const FLOW_SCHEMA_URL = "https://stepflow.org/schemas/v1/flow.json";

/** `DurationSchema`: a positive integer (ms) or a string such as `"30s"`. */
export const fastDuration = either(int(1), matching(/^\d+(\.\d+)?\s*(ms|s|m|h)$/));

const jsonRecord = record(json);

/** `SkipActionSchema`. */
export const fastSkipAction = byKey("action", {
  skip: object({ action: req(literal("skip")) }),
  useDefault: object({ action: req(literal("useDefault")), defaultValue: opt(json) }),
});

/**
 * `ErrorActionSchema`. `retry` (a loose object with numbers that may be raw) is left to zod; its
 * keys are listed for the validators.
 */
export const fastErrorAction = byKey("action", {
  fail: object({ action: req(literal("fail")) }),
  skip: object({ action: req(literal("skip")) }),
  useDefault: object({ action: req(literal("useDefault")), defaultValue: opt(json) }),
  retry: Object.assign(decline, {
    keys: [
      "action",
      "maxRetries",
      "maxTransportRetries",
      "initialDelay",
      "backoffFactor",
      "maxDelay",
      "jitter",
      "retryOn",
      "fallback",
    ],
  }),
});

/** `StepSchema`. */
export const fastStep = object({
  id: req(str),
  component: req(str),
  description: nullable(str),
  input: opt(json),
  inputSchema: nullable(json),
  outputSchema: nullable(json),
  skipIf: nullable(json),
  onError: nullable(fastErrorAction),
  mustExecute: nullable(bool),
  metadata: opt(jsonRecord),
  timeout: nullable(fastDuration),
});

/** `TestCaseSchema`. */
export const fastTestCase = object({
  name: req(str),
  description: nullable(str),
  input: req(json),
  output: nullable(json),
});

/** `TestConfigSchema`. */
export const fastTestConfig = object({
  servers: opt(jsonRecord),
  config: opt(json),
  stepflow_config: opt(json),
  cases: withDefault(list(fastTestCase), () => []),
});

/** `ExampleSchema`. */
export const fastExample = object({
  name: req(str),
  description: nullable(str),
  input: req(json),
});

/** `FlowSchema`. */
export const fastFlow = object({
  schema: req(literal(FLOW_SCHEMA_URL)),
  name: nullable(str),
  description: nullable(str),
  version: nullable(str),
  inputSchema: nullable(json),
  outputSchema: nullable(json),
  variables: nullable(json),
  steps: withDefault(list(fastStep), () => []),
  output: opt(json),
  test: nullable(fastTestConfig),
  examples: nullable(list(fastExample)),
  metadata: opt(jsonRecord),
});
