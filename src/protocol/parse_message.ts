/**
 * Parsing protocol messages with exact numbers, fast: {@linkcode parseJson} scans the number
 * tokens first and uses a plain `JSON.parse` when none needs care (measured in
 * bench/protocol_roundtrip.ts: about 2 µs against 7 µs with the exact reviver on an execute
 * response). Kept as the protocol's name for it.
 * @module
 */
import { type JsonValue, parseJson } from "../json/exact_json.ts";

export { numbersArePlain } from "../json/exact_json.ts";

/**
 * Parses one JSON message keeping numbers exact (as {@linkcode parseJson}), using the plain
 * `JSON.parse` when no number needs care.
 * @throws {SyntaxError} on malformed JSON.
 */
export function parseMessage(text: string): JsonValue {
  return parseJson(text);
}
