/**
 * Validation of the error-handling and limit settings of a flow (extension, issue 5):
 * `onError: {action: retry, ...}` settings, step `timeout`s and literal `max_concurrency` of
 * `map` steps. The flow validator (src/flow/validate.ts, through src/config/preflight.ts) adds these diagnostics to its own.
 * @module
 */
import type { Diagnostic, SourceMap } from "../core/diagnostics.ts";
import { jsonPath } from "../core/diagnostics.ts";
import type { Flow } from "./model.ts";
import { isJsonObject, isNumber, toNumber } from "../json/exact_json.ts";
import { parseDuration } from "../core/duration.ts";
import { checkRetrySettings, type RetrySettings } from "./retry_policy.ts";

/**
 * Every problem in `flow`'s retry settings, step timeouts and literal map concurrency limits,
 * as `error` diagnostics (code `invalid_retry`, `invalid_timeout`, `invalid_limit`) with the
 * JSON path and, given `source`, the file position.
 */
export function policyDiagnostics(flow: Flow, source?: SourceMap): Diagnostic[] {
  const out: Diagnostic[] = [];
  const add = (segments: (string | number)[], code: string, message: string, hint?: string) => {
    const d: Diagnostic = { level: "error", message, path: jsonPath(segments), code };
    const position = source?.positionOf(segments);
    if (position) d.position = position;
    if (hint) d.hint = hint;
    out.push(d);
  };
  (flow.steps ?? []).forEach((step, i) => {
    const onError = step.onError as unknown;
    if (isJsonObject(onError) && onError.action === "retry") {
      for (const p of checkRetrySettings(onError as unknown as RetrySettings)) {
        const key = p.key.replace(/\[(\d+)\]$/, "");
        const index = /\[(\d+)\]$/.exec(p.key);
        const segs: (string | number)[] = ["steps", i, "onError", key];
        if (index) segs.push(Number(index[1]));
        add(segs, "invalid_retry", `Step '${step.id}': ${p.message}`, "see docs/error-handling.md");
      }
    }
    if (step.timeout !== undefined) {
      try {
        parseDuration(step.timeout, { what: "timeout" });
      } catch (e) {
        add(
          ["steps", i, "timeout"],
          "invalid_timeout",
          `Step '${step.id}': ${(e as Error).message}`,
          'use a number of milliseconds or a string such as "30s"',
        );
      }
    }
    const lastSegment = step.component.split("/").pop();
    const input = step.input as unknown;
    if (lastSegment === "map" && isJsonObject(input) && "max_concurrency" in input) {
      const v = input.max_concurrency;
      // a number that is not a positive integer, or a literal of another kind (an object is a
      // template, resolved at run time, and null means no limit)
      const bad = isNumber(v)
        ? !(Number.isInteger(toNumber(v)) && toNumber(v) > 0)
        : v !== null && typeof v !== "object";
      if (bad) {
        add(
          ["steps", i, "input", "max_concurrency"],
          "invalid_limit",
          `Step '${step.id}': max_concurrency must be a positive integer, got ${JSON.stringify(v)}`,
          "leave it out for no limit",
        );
      }
    }
  });
  return out;
}
