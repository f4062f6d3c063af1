import {
  classifyMessage,
  errorText,
  ExecuteParams,
  requestText,
  resultText,
} from "../../src/protocol/envelope.ts";
import { parseJson } from "../../src/json/exact_json.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";

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

Deno.test("requestText() writes components/execute params field by field, as JSON.stringify does", () => {
  const inputs = [
    {},
    null,
    false,
    0,
    -0,
    1e21,
    'text with "quotes", \\ and \n, \u2028 and é, 😀',
    [1, [2, { a: null }], "x"],
    { nested: { deep: [{ k: "v" }] }, n: 12345678901234567890n.toString() },
    parseJson('{"big":12345678901234567890,"f":1.50}'), // raw numbers stay as they were written
    { when: new Date(0) } as unknown, // toJSON
  ];
  const ids = ["0193a1b2-0000-7000-8000-000000000001", 7, 'id "odd"\n'];
  for (const input of inputs) {
    for (const id of ids) {
      const obs = { run_id: 'run "1"', flow_id: "9f".repeat(32), step_id: 'step\n"é"' };
      const p = new ExecuteParams('/comp"onent', input as never, 2, obs);
      const plain = { component: p.component, input: p.input, attempt: 2, observability: obs };
      assertEquals(
        requestText(id, "components/execute", p),
        JSON.stringify({ jsonrpc: "2.0", id, method: "components/execute", params: plain }),
      );
      // written as a plain object by anything else
      assertEquals(JSON.stringify(p), JSON.stringify(plain));
    }
  }
  // no input: the key is left out, as JSON.stringify does
  const none = new ExecuteParams("/c", undefined as never, 1, {
    run_id: "r",
    flow_id: "f",
    step_id: "s",
  });
  assertEquals(
    requestText("a", "components/execute", none),
    '{"jsonrpc":"2.0","id":"a","method":"components/execute","params":{"component":"/c","attempt":1,"observability":{"run_id":"r","flow_id":"f","step_id":"s"}}}',
  );
  // an input that is not JSON throws, as before (the peer turns it into a failed call)
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assertThrows(() =>
    requestText(
      "a",
      "components/execute",
      new ExecuteParams("/c", cyclic as never, 1, none.observability),
    )
  );
  assertThrows(() =>
    requestText(
      "a",
      "components/execute",
      new ExecuteParams("/c", 1n as never, 1, none.observability),
    )
  );
});
