/**
 * What a mock component's behavior `result` means (stepflow 0.8 §2.2): a FlowResult returned as
 * is, or `{error: "<text>"}`, a plugin error. Read by the mock plugin and by the config validator
 * (which reports a bad one with its position before anything starts).
 * @module
 */
import { isJsonObject, type JsonValue, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";

/** A behavior's answer: a result, or a plugin error with this message. */
export type Answer = { kind: "result"; result: FlowResult } | { kind: "error"; message: string };

/**
 * What a behavior's `result` means (also used by the validator to report a bad one with its
 * position before anything starts).
 * @throws {Error} when `result` is neither a FlowResult nor `{error: "<text>"}`.
 */
export function toAnswer(plugin: string, component: string, result: JsonValue): Answer {
  if (isJsonObject(result)) {
    if (result.outcome === "success" && Object.hasOwn(result, "result")) {
      return { kind: "result", result: { outcome: "success", result: result.result } };
    }
    if (result.outcome === "skipped") {
      return {
        kind: "result",
        result: typeof result.reason === "string"
          ? { outcome: "skipped", reason: result.reason }
          : { outcome: "skipped" },
      };
    }
    if (result.outcome === "failed" && isJsonObject(result.error)) {
      return { kind: "result", result: result as unknown as FlowResult };
    }
    if (!Object.hasOwn(result, "outcome") && typeof result.error === "string") {
      return { kind: "error", message: result.error };
    }
  }
  throw new Error(
    `plugins.${plugin}.components["${component}"]: a behavior result must be a FlowResult ` +
      `({outcome: success, result: ...}, {outcome: failed, error: {code, message}}, ` +
      `{outcome: skipped}) or {error: "<text>"}, got ${stringifyJson(result)}`,
  );
}
