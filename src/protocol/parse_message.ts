/**
 * Parsing protocol messages with exact numbers, fast: {@linkcode parseJson} scans the number
 * tokens first and uses a plain `JSON.parse` when none needs care (measured in
 * bench/protocol_roundtrip.ts: about 2 µs against 7 µs with the exact reviver on an execute
 * response). Kept as the protocol's name for it.
 *
 * A message nested more than {@linkcode MAX_JSON_DEPTH} levels deep is refused with a
 * {@linkcode MessageTooDeepError}, as flow files are: such a value would overflow the stack of
 * whatever handles it next (printing the run's result, storing it).
 * @module
 */
import {
  isJsonObject,
  type JsonValue,
  MAX_JSON_DEPTH,
  nestedDeeperThan,
  parseJson,
} from "../json/exact_json.ts";

export { numbersArePlain } from "../json/exact_json.ts";

/**
 * Levels a message may nest beyond {@linkcode MAX_JSON_DEPTH}: the envelope around a value
 * (`result.output`, `error.data`, `params.input`). The value itself is held to the limit where it
 * is used (a step's output, src/execution/step_policy.ts).
 */
export const ENVELOPE_DEPTH = 8;

/**
 * A message nested more than {@linkcode MAX_JSON_DEPTH} (+ {@linkcode ENVELOPE_DEPTH}) levels
 * deep. `value` is the parsed message when it could be parsed (handle it with care: only
 * iterative code may walk it); `id` and `method` are its own (at its top level), if any.
 */
export class MessageTooDeepError extends SyntaxError {
  override name = "MessageTooDeepError";
  constructor(
    readonly value?: JsonValue,
    readonly id?: string | number,
    readonly method?: string,
  ) {
    super(`the message is nested more than ${MAX_JSON_DEPTH} levels deep`);
  }
}

/**
 * Matches wherever a number may need care: a number token in value position (after `:`, `,` or
 * `[`) with a fraction or an exponent, with 16 digits or more, or `-0`; or a text that does not
 * start with an object or array. Where it finds nothing, every number token is an integer of at
 * most 15 digits, which a plain `JSON.parse` reads exactly, so the token scan of
 * {@linkcode parseJson} (as costly as the parse itself: ~0.7 µs on an execute answer) is skipped.
 * A match inside a string only costs that scan.
 */
const MAY_NEED_CARE = /^\s*[^\s{[]|[:,[]\s*(?:-?\d+[.eE]|-?\d{16}|-0(?!\d))/;

/**
 * Parses one JSON message keeping numbers exact (as {@linkcode parseJson}), using the plain
 * `JSON.parse` when no number needs care.
 * @throws {SyntaxError} on malformed JSON.
 * @throws {MessageTooDeepError} when it nests more than {@linkcode MAX_JSON_DEPTH} +
 *   {@linkcode ENVELOPE_DEPTH} levels.
 */
export function parseMessage(text: string): JsonValue {
  let value: JsonValue;
  try {
    value = MAY_NEED_CARE.test(text) ? parseJson(text) : JSON.parse(text);
  } catch (e) {
    // the exact-number reviver recurses: a deep message overflows the stack
    if (e instanceof RangeError) throw new MessageTooDeepError();
    throw e;
  }
  // each level takes two characters at least: short messages need no walk
  const max = MAX_JSON_DEPTH + ENVELOPE_DEPTH;
  if (text.length > 2 * max && nestedDeeperThan(value, max)) {
    const id = isJsonObject(value) &&
        (typeof value.id === "string" || typeof value.id === "number")
      ? value.id
      : undefined;
    const method = isJsonObject(value) && typeof value.method === "string"
      ? value.method
      : undefined;
    throw new MessageTooDeepError(value, id, method);
  }
  return value;
}
