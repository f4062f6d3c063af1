/**
 * Retention of the in-memory store by step results (issue 17, goals 3 and 6): a few large runs
 * weigh as much as many small ones; the run that finished last is always readable.
 */
import { assertEquals, assertStrictEquals } from "../_assert.ts";
import { MemoryStateStore } from "../../src/state/memory.ts";
import type { RunRecord } from "../../src/state/store.ts";

function run(id: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: id,
    flowId: "f".repeat(64),
    status: "running",
    input: null,
    createdAt: "2024-01-01T00:00:00.000Z",
    ...extra,
  };
}

/** A finished top-level run with `steps` step results (half of them in one nested run). */
function finishedRun(s: MemoryStateStore, id: string, steps: number): void {
  s.createRun(run(id));
  s.createRun(run(`${id}-kid`, { parentRunId: id }));
  for (let i = 0; i < steps; i++) {
    const target = i % 2 === 0 ? id : `${id}-kid`;
    s.recordStepResult(target, {
      stepIndex: i >> 1,
      stepId: `s${i}`,
      result: { outcome: "success", result: i },
    });
  }
  s.completeRun(`${id}-kid`, "completed");
  s.completeRun(id, "completed", { outcome: "success", result: id });
}

Deno.test("MemoryStateStore evicts the oldest finished runs beyond maxFinishedSteps", async () => {
  const s = new MemoryStateStore({ maxFinishedSteps: 100 });
  finishedRun(s, "a", 40);
  finishedRun(s, "b", 40);
  assertStrictEquals((await s.getRun("a"))?.status, "completed");
  finishedRun(s, "c", 40); // 120 > 100: a goes, with its nested run
  assertStrictEquals(await s.getRun("a"), undefined);
  assertStrictEquals(await s.getRun("a-kid"), undefined);
  assertEquals(await s.getStepResults("a"), []);
  assertEquals((await s.listRuns({ rootOnly: true })).map((r) => r.runId).sort(), ["b", "c"]);
  assertStrictEquals((await s.getStepResults("b-kid")).length, 20);
});

Deno.test("MemoryStateStore keeps the last finished run whatever its size", async () => {
  const s = new MemoryStateStore({ maxFinishedSteps: 10 });
  finishedRun(s, "big", 50);
  const r = await s.getRun("big");
  assertEquals(r?.result, { outcome: "success", result: "big" });
  assertStrictEquals((await s.getStepResults("big")).length, 25);
  // a running run does not count and is never evicted
  s.createRun(run("live"));
  s.recordStepResult("live", {
    stepIndex: 0,
    stepId: "x",
    result: { outcome: "success", result: 1 },
  });
  finishedRun(s, "next", 4);
  assertStrictEquals(await s.getRun("big"), undefined);
  assertStrictEquals((await s.getRun("live"))?.status, "running");
  assertStrictEquals((await s.getRun("next"))?.status, "completed");
});

Deno.test("MemoryStateStore: a deleted run leaves the retention account", async () => {
  const s = new MemoryStateStore({ maxFinishedSteps: 100 });
  finishedRun(s, "a", 60);
  await s.deleteRun("a");
  finishedRun(s, "b", 60);
  finishedRun(s, "c", 30); // 90 kept: b is not evicted for a's steps
  assertStrictEquals((await s.getRun("b"))?.status, "completed");
});

/** A flow blob's data: a flow named `name` (a distinct id per name). */
function flowData(name: string) {
  return { schema: "https://stepflow.org/schemas/v1/flow.json", name, steps: [] };
}

Deno.test("MemoryStateStore evicts flows beyond maxFlows, keeping those of the runs it holds", async () => {
  // before: every flow blob was kept for the life of the process (`serve`'s POST /flows grew
  // without bound)
  const s = new MemoryStateStore({ maxFlows: 2, maxFinishedRuns: 1 });
  const used = s.putBlob(flowData("used"), "flow");
  s.createRun(run("r1", { flowId: used }));
  const ids = ["a", "b", "c"].map((n) => s.putBlob(flowData(n), "flow"));
  // 4 flows > 2: `a` (the oldest no run uses) and `b` go; `used` has a running run, `c` is last
  assertStrictEquals(await s.getBlob(ids[0]), undefined);
  assertStrictEquals(await s.getBlob(ids[1]), undefined);
  assertStrictEquals((await s.getBlob(used))?.blobType, "flow");
  assertStrictEquals((await s.getBlob(ids[2]))?.blobType, "flow");
  assertStrictEquals(s.flowEvicted(ids[0]), true);
  assertStrictEquals(s.flowEvicted(ids[0].toUpperCase()), true);
  assertStrictEquals(s.hasBlob(ids[0]), false);
  assertStrictEquals(s.flowEvicted("0".repeat(64)), false);
  // the run finishes and stays retained: its flow stays (`c`, which no run uses, goes)
  s.completeRun("r1", "completed", { outcome: "success", result: 1 });
  const d = s.putBlob(flowData("d"), "flow");
  assertStrictEquals(s.hasBlob(used), true);
  assertStrictEquals(s.hasBlob(ids[2]), false);
  // r1 is evicted (maxFinishedRuns 1) when r2 finishes: its flow is no longer held
  s.createRun(run("r2", { flowId: d }));
  s.completeRun("r2", "completed");
  assertStrictEquals(await s.getRun("r1"), undefined);
  s.putBlob(flowData("e"), "flow");
  assertStrictEquals(s.hasBlob(used), false);
  assertStrictEquals(s.flowEvicted(used), true);
  assertStrictEquals(s.hasBlob(d), true); // r2 uses it
  // stored again: kept, no longer "evicted"
  s.putBlob(flowData("a"), "flow");
  assertStrictEquals(s.hasBlob(ids[0]), true);
  assertStrictEquals(s.flowEvicted(ids[0]), false);
  // data blobs are not flows: never evicted by this limit
  const data = Array.from({ length: 5 }, (_, i) => s.putBlob({ i }, "data"));
  for (const id of data) assertStrictEquals(s.hasBlob(id), true);
});

Deno.test("MemoryStateStore keeps the flows of nested runs while their root run is held", () => {
  const s = new MemoryStateStore({ maxFlows: 1 });
  const outer = s.putBlob(flowData("outer"), "flow");
  s.createRun(run("top", { flowId: outer }));
  const inner = s.putBlob(flowData("inner"), "flow");
  s.createRun(run("kid", { flowId: inner, parentRunId: "top" }));
  s.completeRun("kid", "completed");
  s.putBlob(flowData("other"), "flow");
  assertStrictEquals(s.hasBlob(outer), true);
  assertStrictEquals(s.hasBlob(inner), true);
});
