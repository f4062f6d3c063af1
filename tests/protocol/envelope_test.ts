import { classifyMessage, errorText, resultText } from "../../src/protocol/envelope.ts";
import { parseJson } from "../../src/json/exact_json.ts";
import { assert, assertEquals } from "../_assert.ts";

const c = (text: string) => classifyMessage(parseJson(text));

Deno.test("classifyMessage() tells requests, notifications and responses apart by keys", () => {
  assertEquals(c('{"jsonrpc":"2.0","id":"a","method":"blobs/get","params":{"blob_id":"x"}}'), {
    kind: "request",
    id: "a",
    method: "blobs/get",
    params: { blob_id: "x" },
  });
  assertEquals(c('{"jsonrpc":"2.0","method":"initialized","params":{}}'), {
    kind: "notification",
    method: "initialized",
    params: {},
  });
  assertEquals(c('{"jsonrpc":"2.0","id":7,"result":{"output":1}}'), {
    kind: "response",
    id: 7,
    result: { output: 1 },
  });
  assertEquals(c('{"jsonrpc":"2.0","id":"b","error":{"code":-32003,"message":"boom"}}'), {
    kind: "response",
    id: "b",
    error: { code: -32003, message: "boom" },
  });
});

Deno.test("classifyMessage() rejects messages that are not JSON-RPC 2.0", () => {
  assertEquals(c('{"id":1,"result":1}').kind, "invalid");
  assertEquals(c('{"jsonrpc":"2.0","id":1}').kind, "invalid");
  assertEquals(
    c('{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":""}}').kind,
    "invalid",
  );
  assertEquals(c('{"jsonrpc":"2.0","id":null,"result":{}}').kind, "invalid");
  assertEquals(c('{"jsonrpc":"2.0","id":1.5,"result":{}}').kind, "invalid");
  assertEquals(c("[1,2]").kind, "invalid");
  assertEquals(c('{"jsonrpc":"2.0","id":1,"error":{"message":"no code"}}').kind, "invalid");
});

Deno.test("classifyMessage() keeps a large integer id exact", () => {
  const m = c('{"jsonrpc":"2.0","id":9007199254740993,"method":"blobs/get"}');
  assertEquals(JSON.stringify(m.kind === "request" ? m.id : null), "9007199254740993");
});

Deno.test("resultText/errorText never throw: a result or error data that is not JSON becomes an error response", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assertEquals(JSON.parse(resultText("a", { n: 1n })), {
    jsonrpc: "2.0",
    id: "a",
    error: {
      code: -32603,
      message: "the result cannot be sent as JSON: Do not know how to serialize a BigInt",
    },
  });
  assertEquals(
    JSON.parse(resultText(1, cyclic)).error.message,
    "the result cannot be sent as JSON: Converting circular structure to JSON",
  );
  const e = JSON.parse(errorText("b", { code: 7, message: "bad", data: cyclic as never }));
  assertEquals(e.error.code, 7);
  assertEquals(e.error.data, undefined);
  assert(e.error.message.startsWith("bad (error data left out: "));
});
