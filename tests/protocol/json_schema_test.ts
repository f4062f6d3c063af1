import { Ajv2020 } from "ajv/dist/2020.js";
import { protocolJsonSchemaText } from "../../src/protocol/json_schema.ts";
import { assert } from "../_assert.ts";

const path = new URL("../../schemas/protocol.json", import.meta.url);

Deno.test("schemas/protocol.json matches the zod schemas (regenerate: deno task schemas:protocol)", async () => {
  const onDisk = await Deno.readTextFile(path);
  assert(
    onDisk === protocolJsonSchemaText(),
    "schemas/protocol.json is out of date: run `deno run -A src/protocol/json_schema.ts`",
  );
});

Deno.test("schemas/protocol.json accepts the messages of the 0.8 reference exchange", async () => {
  const schema = JSON.parse(await Deno.readTextFile(path));
  const ajv = new Ajv2020({ strict: false });
  const validate = ajv.compile(schema);
  const good = [
    { jsonrpc: "2.0", id: "6f0c", method: "initialize", params: { runtime_protocol_version: 1 } },
    { jsonrpc: "2.0", id: "6f0c", result: { server_protocol_version: 1 } },
    { jsonrpc: "2.0", method: "initialized", params: {} },
    {
      jsonrpc: "2.0",
      id: "a1",
      method: "components/execute",
      params: {
        component: "/udf",
        input: { x: 3 },
        attempt: 1,
        observability: { run_id: "0193", flow_id: "9f", step_id: "s" },
      },
    },
    { jsonrpc: "2.0", id: "b2", method: "blobs/get", params: { blob_id: "ab" } },
    { jsonrpc: "2.0", id: "a1", error: { code: -32003, message: "boom" } },
  ];
  for (const m of good) {
    assert(validate(m), `${JSON.stringify(m)}: ${ajv.errorsText(validate.errors)}`);
  }
  const bad = [
    { jsonrpc: "2.0", id: "x", method: "blobs/put", params: { data: 1 } },
    { jsonrpc: "2.0", id: "x", method: "components/execute", params: { component: { name: "x" } } },
    { jsonrpc: "1.0", id: "x", result: {} },
  ];
  for (const m of bad) assert(!validate(m), `should be rejected: ${JSON.stringify(m)}`);
});
