/**
 * What the graph of a flow (src/visualize/graph.ts) reads out of a step's templates: their
 * references, compiled by src/flow/template.ts (an invalid one is left out with a warning, the
 * valid ones beside it kept), and the flow documents nested in a step's input.
 * @module
 */
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { FLOW_SCHEMA_URL } from "../flow/model.ts";
import { jsonPath } from "../core/diagnostics.ts";
import { type CompiledRef, compileTemplate, forEachRef, TemplateError } from "../flow/template.ts";

/** A JSON path as segments. */
export type Path = (string | number)[];

/**
 * The references of a template at JSON path `at`; invalid ones are left out with a warning in
 * `warnings` (the valid ones beside them are kept).
 */
export function templateRefs(template: JsonValue, at: Path, warnings: string[]): CompiledRef[] {
  const out: CompiledRef[] = [];
  try {
    forEachRef(compileTemplate(template, at), (r) => out.push(r));
    return out;
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
  }
  // one reference is invalid: compile each reference on its own to keep the valid ones
  const walk = (t: JsonValue, p: Path) => {
    if (Array.isArray(t)) {
      t.forEach((x, i) => walk(x, [...p, i]));
    } else if (isJsonObject(t)) {
      if (Object.hasOwn(t, "$from")) {
        try {
          forEachRef(compileTemplate(t, p), (r) => out.push(r));
        } catch (e) {
          if (!(e instanceof TemplateError)) throw e;
          warnings.push(`${jsonPath(e.at)}: invalid reference left out: ${e.message}`);
        }
      } else if (!Object.hasOwn(t, "$literal")) {
        for (const k of Object.keys(t)) walk(t[k], [...p, k]);
      }
    }
  };
  walk(template, at);
  return out;
}

/**
 * Calls `fn` for every flow document (an object whose `schema` is the flow schema URL) inside a
 * step input, `$literal` wrappers included, with its path in the input. References (`$from`
 * objects) are not searched.
 */
export function findNestedFlows(
  v: JsonValue,
  at: Path,
  fn: (v: JsonValue, at: Path) => void,
): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => findNestedFlows(x, [...at, i], fn));
    return;
  }
  if (!isJsonObject(v)) return;
  if (v.schema === FLOW_SCHEMA_URL) {
    fn(v, at);
    return;
  }
  if (Object.hasOwn(v, "$from")) return;
  for (const k of Object.keys(v)) {
    // `$literal` is a wrapper, not a key of the value: leave it out of the path
    findNestedFlows(v[k], k === "$literal" ? at : [...at, k], fn);
  }
}
