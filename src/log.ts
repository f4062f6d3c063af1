/**
 * Logging to stderr (stdout is kept for results). Level from `STEPFLOW_LOG_LEVEL` or
 * {@linkcode setLogLevel}: `error` < `warn` < `info` < `debug`. Default `warn`, so a
 * `stepflow run` prints only what needs attention.
 * @module
 */

/** Log levels, most severe first. */
export type LogLevel = "error" | "warn" | "info" | "debug";
const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

let current: LogLevel = "warn";
let sink: (line: string) => void = (line) => {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
  } catch {
    // stderr closed: nothing to do
  }
};

/** Sets the minimum level printed. */
export function setLogLevel(level: LogLevel): void {
  current = level;
}

/** Replaces where log lines go (tests capture them). Returns the previous sink. */
export function setLogSink(fn: (line: string) => void): (line: string) => void {
  const prev = sink;
  sink = fn;
  return prev;
}

/** Something that removes secrets from text (src/execution/secrets.ts `Redactor`). */
export interface LogRedactor {
  redact(text: string): string;
}

const redactors = new Set<LogRedactor>();

/**
 * Redacts every log line with `redactor` until the returned function is called (the engine
 * does this for the duration of a run that has secrets). Lines of every logger are redacted,
 * as a worker's stderr may echo any run's secret.
 */
export function redactLogs(redactor: LogRedactor): () => void {
  redactors.add(redactor);
  return () => void redactors.delete(redactor);
}

/** A logger that prefixes lines with a tag (e.g. the plugin name). */
export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  enabled(level: LogLevel): boolean;
}

/** A logger whose lines read `[level] tag: message`. */
export function logger(tag: string): Logger {
  const emit = (level: LogLevel, msg: string) => {
    if (ORDER[level] > ORDER[current]) return;
    let line = `[${level}] ${tag}: ${msg}`;
    for (const r of redactors) line = r.redact(line);
    sink(line);
  };
  return {
    error: (m) => emit("error", m),
    warn: (m) => emit("warn", m),
    info: (m) => emit("info", m),
    debug: (m) => emit("debug", m),
    enabled: (level) => ORDER[level] <= ORDER[current],
  };
}

try {
  const env = Deno.env.get("STEPFLOW_LOG_LEVEL");
  if (env && env in ORDER) current = env as LogLevel;
} catch {
  // no --allow-env: keep the default
}
