import { assertStrictEquals } from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { blobId } from "../../src/state/blob_id.ts";
import { benchConfig, chainFlow, fanOutFlow } from "../../bench/_engine_shapes.ts";

// Correctness of the benchmark shapes (timing is in bench/engine_report.ts, not here).
Deno.test("Engine.run() runs a 10,000-step chain and a 10,000-step fan-out with a join", async () => {
  const engine = await Engine.create(benchConfig());
  try {
    const chain = await engine.run(chainFlow(10_000), { prompt: "hello" });
    assertStrictEquals(JSON.stringify(chain), '{"outcome":"success","result":"hello"}');
    const runId = crypto.randomUUID();
    const fan = await engine.run(fanOutFlow(10_000), { prompt: "hi" }, { runId });
    assertStrictEquals(
      JSON.stringify(fan),
      JSON.stringify({ outcome: "success", result: blobId(new Array(10_000).fill("hi")) }),
    );
    assertStrictEquals((await engine.store.getStepResults(runId)).length, 10_001);
  } finally {
    await engine.close();
  }
});
