/**
 * Printing values as YAML with exact numbers (`15.0` stays `15.0`, `9007199254740993` stays
 * exact), for `--output x.yaml` and `stepflow test` output.
 * @module
 */
import { Scalar, stringify } from "yaml";
import { isJsonObject, isRawNumber, setOwn } from "../json/exact_json.ts";

/** `value` as a YAML document (block style, two-space indent, keys in insertion order). */
export function toYaml(value: unknown): string {
  return stringify(prepare(value), { lineWidth: 0, aliasDuplicateObjects: false });
}

function prepare(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(prepare);
  if (isRawNumber(v)) return rawScalar(v.rawJSON);
  if (isJsonObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      setOwn(out, k, prepare(v[k]));
    }
    return out;
  }
  return v;
}

function rawScalar(text: string): unknown {
  if (/^-?\d+$/.test(text)) return BigInt(text);
  const m = /^-?\d+\.(\d+)$/.exec(text);
  if (m) {
    const s = new Scalar(Number(text));
    s.minFractionDigits = m[1].length;
    return s;
  }
  return Number(text);
}
