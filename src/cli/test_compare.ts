/**
 * How `stepflow test` compares a case's result with its expected `output` (stepflow 0.8 §7):
 * both normalised (keys sorted, string `run_id` values replaced by the nil UUID, `backtrace` keys
 * removed), numbers compared by their JSON text (`15` ≠ `15.0`), shown as YAML or a line diff.
 * @module
 */
import { canonicalJson, isJsonObject, type JsonValue } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { TestCase } from "../flow/model.ts";
import { toYaml } from "./yaml_output.ts";

/** The value every string `run_id` is replaced by before comparing (0.8). */
export const NIL_UUID = "00000000-0000-0000-0000-000000000000";

/** Compares a case's expected output with the actual result (normalised, as YAML text). */
export function compareCase(
  c: TestCase,
  actual: FlowResult,
): { pass: boolean; expected: string; actual: string } {
  const a = normalizeResult(actual as unknown as JsonValue);
  if (c.output === undefined) return { pass: false, expected: "", actual: toYaml(a) };
  const e = normalizeResult(c.output);
  return { pass: canonicalJson(a) === canonicalJson(e), expected: toYaml(e), actual: toYaml(a) };
}

/**
 * A FlowResult as 0.8 compares it: keys sorted, any string value of a key `run_id` replaced by
 * {@linkcode NIL_UUID}, any key `backtrace` removed.
 */
export function normalizeResult(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(normalizeResult);
  if (!isJsonObject(v)) return v;
  const out: Record<string, JsonValue> = {};
  for (const k of Object.keys(v).sort()) {
    if (k === "backtrace") continue;
    const x = v[k];
    out[k] = k === "run_id" && typeof x === "string" ? NIL_UUID : normalizeResult(x);
  }
  return out;
}

/** A simple line diff (`--- Expected`, `+++ Actual`, then `-`/`+`/` ` lines; LCS based). */
export function lineDiff(expected: string, actual: string): string {
  const a = expected.split("\n").filter((l, i, arr) => !(l === "" && i === arr.length - 1));
  const b = actual.split("\n").filter((l, i, arr) => !(l === "" && i === arr.length - 1));
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  let out = "--- Expected\n+++ Actual\n";
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out += ` ${a[i]}\n`;
      i++;
      j++;
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out += `-${a[i]}\n`;
      i++;
    } else {
      out += `+${b[j]}\n`;
      j++;
    }
  }
  return out;
}
