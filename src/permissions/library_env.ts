/**
 * Environment variables read by the program itself and by the npm libraries it bundles, found
 * by running `dist/stepflow.js` under `--allow-env=<list>` and adding each variable Deno
 * reported as missing (see tests/bundle/). Without these, a scoped run fails with
 * `NotCapable: Requires env access to "OSTYPE"` before any of our code runs, because some are
 * read when a module is evaluated.
 * @module
 */

/**
 * Always read, by every subcommand:
 * - `OSTYPE`: npm `which` (through `cross-spawn`, which the MCP SDK's client imports) tests it
 *   at module load to detect Cygwin/MSYS.
 * - `LOG_TOKENS`, `LOG_STREAM`: npm `yaml` (2.x) reads them on every parse (debug output of
 *   the lexer and composer).
 * - `STEPFLOW_LOG_LEVEL`: our log level (src/log.ts; ignored without the permission).
 */
export const ALWAYS_READ_ENV: readonly string[] = [
  "OSTYPE",
  "LOG_TOKENS",
  "LOG_STREAM",
  "STEPFLOW_LOG_LEVEL",
];

/**
 * Read by the step-service stdio plugin to find a bare `command` on PATH when the config is
 * loaded (stepflow 0.8 fails executor creation with "command not found" otherwise).
 */
export const COMMAND_LOOKUP_ENV: readonly string[] = ["PATH"];

/** Read by the built-in `/openai` component when the input has no `api_key`. */
export const OPENAI_ENV: readonly string[] = ["OPENAI_API_KEY"];

/** Host the built-in `/openai` component calls. */
export const OPENAI_HOST = "api.openai.com:443";
