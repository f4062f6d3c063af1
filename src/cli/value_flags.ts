/**
 * The variables and overrides flags of the commands that start runs elsewhere or in batches
 * (`submit`, `submit-batch`, `run-batch`): registering them and reading them (stepflow 0.8
 * §1.7–1.8, the same flags as `run`).
 * @module
 */
import type { Command } from "commander";
import { envVariables, readValueFlags } from "./input.ts";
import { isJsonObject, isNumber, type JsonValue } from "../json/exact_json.ts";
import { UsageError } from "../errors.ts";
import { parseDuration } from "../core/duration.ts";

/** `--variables*`, `--env-variables` and `--overrides*` as commander gives them. */
export interface VariableAndOverrideFlags {
  variables?: string;
  variablesJson?: string;
  variablesYaml?: string;
  envVariables?: boolean;
  overrides?: string;
  overridesJson?: string;
  overridesYaml?: string;
}

/** Adds `--variables FILE`, `--variables-json`, `--variables-yaml`, `--env-variables`. */
export function variableOptions(cmd: Command, whose = "run"): Command {
  return cmd
    .option("--variables <file>", `${whose} variables from a JSON or YAML file`)
    .option("--variables-json <json>", `${whose} variables as JSON text`)
    .option("--variables-yaml <yaml>", `${whose} variables as YAML text`)
    .option("--env-variables", "read variables from STEPFLOW_VAR_<NAME> environment variables");
}

/** Adds `--overrides FILE`, `--overrides-json`, `--overrides-yaml`. */
export function overrideOptions(cmd: Command): Command {
  return cmd
    .option("--overrides <file>", "step overrides from a JSON or YAML file")
    .option("--overrides-json <json>", "step overrides as JSON text")
    .option("--overrides-yaml <yaml>", "step overrides as YAML text");
}

/**
 * The variables (environment ones first, explicit ones win) and overrides the flags give.
 * @param flowVariables the flow's `variables` schema (names of `STEPFLOW_VAR_*` variables).
 * @throws {UsageError} for conflicting flags, unreadable values, or variables that are not an
 * object.
 */
export async function readVariablesAndOverrides(
  flags: VariableAndOverrideFlags,
  flowVariables: JsonValue | undefined,
): Promise<{ variables?: Record<string, JsonValue>; overrides?: JsonValue }> {
  let variables = flags.envVariables
    ? await envVariables(Deno.env.toObject(), flowVariables)
    : undefined;
  const given = await readValueFlags(
    "variables",
    flags.variables,
    flags.variablesJson,
    flags.variablesYaml,
  );
  if (given !== undefined) {
    if (!isJsonObject(given)) {
      const flag = flags.variablesJson !== undefined
        ? "--variables-json"
        : flags.variablesYaml !== undefined
        ? "--variables-yaml"
        : `--variables '${flags.variables}'`;
      throw new UsageError(
        `${flag} must be a mapping of variable names to values (e.g. {"model": "gpt-4o"}), got ${
          Array.isArray(given)
            ? "a list"
            : given === null
            ? "null"
            : isNumber(given)
            ? "a number"
            : `a ${typeof given}`
        }`,
      );
    }
    variables = { ...variables, ...given };
  }
  const overrides = await readValueFlags(
    "overrides",
    flags.overrides,
    flags.overridesJson,
    flags.overridesYaml,
  );
  return { variables, overrides };
}

export interface RunLimitFlags {
  timeoutMs?: number;
  maxConcurrency?: number;
}

/**
 * Parses `--max-concurrency` (a positive integer) and `--timeout` (a duration, or ms).
 * @throws {UsageError} naming the flag and the value.
 */
export function parseRunLimits(
  flags: { timeout?: string; maxConcurrency?: string },
): RunLimitFlags {
  const limits: RunLimitFlags = {};
  if (flags.maxConcurrency !== undefined) {
    const n = Number(flags.maxConcurrency);
    if (!/^\d+$/.test(flags.maxConcurrency.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw new UsageError(
        `--max-concurrency must be a positive integer, got ${JSON.stringify(flags.maxConcurrency)}`,
      );
    }
    limits.maxConcurrency = n;
  }
  if (flags.timeout !== undefined) {
    const t = flags.timeout.trim();
    try {
      limits.timeoutMs = parseDuration(/^\d+$/.test(t) ? Number(t) : t, { what: "--timeout" });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return limits;
}
