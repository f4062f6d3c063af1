/**
 * Environment variables read by the program itself and by the npm libraries it bundles, found
 * by running `dist/stepflow.js` under `--allow-env=<list>` and adding each variable Deno
 * reported as missing (see tests/bundle/). Without these, a scoped run fails with
 * `NotCapable: Requires env access to "LOG_TOKENS"` on the first YAML parse.
 *
 * Not needed, and kept out of the bundle on purpose: the MCP SDK's `client/stdio.js` (it pulls
 * in `cross-spawn` → `which`, which reads `OSTYPE` when the module is evaluated, before any of
 * our code could catch it, and `node:child_process` reads `NODE_V8_COVERAGE` on each spawn);
 * our MCP plugin spawns with `Deno.Command` instead. Commander reads `NO_COLOR`,
 * `FORCE_COLOR`, `CLICOLOR_FORCE` only to colour help; src/cli/main.ts turns colour off so it
 * does not. `run --env-variables` reads every `STEPFLOW_VAR_*` variable, which needs an
 * unscoped `--allow-env`.
 * @module
 */

/**
 * Always read, by every subcommand:
 * - `LOG_TOKENS`, `LOG_STREAM`: npm `yaml` (2.x) reads them on every parse (debug output of
 *   the lexer and composer).
 * - `STEPFLOW_LOG_LEVEL`, `STEPFLOW_LOG_FORMAT`, `STEPFLOW_LOG_FILE`,
 *   `STEPFLOW_LOG_DESTINATION`, `STEPFLOW_OTHER_LOG_LEVEL`: stepflow 0.8's variables for the
 *   global log flags (src/cli/global_flags.ts; each ignored without its permission).
 */
export const ALWAYS_READ_ENV: readonly string[] = [
  "LOG_TOKENS",
  "LOG_STREAM",
  "STEPFLOW_LOG_LEVEL",
  "STEPFLOW_LOG_FORMAT",
  "STEPFLOW_LOG_FILE",
  "STEPFLOW_LOG_DESTINATION",
  "STEPFLOW_OTHER_LOG_LEVEL",
];

/**
 * Read by the step-service stdio plugin to find a bare `command` on PATH when the config is
 * loaded (stepflow 0.8 fails executor creation with "command not found" otherwise).
 */
export const COMMAND_LOOKUP_ENV: readonly string[] = ["PATH"];

/**
 * The default key variable of `/openai` and `/chat` (stepflow 0.8), read when the input has no
 * `api_key` (a config's `openai.apiKeyEnv` names another).
 */
export const OPENAI_KEY_ENV = "OPENAI_API_KEY";

/** Read by `/openai` and `/chat` for the base URL when neither step nor config gives one. */
export const OPENAI_BASE_URL_ENV = "OPENAI_BASE_URL";

/** Host `/openai` and `/chat` call when no base URL is configured. */
export const OPENAI_HOST = "api.openai.com:443";
