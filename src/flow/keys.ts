/**
 * The keys each kind of object in a flow may have, from the zod-free flow model
 * (src/flow/fast_model.ts, which tests/flow/fast_shape_test.ts checks against the zod model: a
 * field added to a schema is known to the validator once it is added there), and the
 * misspellings people write instead.
 * The validators warn about other keys, which stepflow 0.8 ignores silently.
 * @module
 */
import { type KeyAliases, suggestName } from "../core/suggest.ts";
import { keysByTag } from "../core/fast_shape.ts";
import {
  fastErrorAction,
  fastExample,
  fastFlow,
  fastSkipAction,
  fastStep,
  fastTestCase,
  fastTestConfig,
} from "./fast_model.ts";

/** Keys of a flow (stepflow 0.8 §1.1, camelCase). */
export const FLOW_KEYS: readonly string[] = fastFlow.keys;
/** Keys of a step (§1.2, plus `timeout`). */
export const STEP_KEYS: readonly string[] = fastStep.keys;
/** Keys of `onError`, by its `action`. */
export const ON_ERROR_KEYS: Readonly<Record<string, string[]>> = keysByTag(fastErrorAction);
/** Keys of `onSkip`, by its `action`. */
export const ON_SKIP_KEYS: Readonly<Record<string, string[]>> = keysByTag(fastSkipAction);
/** Keys of a reference (§1.3; references are read by src/flow/template.ts, not by zod). */
export const REF_KEYS: readonly string[] = ["$from", "path", "onSkip"];
/** Keys of the `test` section (§7). */
export const TEST_KEYS: readonly string[] = fastTestConfig.keys;
/** Keys of a test case. */
export const TEST_CASE_KEYS: readonly string[] = fastTestCase.keys;
/** Keys of a test server (read by src/cli/test_servers.ts). */
export const TEST_SERVER_KEYS: readonly string[] = [
  "command",
  "args",
  "env",
  "workingDirectory",
  "portRange",
  "healthCheck",
  "startupTimeoutMs",
  "shutdownTimeoutMs",
];
/** Keys of a test server's `healthCheck`. */
export const HEALTH_CHECK_KEYS: readonly string[] = [
  "path",
  "timeoutMs",
  "retryAttempts",
  "retryDelayMs",
];
/** Keys of an example input. */
export const EXAMPLE_KEYS: readonly string[] = fastExample.keys;

const NO_DEPENDENCY_LIST = {
  hint: "there is no explicit dependency list: a step runs after every step its input or " +
    "skipIf references with {$from: {step: <id>}}",
};
const WRITE_RETRY = { hint: "write onError: {action: retry, maxRetries: 3}" };
/** Other engines count attempts (Step Functions' MaxAttempts, Kestra's maxAttempt); 0.8 retries. */
const MAX_ATTEMPTS = {
  hint: "did you mean 'maxRetries'? It counts retries after the first attempt: " +
    "maxAttempts: N is maxRetries: N-1",
  onlyWhereKnown: "maxRetries",
};

/** Keys people write in flows and configs that 0.8 ignores, with what they meant. */
export const KEY_ALIASES: KeyAliases = {
  skip: "skipIf",
  skip_if: "skipIf",
  if: "skipIf",
  when: "skipIf",
  condition: "skipIf",
  on_error: "onError",
  onerror: "onError",
  error: "onError",
  input_schema: "inputSchema",
  output_schema: "outputSchema",
  must_execute: "mustExecute",
  default_value: "defaultValue",
  default_output: "defaultValue",
  on_skip: "onSkip",
  variables_schema: "variables",
  variablesSchema: "variables",
  state_store: "stateStore",
  database_url: "databaseUrl",
  auto_migrate: "autoMigrate",
  max_connections: "maxConnections",
  working_directory: "workingDirectory",
  component_allow: "componentAllow",
  component_deny: "componentDeny",
  max_concurrency: "maxConcurrency",
  max_retries: "maxRetries",
  port_range: "portRange",
  health_check: "healthCheck",
  startup_timeout_ms: "startupTimeoutMs",
  shutdown_timeout_ms: "shutdownTimeoutMs",
  timeout_ms: "timeoutMs",
  retry_attempts: "retryAttempts",
  retry_delay_ms: "retryDelayMs",
  depends_on: NO_DEPENDENCY_LIST,
  dependsOn: NO_DEPENDENCY_LIST,
  needs: NO_DEPENDENCY_LIST,
  retry: WRITE_RETRY,
  retries: WRITE_RETRY,
  maxAttempts: MAX_ATTEMPTS,
  max_attempts: MAX_ATTEMPTS,
  maxAttempt: MAX_ATTEMPTS,
  attempts: MAX_ATTEMPTS,
  $step: { hint: "reference a step with {$from: {step: <id>}, path: ...}" },
  $input: { hint: "reference the input with {$from: {workflow: input}, path: ...}" },
  $template: { hint: "strings are never interpolated in stepflow 0.8 flows" },
};

/**
 * What to tell a user who wrote the unknown key `key` where `known` keys are allowed: a
 * "did you mean" hint, or an explanation ({@linkcode KEY_ALIASES}), or undefined.
 */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  if (key === "<<") {
    return "YAML merge keys are not applied (YAML 1.2): write the keys out";
  }
  return suggestName(key, known, KEY_ALIASES);
}
