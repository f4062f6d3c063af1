/**
 * A small zod-free shape checker for the common case of a flow or config (issue 17, goal 5: cold
 * start). Its parsers mirror the zod models (src/flow/model.ts, src/config/model.ts) field by
 * field and give the same output for the values they accept: the same keys in the same order
 * (schema order, unknown keys dropped, defaults filled in, a `null` optional field read as a key
 * holding `undefined`), JSON values passed through by reference. Whatever they are not sure of
 * (a wrong type, a raw number, a missing required key, a `retry` policy) they **decline**, and the
 * caller asks the zod model, which gives the value or the error message. So a valid common flow
 * is read without loading zod, and every error still comes from zod.
 *
 * tests/flow/fast_shape_test.ts compares both on every flow and config in the repository and on
 * mutations of them.
 * @module
 */
import { isJsonObject } from "../json/exact_json.ts";

/** Thrown by a parser that cannot decide; caught by {@linkcode tryShape}. */
class Decline {}
const DECLINE = new Decline();

/** Parses one value; throws {@linkcode DECLINE} when unsure. */
export type Parser = (v: unknown) => unknown;

/** How an object field is read. */
export interface Field {
  /** "req": must be present; "opt": may be absent; "default": absent or undefined → `fill()`. */
  kind: "req" | "opt" | "nullable" | "default";
  parse: Parser;
  fill?: () => unknown;
}

/** An object parser with its keys (schema order). */
export interface ObjectParser extends Parser {
  keys: string[];
}

/** Runs `parser` on `value`: its output, or undefined when it declined. */
export function tryShape<T>(parser: Parser, value: unknown): T | undefined {
  try {
    return parser(value) as T;
  } catch (e) {
    if (e === DECLINE) return undefined;
    throw e;
  }
}

/** Declines always (a part of the model left to zod). */
export const decline: Parser = () => {
  throw DECLINE;
};

/** A string. */
export const str: Parser = (v) => {
  if (typeof v !== "string") throw DECLINE;
  return v;
};

/** A boolean. */
export const bool: Parser = (v) => {
  if (typeof v !== "boolean") throw DECLINE;
  return v;
};

/** Any JSON value but `undefined`, by reference (zod: `JsonValueSchema`, a `z.custom`). */
export const json: Parser = (v) => {
  if (v === undefined) throw DECLINE;
  return v;
};

/** A plain number that is a safe integer ≥ `min` (zod: `z.number().int()` and a bound). */
export function int(min: number, max = Number.MAX_SAFE_INTEGER): Parser {
  return (v) => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) throw DECLINE;
    return v;
  };
}

/** Exactly `value`. */
export function literal(value: string): Parser {
  return (v) => {
    if (v !== value) throw DECLINE;
    return v;
  };
}

/** One of `values`. */
export function oneOf(...values: string[]): Parser {
  return (v) => {
    if (typeof v !== "string" || !values.includes(v)) throw DECLINE;
    return v;
  };
}

/** A string matching `re`. */
export function matching(re: RegExp): Parser {
  return (v) => {
    if (typeof v !== "string" || !re.test(v)) throw DECLINE;
    return v;
  };
}

/** The first of `parsers` that accepts (zod: `z.union`, whose members do not overlap here). */
export function either(...parsers: Parser[]): Parser {
  return (v) => {
    for (const p of parsers) {
      try {
        return p(v);
      } catch (e) {
        if (e !== DECLINE) throw e;
      }
    }
    throw DECLINE;
  };
}

/** A list, each item parsed (a new array). */
export function list(item: Parser): Parser {
  return (v) => {
    if (!Array.isArray(v)) throw DECLINE;
    const out = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = item(v[i]);
    return out;
  };
}

/** A mapping of string keys to parsed values (zod: `z.record(z.string(), ...)`; a new object). */
export function record(item: Parser): Parser {
  return (v) => {
    if (!isJsonObject(v)) throw DECLINE;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      if (k === "__proto__") throw DECLINE;
      out[k] = item(v[k]);
    }
    return out;
  };
}

/** A required field. */
export const req = (parse: Parser): Field => ({ kind: "req", parse });
/** An optional field: absent stays absent, `undefined` stays `undefined` (zod: `.optional()`). */
export const opt = (parse: Parser): Field => ({ kind: "opt", parse });
/** An optional field where `null` reads as absent (src/flow/model.ts's `nullable`). */
export const nullable = (parse: Parser): Field => ({ kind: "nullable", parse });
/** A field with a default when absent or `undefined` (zod: `.default(...)`). */
export const withDefault = (parse: Parser, fill: () => unknown): Field => ({
  kind: "default",
  parse,
  fill,
});

/**
 * An object (zod: `z.object`, which drops unknown keys): a new object with the fields in `shape`
 * order. A field absent from the value is absent from the output unless it has a default; a field
 * present with `undefined` (or `null` for a nullable one) is present with `undefined`.
 */
export function object(shape: Record<string, Field>): ObjectParser {
  const keys = Object.keys(shape);
  const fields = keys.map((k) => shape[k]);
  const parser = (v: unknown) => {
    if (!isJsonObject(v)) throw DECLINE;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const f = fields[i];
      const present = Object.hasOwn(v, k);
      const x = present ? v[k] : undefined;
      switch (f.kind) {
        case "req":
          if (!present) throw DECLINE;
          out[k] = f.parse(x);
          break;
        case "opt":
          if (present) out[k] = x === undefined ? undefined : f.parse(x);
          break;
        case "nullable":
          if (present) out[k] = x === undefined || x === null ? undefined : f.parse(x);
          break;
        case "default":
          out[k] = x === undefined ? f.fill!() : f.parse(x);
          break;
      }
    }
    return out;
  };
  return Object.assign(parser, { keys });
}

/**
 * Objects told apart by the string at `key` (zod: `z.discriminatedUnion`); `members` maps each
 * value of `key` to its object parser.
 */
export function byKey(
  key: string,
  members: Record<string, ObjectParser>,
): Parser & { members: Record<string, ObjectParser> } {
  const parser = (v: unknown) => {
    if (!isJsonObject(v)) throw DECLINE;
    const tag = v[key];
    if (typeof tag !== "string" || !Object.hasOwn(members, tag)) throw DECLINE;
    return members[tag](v);
  };
  return Object.assign(parser, { members });
}

/** The keys of each member of a {@linkcode byKey} union, by the value of its key. */
export function keysByTag(union: { members: Record<string, ObjectParser> }): Record<
  string,
  string[]
> {
  const out: Record<string, string[]> = {};
  for (const [tag, member] of Object.entries(union.members)) out[tag] = member.keys;
  return out;
}
