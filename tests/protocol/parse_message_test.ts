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

Deno.test("parseMessage() skips the number scan only where every number is exact: seeded random messages", () => {
  // number tokens around the fast path's edges, in every value position, with whitespace
  const numbers = [
    "0",
    "-0",
    "7",
    "-7",
    "123456789012345",
    "-123456789012345",
    "1234567890123456",
    "-1234567890123456",
    "9007199254740993",
    "1.0",
    "-0.0",
    "1.5",
    "1e5",
    "1E5",
    "1e-7",
    "0.1",
    "100",
    "-100",
    "999999999999999",
    "12345678901234567890",
  ];
  const spaces = ["", " ", "\n", "\t", "  \r\n"];
  let seed = 17;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const value = (depth: number): string => {
    const sp = spaces[rand(spaces.length)];
    switch (depth > 3 ? rand(3) : rand(6)) {
      case 0:
      case 1:
        return sp + numbers[rand(numbers.length)];
      case 2:
        return sp + JSON.stringify(`s: ${numbers[rand(numbers.length)]}, [${rand(99)}`);
      case 3:
        return sp + "[" + Array.from({ length: rand(4) }, () => value(depth + 1)).join(",") + "]";
      default:
        return sp + "{" +
          Array.from({ length: rand(4) }, (_, i) => `"k${i}":${value(depth + 1)}`).join(",") +
          "}";
    }
  };
  for (let i = 0; i < 3000; i++) {
    const text = `{"jsonrpc":"2.0","id":"${crypto.randomUUID()}","result":{"output":${value(0)}}}`;
    assertEquals(stringifyJson(parseMessage(text)), stringifyJson(parseJson(text)), text);
  }
});
