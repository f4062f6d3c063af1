/**
 * `engine.resume` in the library (issue 12): re-driving a failed run keeps its successful results
 * (replayed, not executed), and the runs that cannot be resumed say why.
 */
import { assertEquals, assertRejects, assertStrictEquals, withTempDir } from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { RunNotResumableError } from "../../src/errors.ts";
import { flow, testConfig } from "./_engine_helpers.ts";

const READ = flow(`steps:
  - id: hello
    component: /builtin/create_messages
    input: { user_prompt: { $from: { workflow: input }, path: who } }
  - id: read
    component: /builtin/load_file
    input: { path: { $from: { workflow: input }, path: file }, after: { $from: { step: hello } } }
  - id: each
    component: /builtin/map
    input:
      items: { $from: { step: read }, path: "$.data.items" }
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - id: m
              component: /builtin/create_messages
              input: { user_prompt: { $from: { workflow: input } } }
          output: { $from: { step: m }, path: "$.messages[0].content" }
output:
  hello: { $from: { step: hello }, path: "$.messages[0].content" }
  each: { $from: { step: each }, path: results }
`);

Deno.test("engine.resume re-drives a failed run from its failed step; successful steps are replayed", async () => {
  await withTempDir(async (dir) => {
    const engine = await Engine.create(testConfig());
    try {
      let started = 0;
      engine.observe({ stepStarted: () => started++ });
      const file = `${dir}/items.json`;
      const first = engine.start(READ, { who: "Ada", file });
      const r1 = await first.result;
      assertStrictEquals(r1.outcome, "failed");
      await Deno.writeTextFile(file, '{"items": ["x", "y"]}');
      started = 0;
      const handle = await engine.resume(first.runId);
      assertStrictEquals(handle.runId, first.runId);
      assertEquals(await handle.result, {
        outcome: "success",
        result: {
          hello: "Ada",
          each: [{ outcome: "success", result: "x" }, { outcome: "success", result: "y" }],
        },
      });
      // read, each, and the two item runs' step: `hello` was not executed again
      assertStrictEquals(started, 4);
      const run = await engine.store.getRun(first.runId);
      assertStrictEquals(run?.status, "completed");
      // nested runs are stored with their keys
      const nested = await engine.store.listRuns({ parentRunId: first.runId });
      assertEquals(
        nested.map((r) => r.runKey).sort(),
        [`${first.runId}/each/0`, `${first.runId}/each/1`],
      );
      const e = await assertRejects(() => engine.resume(first.runId), RunNotResumableError);
      assertStrictEquals((e as RunNotResumableError).reason, "completed");
      const n = await assertRejects(() => engine.resume(nested[0].runId), RunNotResumableError);
      assertStrictEquals((n as RunNotResumableError).reason, "nested");
      const u = await assertRejects(
        () => engine.resume(crypto.randomUUID()),
        RunNotResumableError,
      );
      assertStrictEquals((u as RunNotResumableError).reason, "unknown");
    } finally {
      await engine.close();
    }
  });
});

Deno.test("engine.resume refuses a run executing in this engine", async () => {
  const engine = await Engine.create(testConfig());
  try {
    const held = flow(`steps:
  - id: w
    component: /builtin/wait_for
    input: { name: go }
output: { $from: { step: w } }
`);
    const h = engine.start(held, {});
    for (let i = 0; i < 100 && (await engine.store.getRun(h.runId))?.status !== "paused"; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const e = await assertRejects(() => engine.resume(h.runId), RunNotResumableError);
    assertStrictEquals((e as RunNotResumableError).reason, "owned");
    await engine.store.putSignal({ runId: h.runId, name: "go", data: 7 });
    engine.notifySignal(h.runId);
    assertEquals(await h.result, { outcome: "success", result: 7 });
  } finally {
    await engine.close();
  }
});

Deno.test("two parallel waits in one run each take their own signal; the run is paused until both did", async () => {
  const engine = await Engine.create(testConfig());
  try {
    const two = flow(`steps:
  - { id: a, component: /builtin/wait_for, input: { name: approve } }
  - { id: b, component: /builtin/wait_for, input: { name: approve, schema: { type: integer } } }
output: { a: { $from: { step: a } }, b: { $from: { step: b } } }
`);
    const h = engine.start(two, {});
    const status = async () => (await engine.store.getRun(h.runId))?.status;
    for (let i = 0; i < 100 && await status() !== "paused"; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await engine.store.putSignal({ runId: h.runId, name: "approve", data: 1 });
    engine.notifySignal(h.runId);
    for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 2));
    assertStrictEquals(await status(), "paused"); // one step still waits
    await engine.store.putSignal({ runId: h.runId, name: "approve", data: 2 });
    engine.notifySignal(h.runId);
    const r = await h.result;
    assertStrictEquals(r.outcome, "success");
    const got = (r as unknown as { result: { a: number; b: number } }).result;
    assertEquals([got.a, got.b].sort(), [1, 2]);
    assertStrictEquals(await status(), "completed");
  } finally {
    await engine.close();
  }
});
