/**
 * Logging. Lines go to stderr (stdout is kept for results), or to a file with
 * {@linkcode setLogFile} (`--log-file`). Levels: `off` < `error` < `warn` < `info` < `debug` <
 * `trace`; default `warn`, so a `stepflow run` prints only what needs attention. Format `text`
 * (`[level] tag: message`) or `json` (one object per line:
 * `{"timestamp":"<RFC 3339>","level":"WARN","target":"<tag>","message":"..."}`, the fields of
 * stepflow 0.8's JSON layout that apply here).
 *
 * Set from the CLI's global flags (`--log-level`, `--other-log-level`, `--log-format`,
 * `--log-file`, src/cli/global_flags.ts) or, without them, `STEPFLOW_LOG_LEVEL` (read when this
 * module loads, ignored without the env permission).
 * @module
 */

import { terminalSafe } from "./core/terminal_text.ts";

/** Log levels, most severe first (stepflow 0.8's names; `off` prints nothing). */
export type LogLevel = "off" | "error" | "warn" | "info" | "debug" | "trace";
/** The levels a message can have. */
export type MessageLevel = Exclude<LogLevel, "off">;
/** Every level, in order. */
export const LOG_LEVELS: readonly LogLevel[] = ["off", "error", "warn", "info", "debug", "trace"];
const ORDER: Record<LogLevel, number> = {
  off: -1,
  error: 0,
  warn: 1,
  info: 2,
  debug: 3,
  trace: 4,
};

/** `text` (`[level] tag: message`) or `json` (one JSON object per line). */
export type LogFormat = "text" | "json";

let current: LogLevel = "warn";
/** Level of npm libraries' own loggers (none writes any yet); undefined: `current`. */
let other: LogLevel | undefined;
let format: LogFormat = "text";
const encoder = new TextEncoder();
const stderrSink = (line: string) => {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing to do
  }
};
let sink: (line: string) => void = stderrSink;
let file: Deno.FsFile | undefined;

/** True when `s` names a level (case-insensitive). */
export function isLogLevel(s: string): boolean {
  return Object.hasOwn(ORDER, s.toLowerCase());
}

/** Sets the minimum level printed. */
export function setLogLevel(level: LogLevel): void {
  current = level;
}

/** The minimum level printed. */
export function logLevel(): LogLevel {
  return current;
}

/**
 * Sets the level of libraries' own loggers (stepflow 0.8 `--other-log-level`); `undefined`
 * makes it follow {@linkcode setLogLevel}.
 */
export function setOtherLogLevel(level: LogLevel | undefined): void {
  other = level;
}

/** The level libraries log at (`--other-log-level`, else the main level). */
export function libraryLogLevel(): LogLevel {
  return other ?? current;
}

/** Sets the line format. */
export function setLogFormat(f: LogFormat): void {
  format = f;
}

/** The line format. */
export function logFormat(): LogFormat {
  return format;
}

/**
 * Sends log lines to `path` (appended, created if missing) instead of stderr, as stepflow 0.8's
 * `--log-file` does. `undefined` goes back to stderr.
 * @throws {Deno.errors.*} when the file cannot be opened (e.g. `NotCapable` without
 *   `--allow-write` on it).
 */
export function setLogFile(path: string | undefined): void {
  file?.close();
  file = undefined;
  if (path === undefined) {
    sink = stderrSink;
    return;
  }
  const f = Deno.openSync(path, { append: true, create: true, write: true });
  file = f;
  sink = (line) => {
    try {
      const bytes = encoder.encode(line + "\n");
      let off = 0;
      while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
    } catch {
      // the file went away: nothing to do
    }
  };
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
  enabled(level: MessageLevel): boolean;
}

/** One formatted line (exported for tests). */
export function formatLogLine(level: MessageLevel, tag: string, msg: string, at = new Date()) {
  if (format === "json") {
    return JSON.stringify({
      timestamp: at.toISOString(),
      level: level.toUpperCase(),
      target: tag,
      message: msg,
    });
  }
  // a step service's message or a step id may hold an ESC: shown escaped, never obeyed
  return terminalSafe(`[${level}] ${tag}: ${msg}`);
}

/** A logger whose lines read `[level] tag: message` (or JSON with `--log-format json`). */
export function logger(tag: string): Logger {
  const emit = (level: MessageLevel, msg: string) => {
    if (ORDER[level] > ORDER[current]) return;
    let m = msg;
    for (const r of redactors) m = r.redact(m);
    sink(formatLogLine(level, tag, m));
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
  const env = Deno.env.get("STEPFLOW_LOG_LEVEL")?.toLowerCase();
  if (env && isLogLevel(env)) current = env as LogLevel;
} catch {
  // no --allow-env: keep the default
}
