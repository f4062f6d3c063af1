/**
 * The zod-free flow and config readers (src/flow/fast_model.ts, src/config/fast_model.ts) against
 * the zod models they stand in for: the same keys, and for every value they accept, zod accepts
 * it too and gives the same output (keys, key order, `undefined` fields, values). Checked on every
 * flow and config in the repository (and the conformance files when present), nested flows
 * included, and on mutations of each: a field removed, set to null, undefined, another type.
 */
import { assert, assertEquals } from "../_assert.ts";
import { CONFORMANCE_DIR, CONFORMANCE_PRESENT } from "../_conformance.ts";
import { parseDocument } from "../../src/core/document.ts";
import { tryShape } from "../../src/core/fast_shape.ts";
import {
  isJsonObject,
  isRawNumber,
  type JsonValue,
  rawNumber,
  stringifyJson,
} from "../../src/json/exact_json.ts";
import {
  ErrorActionSchema,
  ExampleSchema,
  FLOW_SCHEMA_URL,
  FlowSchema,
  SkipActionSchema,
  StepSchema,
  TestCaseSchema,
  TestConfigSchema,
} from "../../src/flow/model.ts";
import {
  ConfigSchema,
  MockComponentSchema,
  PluginConfigSchema,
  RouteConditionSchema,
  RouteRuleSchema,
  StateStoreConfigSchema,
} from "../../src/config/model.ts";
import {
  EXAMPLE_KEYS,
  FLOW_KEYS,
  ON_ERROR_KEYS,
  ON_SKIP_KEYS,
  STEP_KEYS,
  TEST_CASE_KEYS,
  TEST_KEYS,
} from "../../src/flow/keys.ts";
import { fastFlow } from "../../src/flow/fast_model.ts";
import {
  fastConfig,
  fastMockComponent,
  fastPluginConfig,
  fastRouteCondition,
  fastRouteRule,
  fastStateStore,
} from "../../src/config/fast_model.ts";
import { keysByTag, type Parser } from "../../src/core/fast_shape.ts";
import { parseFlowValue } from "../../src/flow/load_file.ts";
import { withChecks } from "../../src/core/lazy_check.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

type Shape = { shape: Record<string, unknown> };
const keysOf = (s: Shape) => Object.keys(s.shape);
function keysByDiscriminator(u: { options: readonly Shape[] }, key: string) {
  const out: Record<string, string[]> = {};
  for (const m of u.options) {
    for (const v of (m.shape[key] as { values: Set<string> }).values) out[v] = keysOf(m);
  }
  return out;
}

Deno.test("fast models: the validators' key tables are the zod models' keys", () => {
  assertEquals(FLOW_KEYS, keysOf(FlowSchema));
  assertEquals(STEP_KEYS, keysOf(StepSchema));
  assertEquals(ON_ERROR_KEYS, keysByDiscriminator(ErrorActionSchema, "action"));
  assertEquals(ON_SKIP_KEYS, keysByDiscriminator(SkipActionSchema, "action"));
  assertEquals(TEST_KEYS, keysOf(TestConfigSchema));
  assertEquals(TEST_CASE_KEYS, keysOf(TestCaseSchema));
  assertEquals(EXAMPLE_KEYS, keysOf(ExampleSchema));
  assertEquals(fastConfig.keys, keysOf(ConfigSchema));
  assertEquals(keysByTag(fastPluginConfig), keysByDiscriminator(PluginConfigSchema, "type"));
  assertEquals(fastMockComponent.keys, keysOf(MockComponentSchema));
  assertEquals(fastRouteRule.keys, keysOf(RouteRuleSchema));
  assertEquals(fastRouteCondition.keys, keysOf(RouteConditionSchema));
  assertEquals(keysByTag(fastStateStore), keysByDiscriminator(StateStoreConfigSchema, "type"));
});

/** Same keys in the same order (own, `undefined` ones too), same values; raw numbers by text. */
function sameOutput(a: unknown, b: unknown, at = "$"): string | undefined {
  if (a === b) return undefined;
  if (isRawNumber(a) || isRawNumber(b)) {
    return stringifyJson(a) === stringifyJson(b) ? undefined : `${at}: ${a} vs ${b}`;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${at}: lengths ${a.length} vs ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = sameOutput(a[i], b[i], `${at}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.join() !== kb.join()) return `${at}: keys ${ka} vs ${kb}`;
    for (const k of ka) {
      const d = sameOutput(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        `${at}.${k}`,
      );
      if (d) return d;
    }
    return undefined;
  }
  return `${at}: ${String(a)} vs ${String(b)}`;
}

/** Every file of the repository's examples, fixtures and docs that parses as a document. */
function documents(): { file: string; value: JsonValue }[] {
  const out: { file: string; value: JsonValue }[] = [];
  const walk = (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) walk(path);
      else if (/\.(ya?ml|jsonc?)$/.test(e.name)) {
        try {
          const text = Deno.readTextFileSync(path);
          const format = e.name.endsWith(".jsonc")
            ? "jsonc"
            : e.name.endsWith(".json")
            ? "json"
            : "yaml";
          out.push({ file: path, value: parseDocument(text, format, path).value });
        } catch {
          // not a document this test can read (a syntax error kept as a failing input)
        }
      }
    }
  };
  for (const d of ["examples", "tests/fixtures", "docs"]) walk(`${ROOT}${d}`);
  if (CONFORMANCE_PRESENT) walk(CONFORMANCE_DIR);
  return out;
}

/** Every mapping inside `value` for which `pick` holds (nested ones too). */
function collect(value: JsonValue, pick: (v: Record<string, JsonValue>) => boolean): JsonValue[] {
  const out: JsonValue[] = [];
  const walk = (v: JsonValue) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (isJsonObject(v)) {
      if (pick(v)) out.push(v);
      for (const k of Object.keys(v)) walk(v[k]);
    }
  };
  walk(value);
  return out;
}

const REPLACEMENTS: (JsonValue | undefined)[] = [
  undefined,
  null,
  1,
  0,
  -1,
  1.5,
  "x",
  "30s",
  true,
  [],
  {},
  rawNumber("2.0"),
];

/** `value` with the field at each path (up to `limit` of them) removed or replaced. */
function* mutations(value: JsonValue, limit = 400): Generator<JsonValue> {
  const paths: (string | number)[][] = [];
  const walk = (v: JsonValue, at: (string | number)[]) => {
    if (paths.length >= limit) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...at, i]));
    else if (isJsonObject(v)) {
      for (const k of Object.keys(v)) {
        paths.push([...at, k]);
        walk(v[k], [...at, k]);
      }
    }
  };
  walk(value, []);
  const replaceAt = (
    v: JsonValue,
    path: (string | number)[],
    r: JsonValue | undefined | "delete",
  ): JsonValue => {
    const [head, ...rest] = path;
    if (Array.isArray(v)) {
      const copy = v.slice();
      copy[head as number] = replaceAt(v[head as number], rest, r);
      return copy;
    }
    const copy: Record<string, JsonValue> = { ...(v as Record<string, JsonValue>) };
    if (rest.length > 0) copy[head] = replaceAt(copy[head], rest, r);
    else if (r === "delete") delete copy[head];
    else copy[head] = r as JsonValue;
    return copy;
  };
  for (const p of paths) {
    yield replaceAt(value, p, "delete");
    for (const r of REPLACEMENTS) yield replaceAt(value, p, r);
  }
}

function compare(
  fast: Parser,
  zod: { safeParse(v: unknown): { success: boolean; data?: unknown } },
  value: JsonValue,
  where: string,
): boolean {
  const mine = tryShape(fast, value);
  if (mine === undefined) return false;
  const theirs = zod.safeParse(value);
  assert(theirs.success, `${where}: the fast reader accepts what zod rejects`);
  const diff = sameOutput(mine, theirs.data);
  assert(diff === undefined, `${where}: outputs differ at ${diff}`);
  return true;
}

Deno.test("fast models: same output as zod on every flow and config, and their mutations", () => {
  const docs = documents();
  let flows = 0, configs = 0, accepted = 0, tried = 0;
  for (const { file, value } of docs) {
    for (const flow of collect(value, (v) => v.schema === FLOW_SCHEMA_URL)) {
      flows++;
      assert(
        compare(fastFlow, FlowSchema, flow, file) || !FlowSchema.safeParse(flow).success ||
          JSON.stringify(flow).includes('"retry"') || /\d\.0\b|e\d/.test(stringifyJson(flow)),
        `${file}: a plain valid flow declined by the fast reader`,
      );
      for (const m of mutations(flow)) {
        tried++;
        if (compare(fastFlow, FlowSchema, m, file)) accepted++;
      }
    }
    for (const config of collect(value, (v) => isJsonObject(v.plugins))) {
      configs++;
      compare(fastConfig, ConfigSchema, config, file);
      for (const m of mutations(config)) {
        tried++;
        if (compare(fastConfig, ConfigSchema, m, file)) accepted++;
      }
    }
  }
  assert(flows > 50 && configs > 20, `too few documents: ${flows} flows, ${configs} configs`);
  assert(accepted > tried / 10, `the fast readers accept too little: ${accepted} of ${tried}`);
});

Deno.test("fast models: a declined flow is read by zod once it is loaded (withChecks)", async () => {
  // a retry policy is left to zod; parseFlowValue alone may not have it loaded
  const value = {
    schema: FLOW_SCHEMA_URL,
    steps: [{ id: "a", component: "/x", onError: { action: "retry", maxRetries: 2, extra: 1 } }],
  };
  const loaded = await withChecks(() => parseFlowValue(value));
  assertEquals(loaded.flow, FlowSchema.parse(value));
});
