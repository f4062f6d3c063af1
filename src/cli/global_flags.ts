/**
 * stepflow 0.8's global flags (its `ObservabilityConfig` and `--omit-stack-trace`), accepted
 * before or after the subcommand, each with its `STEPFLOW_*` variable (the flag wins):
 *
 * | flag                         | variable                    | here                                      |
 * | ---------------------------- | --------------------------- | ----------------------------------------- |
 * | `--log-level L`              | `STEPFLOW_LOG_LEVEL`        | off, error, warn (default), info, debug, trace |
 * | `--other-log-level L`        | `STEPFLOW_OTHER_LOG_LEVEL`  | level of libraries' own logs (none writes any yet) |
 * | `--log-format json\|text`    | `STEPFLOW_LOG_FORMAT`       | JSON lines or `[level] tag: message`      |
 * | `--log-file F`               | `STEPFLOW_LOG_FILE`         | logs appended to F instead of stderr      |
 * | `--log-destination D`        | `STEPFLOW_LOG_DESTINATION`  | stdout (= stderr here: stdout holds results), file (needs --log-file), otlp (needs --otlp-endpoint) |
 * | `--omit-stack-trace`         | —                           | a failed run's account is its first line only |
 * | `--trace-enabled`            | `STEPFLOW_TRACE_ENABLED`    | accepted, checked as 0.8 does; no export   |
 * | `--metrics-enabled`          | `STEPFLOW_METRICS_ENABLED`  | accepted, checked as 0.8 does; no export   |
 * | `--otlp-endpoint URL`        | `STEPFLOW_OTLP_ENDPOINT`    | accepted; OpenTelemetry export is not built in (one warning) |
 *
 * Variables are read only when the env permission for them is granted (never a prompt).
 * @module
 */
import { type Command, Option } from "commander";
import { UsageError } from "../errors.ts";
import {
  isLogLevel,
  type LogFormat,
  type LogLevel,
  setLogFile,
  setLogFormat,
  setLogLevel,
  setOtherLogLevel,
} from "../log.ts";
import { rethrowIfPermission } from "../permissions/hint.ts";

/** The global flags as commander gives them. */
export interface GlobalFlags {
  logLevel?: string;
  otherLogLevel?: string;
  logDestination?: string;
  logFormat?: string;
  logFile?: string;
  traceEnabled?: boolean;
  metricsEnabled?: boolean;
  otlpEndpoint?: string;
  omitStackTrace?: boolean;
}

/** Variables read for flags not given (besides `STEPFLOW_LOG_LEVEL`, read by src/log.ts). */
export const GLOBAL_FLAG_ENV: Readonly<Record<keyof GlobalFlags, string | undefined>> = {
  logLevel: "STEPFLOW_LOG_LEVEL",
  otherLogLevel: "STEPFLOW_OTHER_LOG_LEVEL",
  logDestination: "STEPFLOW_LOG_DESTINATION",
  logFormat: "STEPFLOW_LOG_FORMAT",
  logFile: "STEPFLOW_LOG_FILE",
  traceEnabled: "STEPFLOW_TRACE_ENABLED",
  metricsEnabled: "STEPFLOW_METRICS_ENABLED",
  otlpEndpoint: "STEPFLOW_OTLP_ENDPOINT",
  omitStackTrace: undefined,
};

/** Settings the subcommands read (set before their action runs). */
export const cliSettings = {
  /** `--omit-stack-trace`: print only the top line of a failure. */
  omitStackTrace: false,
  /** The effective `--log-file` (for `stepflow permissions`). */
  logFile: undefined as string | undefined,
};

const LEVELS = "off, error, warn, info, debug, trace";

/** Adds the global flags to `program` and applies them before any subcommand runs. */
export function registerGlobalFlags(program: Command, writeWarning: (s: string) => void): void {
  program
    .addOption(new Option("--log-level <level>", `log level: ${LEVELS} (default warn)`))
    .addOption(
      new Option("--other-log-level <level>", "log level of libraries (default: --log-level)"),
    )
    .addOption(
      new Option(
        "--log-destination <dest>",
        "stdout (written to stderr: stdout holds results), file (with --log-file), or otlp",
      ),
    )
    .addOption(new Option("--log-format <format>", "log line format: text (default) or json"))
    .addOption(new Option("--log-file <file>", "append logs to this file instead of stderr"))
    .addOption(
      new Option("--omit-stack-trace", "print only the first line of a failure, no error stack"),
    )
    .addOption(new Option("--trace-enabled", "stepflow 0.8 flag; accepted, no trace export"))
    .addOption(new Option("--metrics-enabled", "stepflow 0.8 flag; accepted, no metrics export"))
    .addOption(
      new Option("--otlp-endpoint <url>", "stepflow 0.8 flag; accepted, no OpenTelemetry export"),
    );
  program.hook("preAction", (cmd) => {
    applyGlobalFlags(withEnv(cmd.opts() as GlobalFlags), writeWarning);
  });
}

/** `flags` with each missing one taken from its `STEPFLOW_*` variable (when readable). */
export function withEnv(
  flags: GlobalFlags,
  env: (name: string) => string | undefined = readGrantedEnv,
): GlobalFlags {
  const out: GlobalFlags = { ...flags };
  for (const [key, name] of Object.entries(GLOBAL_FLAG_ENV) as [keyof GlobalFlags, string][]) {
    if (name === undefined || out[key] !== undefined) continue;
    const v = env(name);
    if (v === undefined || v === "") continue;
    if (key === "traceEnabled" || key === "metricsEnabled") {
      out[key] = ["1", "true", "yes", "on"].includes(v.toLowerCase());
    } else {
      (out as Record<string, unknown>)[key] = v;
    }
  }
  return out;
}

/**
 * Checks and applies the flags (log level, format, file; `--omit-stack-trace`).
 * @throws {UsageError} for an unknown level, format or destination, or a combination stepflow
 *   0.8 rejects (`--log-destination file` without `--log-file`, `otlp` with `--log-file` or
 *   without `--otlp-endpoint`, `--trace-enabled`/`--metrics-enabled` without
 *   `--otlp-endpoint`).
 */
export function applyGlobalFlags(flags: GlobalFlags, writeWarning: (s: string) => void): void {
  const level = (flag: string, v: string | undefined): LogLevel | undefined => {
    if (v === undefined) return undefined;
    if (!isLogLevel(v)) {
      throw new UsageError(`${flag} must be one of ${LEVELS}, got ${JSON.stringify(v)}`);
    }
    return v.toLowerCase() as LogLevel;
  };
  const main = level("--log-level", flags.logLevel);
  const other = level("--other-log-level", flags.otherLogLevel);
  let format: LogFormat | undefined;
  if (flags.logFormat !== undefined) {
    const f = flags.logFormat.toLowerCase();
    if (f !== "json" && f !== "text") {
      throw new UsageError(
        `--log-format must be json or text, got ${JSON.stringify(flags.logFormat)}`,
      );
    }
    format = f;
  }
  const dest = flags.logDestination?.toLowerCase();
  if (dest !== undefined && !["stdout", "file", "otlp"].includes(dest)) {
    throw new UsageError(
      `--log-destination must be stdout, file or otlp, got ${JSON.stringify(flags.logDestination)}`,
    );
  }
  // stepflow 0.8's consistency checks (ObservabilityConfig::validate)
  if (dest === "file" && !flags.logFile) {
    throw new UsageError("--log-destination file needs --log-file FILE");
  }
  if (dest === "otlp" && flags.logFile) {
    throw new UsageError("--log-destination otlp cannot be used with --log-file");
  }
  for (
    const [on, what] of [
      [dest === "otlp", "--log-destination otlp"],
      [flags.traceEnabled, "--trace-enabled"],
      [flags.metricsEnabled, "--metrics-enabled"],
    ] as const
  ) {
    if (on && !flags.otlpEndpoint) throw new UsageError(`${what} needs --otlp-endpoint URL`);
  }
  if (main) setLogLevel(main);
  if (other) setOtherLogLevel(other);
  if (format) setLogFormat(format);
  if (flags.logFile) {
    try {
      setLogFile(flags.logFile);
    } catch (e) {
      rethrowIfPermission(e);
      throw new UsageError(
        `--log-file ${flags.logFile}: cannot open it for writing (${(e as Error).message})`,
        { cause: e },
      );
    }
  }
  cliSettings.logFile = flags.logFile;
  cliSettings.omitStackTrace = flags.omitStackTrace === true;
  if (flags.otlpEndpoint || flags.traceEnabled || flags.metricsEnabled || dest === "otlp") {
    writeWarning(
      "warning: OpenTelemetry export is not built into this engine: --otlp-endpoint, " +
        "--trace-enabled, --metrics-enabled and --log-destination otlp are accepted for " +
        `stepflow 0.8 compatibility and do nothing; logs go to ${
          flags.logFile ? flags.logFile : "stderr"
        } (docs/cli.md)\n`,
    );
  }
}

/** The variable's value when the env permission for it is granted; never prompts. */
function readGrantedEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
