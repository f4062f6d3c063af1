import { numbersArePlain, parseMessage } from "../../src/protocol/parse_message.ts";
import { parseJson, stringifyJson } from "../../src/json/exact_json.ts";
import { assert, assertEquals } from "../_assert.ts";

Deno.test("parseMessage() gives the same value and text as parseJson()", () => {
  const cases = [
    '{"jsonrpc":"2.0","id":"6f0c-1e5","result":{"output":{"n":1,"x":4.56,"a":[1,2,-3]}}}',
    '{"a":15.0,"b":9007199254740993,"c":1e400,"d":-0,"e":0.0000001,"f":1.50}',
    '{"a":[1,2.0],"b":"x: 15.0, [1e5"}',
    '{"a" : 12345678901234567890, "b":\t0.30000000000000004}',
    "15.0",
    "-0",
    "42",
    '"text with 1.0"',
    '{"id":"0193a1b2-0000-7000-8000-000000000001","n":100000000000000000000}',
  ];
  for (const text of cases) {
    assertEquals(stringifyJson(parseMessage(text)), stringifyJson(parseJson(text)), text);
  }
});

Deno.test("numbersArePlain() takes the fast path only when every number survives", () => {
  assert(numbersArePlain('{"jsonrpc":"2.0","id":"3e4-7E9","result":{"output":[1,2.5,-3]}}'));
  assert(!numbersArePlain('{"a":15.0}'));
  assert(!numbersArePlain('{"a":[1,1e3]}'));
  assert(!numbersArePlain('{"a":9007199254740993}'));
  assert(!numbersArePlain('{"a":-0}'));
  assert(!numbersArePlain("1.0"));
  // the same pattern inside a string only costs the slow path
  assert(!numbersArePlain('{"s":"a:1.0"}'));
});

Deno.test("parseMessage() refuses a message nested more than 520 levels, keeping its id", async () => {
  const { MessageTooDeepError } = await import("../../src/protocol/parse_message.ts");
  const { nestedDeeperThan } = await import("../../src/json/exact_json.ts");
  const deep = (n: number, inner = "") => "[".repeat(n) + inner + "]".repeat(n);
  assert(!nestedDeeperThan(JSON.parse(deep(512)), 512));
  assert(nestedDeeperThan(JSON.parse(deep(513)), 512));
  assert(!nestedDeeperThan(15, 0));
  assert(nestedDeeperThan({ a: [{}] }, 2) && !nestedDeeperThan({ a: [{}] }, 3));
  for (const inner of ["1", "1.0"]) {
    try {
      parseMessage(`{"jsonrpc":"2.0","id":7,"result":${deep(100_000, inner)}}`);
      throw new Error("no error");
    } catch (e) {
      assert(e instanceof MessageTooDeepError, String(e));
      // the plain parse keeps the id; the exact parser overflows before it has a value
      assertEquals(e.id, inner === "1" ? 7 : undefined);
    }
  }
  parseMessage(`{"jsonrpc":"2.0","id":7,"result":{"output":${deep(512)}}}`);
});
