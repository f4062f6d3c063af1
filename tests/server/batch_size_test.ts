/**
 * A batch body of tiny inputs is cheap to send and each of its runs costs the service about 5 KB
 * until it starts: 600 KB of `0`s (300,000 inputs) took 1.6 GB, and a body at the 10 MiB limit
 * (5 million inputs) would end the service out of memory. A batch is now refused with 413 above
 * 100,000 inputs, naming the limit and what to do; the service keeps serving.
 * @module
 */
import { assertStrictEquals, assertStringIncludes } from "../_assert.ts";
import { storeFlow, THREE_STEPS, withServer } from "./_server.ts";

Deno.test("POST /batches with 100,001 inputs is a 413 naming the limit; the service goes on", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    const flowId = await storeFlow(s, THREE_STEPS);
    const body = `{"flowId":"${flowId}","inputs":[${new Array(100_001).fill("0").join(",")}]}`;
    const r = await s.call("POST", "/api/v1/batches", body);
    assertStrictEquals(r.status, 413, JSON.stringify(r.body));
    assertStrictEquals(r.body.code, 413);
    assertStringIncludes(r.body.message, "A batch of 100001 inputs");
    assertStringIncludes(r.body.message, "100000 inputs");
    assertStringIncludes(r.body.message, "split the inputs into several batches");
    const ok = await s.call("POST", "/api/v1/batches", { flowId, inputs: [{ q: "still here" }] });
    assertStrictEquals(ok.status, 200);
  }));
