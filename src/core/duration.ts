/**
 * Durations in flows and configs (extension, issue 5): a number of milliseconds, or a string
 * such as `"500ms"`, `"30s"`, `"1.5m"`, `"1h"`. See docs/error-handling.md.
 * @module
 */
import { isNumber, toNumber } from "../json/exact_json.ts";

/** Milliseconds per unit accepted by {@linkcode parseDuration}. */
export const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/** The largest duration accepted, in ms (the largest delay `setTimeout` can wait: ~24.8 days). */
export const MAX_DURATION_MS = 2_147_483_647;

const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/;

/** Options of {@linkcode parseDuration}. */
export interface ParseDurationOptions {
  /** Whether `0` (or `"0s"`) is accepted. @default false */
  allowZero?: boolean;
  /** Names the value in error messages, e.g. `$.steps[0].timeout`. @default "duration" */
  what?: string;
}

/**
 * Parses a duration into whole milliseconds (fractions round to the nearest ms).
 *
 * @example
 * ```ts ignore
 * parseDuration("30s"); // 30000
 * parseDuration(250); // 250
 * parseDuration("1.5m"); // 90000
 * ```
 * @param value a non-negative integer number of ms, or a string `<number><unit>` with unit
 *   `ms`, `s`, `m` or `h` (a raw JSON number from exact_json is accepted too).
 * @returns the duration in ms.
 * @throws {RangeError} when the value is not a duration, is zero (unless `allowZero`), negative,
 *   fractional ms as a number, or above {@linkcode MAX_DURATION_MS}; the message names `what`,
 *   the constraint and the actual value.
 */
export function parseDuration(value: unknown, options: ParseDurationOptions = {}): number {
  const { allowZero = false, what = "duration" } = options;
  let ms: number;
  if (isNumber(value)) {
    const n = toNumber(value);
    if (!Number.isInteger(n)) {
      throw new RangeError(
        `${what} must be a whole number of milliseconds or a string such as "30s", got ${
          show(value)
        }`,
      );
    }
    ms = n;
  } else if (typeof value === "string") {
    const m = DURATION_RE.exec(value);
    if (!m) {
      throw new RangeError(
        `${what} must be a number of milliseconds or a string such as "500ms", "30s", "5m" or "1h", got ${
          show(value)
        }`,
      );
    }
    ms = Math.round(Number(m[1]) * DURATION_UNITS_MS[m[2]]);
  } else {
    throw new RangeError(
      `${what} must be a number of milliseconds or a string such as "30s", got ${show(value)}`,
    );
  }
  if (ms < 0 || (ms === 0 && !allowZero)) {
    throw new RangeError(
      `${what} must be ${allowZero ? "zero or more" : "greater than zero"}, got ${show(value)}`,
    );
  }
  if (ms > MAX_DURATION_MS) {
    throw new RangeError(
      `${what} must be at most ${MAX_DURATION_MS} ms (about 24 days), got ${show(value)}`,
    );
  }
  return ms;
}

/** Formats ms for messages: `250ms`, `30s`, `1.5s`, `5m`, `1h`. */
export function formatDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1_000) return `${Number((ms / 1_000).toFixed(3))}s`;
  return `${ms}ms`;
}

function show(v: unknown): string {
  try {
    return typeof v === "string" ? JSON.stringify(v) : String(v);
  } catch {
    return "a value";
  }
}
