/**
 * Step overrides (stepflow 0.8 §1.7): `{ "<stepId>": { "$type"?: "merge_patch" | "json_patch",
 * "value": <patch> } }`, applied to the steps' camelCase JSON before the run. The flow id stays
 * the original flow's.
 * @module
 */
import type { Flow, Step } from "../flow/model.ts";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { ExecutionError } from "../errors.ts";

/**
 * Returns `flow` with `overrides` applied (the same object when there is nothing to apply).
 * @throws {ExecutionError} code 400 `Failed to apply overrides` for an unknown step id, a bad
 * override shape, `$type: json_patch` ("Unsupported override type", as in 0.8), or a patch that
 * leaves the step without a string `id`/`component`.
 */
export function applyOverrides(flow: Flow, overrides: JsonValue | undefined): Flow {
  if (overrides === undefined || overrides === null) return flow;
  if (!isJsonObject(overrides)) throw overrideError("overrides must be an object of step ids");
  const keys = Object.keys(overrides);
  if (keys.length === 0) return flow;
  const steps = [...(flow.steps ?? [])];
  for (const stepId of keys) {
    const o = overrides[stepId];
    const i = steps.findIndex((s) => s.id === stepId);
    if (i < 0) throw overrideError(`Step '${stepId}' not found in flow`);
    if (!isJsonObject(o) || !Object.hasOwn(o, "value")) {
      throw overrideError(`override for step '${stepId}' must be {"$type"?, "value": <patch>}`);
    }
    const type = o.$type ?? "merge_patch";
    if (type !== "merge_patch") {
      throw overrideError(`Unsupported override type '${String(type)}' for step '${stepId}'`);
    }
    const patched = mergePatch(steps[i] as unknown as JsonValue, o.value);
    if (
      !isJsonObject(patched) || typeof patched.id !== "string" ||
      typeof patched.component !== "string"
    ) {
      throw overrideError(
        `override for step '${stepId}' leaves it without a string id and component`,
      );
    }
    steps[i] = patched as unknown as Step;
  }
  return { ...flow, steps };
}

/** RFC 7386 JSON merge patch: objects merge key by key, `null` deletes, anything else replaces. */
export function mergePatch(target: JsonValue, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return patch;
  const out: Record<string, JsonValue> = isJsonObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

function overrideError(detail: string): ExecutionError {
  return new ExecutionError("Failed to apply overrides", [
    { error: "Failed to apply overrides", attachments: [detail] },
  ], 400);
}
