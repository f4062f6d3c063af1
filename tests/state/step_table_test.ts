/**
 * The in-memory store's compact per-run parts (issue 17): a step table keeps its one step in
 * fields and moves to parallel arrays on a second step index; a batch's runs are kept as parallel
 * lists. Readers see the same records either way.
 */
import { assertEquals, assertStrictEquals } from "../_assert.ts";
import { StepTable } from "../../src/state/step_table.ts";
import { MemoryStateStore } from "../../src/state/memory.ts";
import type { FlowResult } from "../../src/core/flow_result.ts";

const ok = (v: number): FlowResult => ({ outcome: "success", result: v });

Deno.test("step table: one step kept in fields, replaced at the same index", () => {
  const t = new StepTable();
  assertStrictEquals(t.length, 0);
  assertStrictEquals(t.record(0), undefined);
  t.set({ stepIndex: 2, stepId: "c", result: ok(1), component: "/x", attempt: 1 });
  assertStrictEquals(t.length, 3);
  assertStrictEquals(t.result(0), undefined);
  assertEquals(t.result(2), ok(1));
  assertEquals(t.record(2), {
    stepIndex: 2,
    stepId: "c",
    result: ok(1),
    component: "/x",
    attempt: 1,
  });
  t.set({ stepIndex: 2, stepId: "c", result: ok(2), attempt: 2, durationMs: 5 });
  assertEquals(t.record(2), {
    stepIndex: 2,
    stepId: "c",
    result: ok(2),
    attempt: 2,
    durationMs: 5,
  });
  assertStrictEquals(t.length, 3);
});

Deno.test("step table: a second step index moves the first into the arrays, in any order", () => {
  const t = new StepTable();
  t.set({ stepIndex: 3, stepId: "d", result: ok(3), durationMs: 7 });
  t.set({ stepIndex: 1, stepId: "b", result: ok(1), component: "/b" });
  t.set({ stepIndex: 5, stepId: "f", result: ok(5) });
  assertStrictEquals(t.length, 6);
  assertEquals(t.record(3), { stepIndex: 3, stepId: "d", result: ok(3), durationMs: 7 });
  assertEquals(t.record(1), { stepIndex: 1, stepId: "b", result: ok(1), component: "/b" });
  assertEquals(t.record(5), { stepIndex: 5, stepId: "f", result: ok(5) });
  for (const i of [0, 2, 4, 6]) assertStrictEquals(t.record(i), undefined);
  t.set({ stepIndex: 3, stepId: "d", result: ok(33) });
  assertEquals(t.result(3), ok(33));
});

Deno.test("a batch's runs keep their indexes and lose deleted runs", async () => {
  const s = new MemoryStateStore();
  s.createBatch({
    batchId: "b",
    flowId: "f",
    totalInputs: 3,
    status: "running",
    createdAt: "2024-01-01T00:00:00.000Z",
  });
  for (const [id, i] of [["r2", 2], ["r0", 0], ["r1", 1]] as const) {
    s.createRun({
      runId: id,
      flowId: "f",
      status: "running",
      input: i,
      createdAt: "2024-01-01T00:00:00.000Z",
    });
    s.addBatchRun("b", id, i);
  }
  assertEquals(await s.getBatchRuns("b"), [
    { runId: "r2", index: 2 },
    { runId: "r0", index: 0 },
    { runId: "r1", index: 1 },
  ]);
  // what a reader gets is its own copy
  (await s.getBatchRuns("b")).pop();
  assertStrictEquals((await s.getBatchRuns("b")).length, 3);
  await s.deleteRun("r0");
  assertEquals(await s.getBatchRuns("b"), [{ runId: "r2", index: 2 }, { runId: "r1", index: 1 }]);
  await s.deleteRun("r2");
  await s.deleteRun("r1");
  assertEquals(await s.getBatchRuns("b"), []);
  assertStrictEquals(await s.getBatch("b"), undefined);
});

Deno.test("step table: length is one more than the highest index set, past the arrays' room", () => {
  const t = new StepTable();
  t.set({ stepIndex: 0, stepId: "s0", result: ok(0) });
  t.set({ stepIndex: 1, stepId: "s1", result: ok(1) });
  assertStrictEquals(t.length, 2);
  assertStrictEquals(t.record(2), undefined);
  for (let i = 40; i >= 2; i -= 3) t.set({ stepIndex: i, stepId: `s${i}`, result: ok(i) });
  assertStrictEquals(t.length, 41);
  for (let i = 0; i < 45; i++) {
    const has = i <= 1 || (i <= 40 && (40 - i) % 3 === 0);
    assertEquals(t.result(i), has ? ok(i) : undefined, `step ${i}`);
  }
});

Deno.test("a batch's runs added in item order (indexes not kept) read their indexes, also once one comes out of order and after a delete", async () => {
  const s = new MemoryStateStore();
  s.createBatch({
    batchId: "b",
    flowId: "f",
    totalInputs: 5,
    status: "running",
    createdAt: "2024-01-01T00:00:00.000Z",
  });
  const add = (id: string, i: number) => {
    s.createRun({
      runId: id,
      flowId: "f",
      status: "running",
      input: i,
      createdAt: "2024-01-01T00:00:00.000Z",
    });
    s.addBatchRun("b", id, i);
  };
  for (let i = 0; i < 3; i++) add(`r${i}`, i);
  assertEquals((await s.getBatchRuns("b")).map((r) => r.index), [0, 1, 2]);
  await s.deleteRun("r1");
  assertEquals(await s.getBatchRuns("b"), [{ runId: "r0", index: 0 }, { runId: "r2", index: 2 }]);
  add("r4", 4);
  add("r3", 3);
  assertEquals((await s.getBatchRuns("b")).map((r) => [r.runId, r.index]), [
    ["r0", 0],
    ["r2", 2],
    ["r4", 4],
    ["r3", 3],
  ]);
  const t = new MemoryStateStore();
  t.createBatch({
    batchId: "c",
    flowId: "f",
    totalInputs: 2,
    status: "running",
    createdAt: "2024-01-01T00:00:00.000Z",
  });
  t.addBatchRun("c", "x", 0);
  t.addBatchRun("c", "y", 5);
  assertEquals(await t.getBatchRuns("c"), [{ runId: "x", index: 0 }, { runId: "y", index: 5 }]);
});
