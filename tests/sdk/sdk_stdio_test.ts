import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { execCtx, FakeEngine, startStdio } from "../plugins/stepflow/_helpers.ts";
import type { FlowFailed, FlowSuccess } from "../../src/flow/flow_result.ts";

const ARGS = ["run", "--quiet", "--no-prompt", "sdk_worker.ts"];

Deno.test("SDK over stdio: list, execute, validation, errors, context calls", async () => {
  const engine = new FakeEngine();
  const p = await startStdio(ARGS, { command: "deno", engine });
  try {
    const list = await p.listComponents();
    const add = list.find((c) => c.component === "/add")!;
    assertEquals(add.description, "Adds a and b");
    assertEquals((add.input_schema as { required: string[] }).required, ["a", "b"]);
    assertEquals(
      (list.find((c) => c.component === "/shout")!.input_schema as { type: string }).type,
      "object",
    );

    assertEquals(await p.execute("/add", { a: 2, b: 3 }, execCtx(engine)), {
      outcome: "success",
      result: { sum: 5 },
    });
    assertEquals(await p.execute("/noop", {}, execCtx(engine)), {
      outcome: "success",
      result: null,
    });

    // invalid input: a JSON-RPC error naming the field, before the handler runs
    const bad = await p.execute("/add", { a: 1, b: "2" }, execCtx(engine)) as FlowFailed;
    assertEquals(bad.error.code, -32602);
    assertStringIncludes(bad.error.message, "Invalid input for component /add: input.b:");
    const bad2 = await p.execute("/shout", { times: 2 }, execCtx(engine)) as FlowFailed;
    assertEquals(bad2.error.message, "Invalid input for component /shout: input.text: is required");
    const bad3 = await p.execute("/shout", { text: 1 }, execCtx(engine)) as FlowFailed;
    assertEquals(
      bad3.error.message,
      "Invalid input for component /shout: input.text: must be string",
    );

    assertEquals(await p.execute("/fail", {}, execCtx(engine)), {
      outcome: "failed",
      error: { code: 422, message: "nothing to do", data: { why: "test" } },
    });
    assertEquals(await p.execute("/throws", {}, execCtx(engine)), {
      outcome: "failed",
      error: { code: -32003, message: "Component execution failed: kaboom" },
    });
    const nf = await p.execute("/nope", {}, execCtx(engine)) as FlowFailed;
    assertEquals(nf.error.code, -32001);

    const ctx = await p.execute("/context", { x: 3 }, execCtx(engine, "stepA")) as FlowSuccess;
    const out = ctx.result as Record<string, unknown>;
    assertEquals(out.got, { x: 3 });
    assertEquals(out.evaluated, { outcome: "success", result: { doubled: 6 } });
    assertEquals(out.attempt, 1);
    assertEquals(out.step, "stepA");
    // stable across attempts and resumes: run id + step id
    assertEquals(out.idempotency_key, "00000000-0000-4000-8000-0000000000aa/stepA");

    assertEquals(await p.execute("/meta", {}, execCtx(engine, "stepM")), {
      outcome: "success",
      result: { flow_metadata: { name: "fake" }, step_metadata: { step: "stepM" } },
    });
    const batch = await p.execute("/batch", {}, execCtx(engine)) as FlowSuccess;
    assertEquals((batch.result as { details: { total_runs: number } }).details.total_runs, 1);
  } finally {
    await p.close();
  }
});

Deno.test("SDK over stdio: 100 concurrent executes and a 20 MB output", async () => {
  const engine = new FakeEngine();
  const p = await startStdio(ARGS, { command: "deno", engine });
  try {
    const rs = await Promise.all(
      Array.from({ length: 100 }, (_, i) => p.execute("/add", { a: i, b: 1 }, execCtx(engine))),
    );
    assertEquals(rs.map((r) => (r as FlowSuccess).result), rs.map((_, i) => ({ sum: i + 1 })));
    const size = 20 * 1024 * 1024;
    const big = await p.execute("/big", { size }, execCtx(engine)) as FlowSuccess;
    const text = (big.result as { text: string }).text;
    assert(text === 'é✓ab"\\\n'.repeat(Math.ceil(size / 7)).slice(0, size), "20 MB text differs");
  } finally {
    await p.close();
  }
});

Deno.test("SDK over stdio: an output that is not JSON is a failed step, the worker keeps running", async () => {
  const engine = new FakeEngine();
  const p = await startStdio(ARGS, { command: "deno", engine });
  try {
    const big = await p.execute("/bigint", {}, execCtx(engine)) as FlowFailed;
    assertEquals(big.error, {
      code: -32603,
      message: "the result cannot be sent as JSON: Do not know how to serialize a BigInt",
    });
    const cyc = await p.execute("/cyclic", {}, execCtx(engine)) as FlowFailed;
    assertEquals(
      cyc.error.message,
      "the result cannot be sent as JSON: Converting circular structure to JSON",
    );
    const obj = await p.execute("/throws_object", {}, execCtx(engine)) as FlowFailed;
    assertEquals(obj.error.message, 'Component execution failed: {"reason":"plain object"}');
    // the same process still answers (it did not crash and restart)
    assertEquals(await p.execute("/noop", {}, execCtx(engine)), {
      outcome: "success",
      result: null,
    });
  } finally {
    await p.close();
  }
});
