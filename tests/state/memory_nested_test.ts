/**
 * The in-memory store keeps a finished nested run in its parent's entry, not in the map of runs
 * by id (issue 17: a `/map` item costs no insert into a map holding every item run). Nothing a
 * reader can see changes: a moved run is found by id and by key, listed, deleted with its
 * parent or alone, resumed, and its own nested runs move with it.
 */
import { assert, assertEquals, assertStrictEquals } from "../_assert.ts";
import { MemoryStateStore } from "../../src/state/memory.ts";
import type { RunRecord } from "../../src/state/store.ts";

function run(id: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: id,
    flowId: "f".repeat(64),
    status: "running",
    input: { id },
    createdAt: "2024-01-01T00:00:00.000Z",
    ...extra,
  };
}

/**
 * A parent `p` with `n` finished one-step items `p-i` (keys `p/each/i`); item 1 has a kid unless
 * `kid` is false.
 */
function mapRun(s: MemoryStateStore, p: string, n: number, kid = true): void {
  s.createRun(run(p));
  for (let i = 0; i < n; i++) {
    const id = `${p}-${i}`;
    s.createRun(run(id, { parentRunId: p, runKey: `${p}/each/${i}` }));
    s.recordStepStarted(id, { stepIndex: 0, stepId: "call", component: "/w/echo", attempt: 1 });
    if (i === 1 && kid) {
      s.createRun(run(`${id}-kid`, { parentRunId: id, runKey: `${id}/call` }));
      s.recordStepResult(`${id}-kid`, {
        stepIndex: 0,
        stepId: "inner",
        result: { outcome: "success", result: "deep" },
      });
      s.completeRun(`${id}-kid`, "completed", { outcome: "success", result: "deep" });
    }
    // (the run's result is its step's, as the engine gives it: items can be folded)
    const result = { outcome: "success" as const, result: i };
    s.recordStepResult(id, {
      stepIndex: 0,
      stepId: "call",
      result,
      component: "/w/echo",
      attempt: 1,
      durationMs: 3,
    });
    s.completeRun(id, "completed", result);
  }
}

Deno.test("MemoryStateStore: finished nested runs read as before, by id, key and list", async () => {
  const s = new MemoryStateStore();
  mapRun(s, "p", 5);
  const r = await s.getRun("p-3");
  assertStrictEquals(r?.status, "completed");
  assertStrictEquals(r?.parentRunId, "p");
  assertStrictEquals(r?.rootRunId, "p");
  assertEquals(r?.result, { outcome: "success", result: 3 });
  assertEquals(r?.input, { id: "p-3" });
  assertStrictEquals((await s.getRun("p-1-kid"))?.rootRunId, "p");
  assertStrictEquals((await s.findRunByKey("p/each/4"))?.runId, "p-4");
  assertStrictEquals((await s.findRunByKey("p-1/call"))?.runId, "p-1-kid");
  assertEquals(await s.getStepResults("p-2"), [{
    stepIndex: 0,
    stepId: "call",
    result: { outcome: "success", result: 2 },
  }]);
  const info = await s.getStepInfo("p-2");
  assertStrictEquals(info.length, 1);
  assertStrictEquals(info[0].component, "/w/echo");
  assertStrictEquals(info[0].status, "completed");
  assertStrictEquals(info[0].durationMs, 3);
  const kids = await s.listRuns({ parentRunId: "p" });
  assertEquals(kids.map((k) => k.runId).sort(), ["p-0", "p-1", "p-2", "p-3", "p-4"]);
  assertStrictEquals((await s.listRuns()).length, 7);
  assertStrictEquals((await s.listRuns({ rootOnly: true })).length, 1);
  // a run created after the index of moved runs was built is found too
  mapRun(s, "q", 2);
  assertStrictEquals((await s.getRun("q-1"))?.status, "completed");
  assertStrictEquals((await s.findRunByKey("q/each/0"))?.runId, "q-0");
});

Deno.test("MemoryStateStore: deleting a moved nested run, or its parent, removes it", async () => {
  const s = new MemoryStateStore();
  mapRun(s, "p", 3);
  assertStrictEquals(await s.deleteRun("p-1"), true);
  assertStrictEquals(await s.getRun("p-1"), undefined);
  assertStrictEquals(await s.getRun("p-1-kid"), undefined);
  assertStrictEquals(await s.findRunByKey("p/each/1"), undefined);
  assertStrictEquals(await s.deleteRun("p-1"), false);
  assertEquals((await s.listRuns({ parentRunId: "p" })).map((k) => k.runId).sort(), [
    "p-0",
    "p-2",
  ]);
  s.completeRun("p", "completed", { outcome: "success", result: null });
  assertStrictEquals(await s.deleteRun("p"), true);
  assertStrictEquals(await s.getRun("p-0"), undefined);
  assertStrictEquals(await s.findRunByKey("p/each/2"), undefined);
  assertEquals(await s.listRuns(), []);
});

Deno.test("MemoryStateStore: eviction takes a parent's moved runs with it", async () => {
  const s = new MemoryStateStore({ maxFinishedRuns: 1 });
  mapRun(s, "a", 3);
  s.completeRun("a", "completed", { outcome: "success", result: null });
  mapRun(s, "b", 3);
  s.completeRun("b", "completed", { outcome: "success", result: null });
  assertStrictEquals(await s.getRun("a"), undefined);
  assertStrictEquals(await s.getRun("a-2"), undefined);
  assertStrictEquals(await s.getRun("a-1-kid"), undefined);
  assertStrictEquals((await s.getRun("b-2"))?.status, "completed");
  assertStrictEquals((await s.listRuns()).length, 5);
});

Deno.test("MemoryStateStore: a moved nested run can run again (resume) and finish again", async () => {
  const s = new MemoryStateStore();
  mapRun(s, "p", 2);
  assertStrictEquals((await s.claimRun("p-0")).claimed, true);
  s.setRunStatus("p-0", "running");
  assertEquals((await s.renewLeases()).renewed.sort(), ["p", "p-0"]);
  s.recordStepResult("p-0", {
    stepIndex: 0,
    stepId: "call",
    result: { outcome: "success", result: "again" },
  });
  s.completeRun("p-0", "completed", { outcome: "success", result: "again" });
  assertEquals((await s.getRun("p-0"))?.result, { outcome: "success", result: "again" });
  assertStrictEquals((await s.listRuns({ parentRunId: "p" })).length, 2);
  assertEquals((await s.getStepResults("p-0"))[0].result, { outcome: "success", result: "again" });
});

Deno.test("MemoryStateStore: a finished one-step run's step info is the same without its start, which is kept only when it says more", async () => {
  const s = new MemoryStateStore();
  s.createRun(run("p"));
  const item = (id: string, startAttempt: number, component: string) => {
    s.createRun(run(id, { parentRunId: "p", runKey: `p/each/${id}` }));
    s.recordStepStarted(id, { stepIndex: 0, stepId: "call", component, attempt: startAttempt });
    const running = s.getStepInfo(id);
    s.recordStepResult(id, {
      stepIndex: 0,
      stepId: "call",
      result: { outcome: "success", result: 1 },
      component: "/w/echo",
      attempt: 2,
      durationMs: 4,
    });
    s.completeRun(id, "completed", { outcome: "success", result: 1 });
    return running;
  };
  // the start says nothing the result does not (same component, an earlier attempt): dropped
  assertStrictEquals((await item("a", 1, "/w/echo"))[0].status, "running");
  // a later attempt than the result's, another component: kept, and read as before
  await item("b", 3, "/w/echo");
  await item("c", 1, "/w/other");
  const a = await s.getStepInfo("a");
  assertEquals(a, [{
    stepIndex: 0,
    stepId: "call",
    component: "/w/echo",
    status: "completed",
    attempt: 2,
    // without the journal a step's times are its run's (as when the start was kept)
    createdAt: (await s.getRun("a"))?.completedAt!,
    updatedAt: (await s.getRun("a"))?.completedAt!,
    durationMs: 4,
  }]);
  assertStrictEquals((await s.getStepInfo("b"))[0].attempt, 3);
  assertStrictEquals((await s.getStepInfo("c"))[0].component, "/w/other");
});

/** What `getRun` gives for map item `p-i` of {@linkcode mapRun}, `completedAt` aside. */
function itemRecord(s: MemoryStateStore, p: string, i: number): Omit<RunRecord, "completedAt"> {
  return {
    runId: `${p}-${i}`,
    flowId: "f".repeat(64),
    status: "completed",
    input: { id: `${p}-${i}` },
    createdAt: "2024-01-01T00:00:00.000Z",
    parentRunId: p,
    runKey: `${p}/each/${i}`,
    rootRunId: p,
    leaseEpoch: 1,
    ownerId: s.engineId,
    result: { outcome: "success", result: i },
  };
}

/**
 * The keys of a map item's record in the order a reader gets them, as the store was given them
 * (the record), then completed them (createRun, completeRun).
 */
const ITEM_KEYS = [
  "runId",
  "flowId",
  "status",
  "input",
  "createdAt",
  "parentRunId",
  "runKey",
  "rootRunId",
  "leaseEpoch",
  "ownerId",
  "result",
  "completedAt",
];

/** Map item `p-i` of {@linkcode mapRun} reads as it was stored: record, steps, step info. */
async function assertItem(s: MemoryStateStore, p: string, i: number): Promise<void> {
  const id = `${p}-${i}`;
  const r = (await s.getRun(id))!;
  const { completedAt, ...rest } = r;
  assertEquals(rest, itemRecord(s, p, i));
  assert(completedAt !== undefined);
  assertEquals(Object.keys(r), ITEM_KEYS);
  assertEquals((await s.listRuns({ parentRunId: p })).find((x) => x.runId === id), r);
  assertStrictEquals((await s.findRunByKey(`${p}/each/${i}`))?.runId, id);
  await assertItemSteps(s, p, i);
}

/** What `getStepResults` and `getStepInfo` give for map item `p-i` of {@linkcode mapRun}. */
async function assertItemSteps(s: MemoryStateStore, p: string, i: number): Promise<void> {
  const id = `${p}-${i}`;
  assertEquals(await s.getStepResults(id), [{
    stepIndex: 0,
    stepId: "call",
    result: { outcome: "success", result: i },
  }]);
  // (without the journal, a step's times are its run's)
  const r = (await s.getRun(id))!;
  const at = r.completedAt ?? r.createdAt;
  assertEquals(await s.getStepInfo(id), [{
    stepIndex: 0,
    stepId: "call",
    component: "/w/echo",
    status: "completed",
    attempt: 1,
    createdAt: at,
    updatedAt: at,
    durationMs: 3,
  }]);
}

Deno.test("MemoryStateStore: finished one-step item runs are kept compact (the first of a map) or folded (the others) and read as before every way", async () => {
  const s = new MemoryStateStore();
  mapRun(s, "p", 5, false);
  assertEquals(s.compactRuns(), { compact: 1, folded: 4 });
  for (let i = 0; i < 5; i++) await assertItem(s, "p", i);
  // with a kid in item 1 (an entry) and the kid's (compact: its result is not its step's)
  mapRun(s, "q", 4);
  assertEquals(s.compactRuns(), { compact: 3, folded: 6 });
  for (const i of [0, 2, 3]) await assertItem(s, "q", i);
  assertEquals((await s.listRuns({ parentRunId: "p" })).map((k) => k.runId).sort(), [
    "p-0",
    "p-1",
    "p-2",
    "p-3",
    "p-4",
  ]);
  assertEquals((await s.listRuns({ rootOnly: true })).map((r) => r.runId).sort(), ["p", "q"]);
  assertStrictEquals((await s.listRuns({ status: "completed" })).length, 10);
  assertStrictEquals((await s.listRuns({ status: "running" })).length, 2);
  // reads hand out copies: the store's record stays as it was
  (await s.getRun("p-3"))!.status = "failed";
  assertStrictEquals((await s.getRun("p-3"))?.status, "completed");
  // finished: neither claimed, renewed nor released
  assertEquals(await s.claimRuns({ limit: 100 }), []);
  assertEquals((await s.renewLeases()).renewed.sort(), ["p", "q"]);
  assertEquals((await s.releaseRuns()).sort(), ["p", "q"]);
  assertStrictEquals((await s.getRun("p-2"))?.ownerId, s.engineId);
  // the parent's step count (retention) counts them
  const t = new MemoryStateStore({ maxFinishedSteps: 5 });
  mapRun(t, "a", 5, false);
  t.completeRun("a", "completed", { outcome: "success", result: null });
  mapRun(t, "b", 1);
  t.completeRun("b", "completed", { outcome: "success", result: null });
  // a's 5 step results and b's 1 are more than 5: a (the older) is evicted with its items
  assertStrictEquals(await t.getRun("a-3"), undefined);
  assertStrictEquals(await t.findRunByKey("a/each/2"), undefined);
  assertEquals(t.compactRuns(), { compact: 1, folded: 0 });
  await assertItem(t, "b", 0);
});

Deno.test("MemoryStateStore: compact and folded item runs are deleted alone, with their parent, pruned and evicted", async () => {
  const s = new MemoryStateStore({ maxFinishedRuns: 2 });
  mapRun(s, "p", 4, false);
  for (const i of [0, 2]) {
    assertStrictEquals(await s.deleteRun(`p-${i}`), true);
    assertStrictEquals(await s.getRun(`p-${i}`), undefined);
    assertStrictEquals(await s.findRunByKey(`p/each/${i}`), undefined);
    assertEquals(await s.getStepResults(`p-${i}`), []);
    assertEquals(await s.getStepInfo(`p-${i}`), []);
    assertStrictEquals(await s.deleteRun(`p-${i}`), false);
  }
  assertEquals((await s.listRuns({ parentRunId: "p" })).map((k) => k.runId).sort(), [
    "p-1",
    "p-3",
  ]);
  assertEquals(s.compactRuns(), { compact: 0, folded: 2 });
  await assertItem(s, "p", 3);
  // the top-level run deleted: its items go
  s.completeRun("p", "completed", { outcome: "success", result: null });
  assertStrictEquals(await s.deleteRun("p"), true);
  assertStrictEquals(await s.getRun("p-1"), undefined);
  assertEquals(s.compactRuns(), { compact: 0, folded: 0 });
  assertEquals(await s.listRuns(), []);
  // pruned
  mapRun(s, "q", 3, false);
  s.completeRun("q", "completed", { outcome: "success", result: null });
  assertStrictEquals(await s.pruneRuns({ before: "2999-01-01T00:00:00Z" }), 4);
  assertStrictEquals(await s.getRun("q-2"), undefined);
  assertStrictEquals(await s.findRunByKey("q/each/1"), undefined);
  // evicted (maxFinishedRuns 2): the oldest top-level run goes with its items
  for (const p of ["a", "b", "c"]) {
    mapRun(s, p, 3, false);
    s.completeRun(p, "completed", { outcome: "success", result: null });
  }
  assertStrictEquals(await s.getRun("a-1"), undefined);
  assertStrictEquals(await s.findRunByKey("a/each/2"), undefined);
  for (const i of [0, 1, 2]) await assertItem(s, "b", i);
  assertEquals(s.compactRuns(), { compact: 2, folded: 4 });
});

Deno.test("MemoryStateStore: writing to a compact or folded item run turns it back into an entry, which reads and writes as before", async () => {
  const s = new MemoryStateStore();
  mapRun(s, "p", 6, false);
  assertEquals(s.compactRuns(), { compact: 1, folded: 5 });
  // the same id created again (a resumed parent re-drives an item it found by key): its record
  // is replaced, its step stays
  for (const i of [0, 1]) {
    assertStrictEquals((await s.findRunByKey(`p/each/${i}`))?.runId, `p-${i}`);
    s.createRun(run(`p-${i}`, { parentRunId: "p", runKey: `p/each/${i}`, flowName: "again" }));
    assertStrictEquals((await s.getRun(`p-${i}`))?.flowName, "again");
    assertStrictEquals((await s.getRun(`p-${i}`))?.status, "running");
    await assertItemSteps(s, "p", i);
    assertStrictEquals((await s.listRuns()).filter((r) => r.runId === `p-${i}`).length, 1);
  }
  // (p-0 compact still: its record replaced; p-1 an entry: a folded record is not written)
  assertEquals(s.compactRuns(), { compact: 1, folded: 4 });
  // ... under another parent: an entry of its own (nothing lost)
  s.createRun(run("p-2", { parentRunId: "p-0", runKey: "p/each/2" }));
  assertStrictEquals((await s.getRun("p-2"))?.parentRunId, "p-0");
  assertStrictEquals((await s.getStepResults("p-2")).length, 1);
  // a step started again: running, with the start's attempt
  s.recordStepStarted("p-3", { stepIndex: 0, stepId: "call", component: "/w/echo", attempt: 2 });
  assertStrictEquals((await s.getStepInfo("p-3"))[0].attempt, 2);
  await assertItem(s, "p", 4); // (its neighbours' changes leave it as it was)
  // a step recorded: both kept
  s.recordStepResult("p-4", {
    stepIndex: 1,
    stepId: "more",
    result: { outcome: "success", result: "x" },
  });
  assertEquals((await s.getStepResults("p-4")).map((r) => r.stepId), ["call", "more"]);
  // its status set
  s.setRunStatus("p-5", "paused");
  assertStrictEquals((await s.getRun("p-5"))?.status, "paused");
  await assertItemSteps(s, "p", 5);
  assertEquals(s.compactRuns(), { compact: 0, folded: 0 });
  // a nested run of its own
  mapRun(s, "q", 3, false);
  s.createRun(run("q-1-kid", { parentRunId: "q-1", runKey: "q-1/call" }));
  assertStrictEquals((await s.getRun("q-1-kid"))?.rootRunId, "q");
  s.completeRun("q-1-kid", "completed", { outcome: "success", result: 1 });
  await assertItem(s, "q", 1);
  assertStrictEquals(await s.deleteRun("q-1"), true);
  assertStrictEquals(await s.getRun("q-1-kid"), undefined);
  // resumed (claimed) and finished again: compact again, with the new result
  assertStrictEquals((await s.claimRun("q-2")).claimed, true);
  assertStrictEquals((await s.getRun("q-2"))?.leaseEpoch, 2);
  s.setRunStatus("q-2", "running");
  const again = { outcome: "success" as const, result: "again" };
  s.recordStepResult("q-2", { stepIndex: 0, stepId: "call", result: again });
  s.completeRun("q-2", "completed", again);
  assertEquals(await s.getStepResults("q-2"), [{ stepIndex: 0, stepId: "call", result: again }]);
  assertEquals((await s.getRun("q-2"))?.result, again);
  assertEquals(Object.keys((await s.getRun("q-2"))!), ITEM_KEYS);
  assertStrictEquals((await s.listRuns({ parentRunId: "q" })).length, 2);
  // q-0 (compact, the first), q-2 (compact again: another lease epoch than the others)
  assertEquals(s.compactRuns(), { compact: 2, folded: 0 });
});

Deno.test("MemoryStateStore: the items of maps finishing side by side (a map of maps) are folded too", async () => {
  const s = new MemoryStateStore();
  s.createRun(run("a"));
  s.createRun(run("b"));
  for (let i = 0; i < 4; i++) {
    for (const p of ["a", "b"]) {
      const id = `${p}-${i}`;
      s.createRun(run(id, { parentRunId: p, runKey: `${p}/each/${i}` }));
      const result = { outcome: "success" as const, result: i };
      s.recordStepResult(id, {
        stepIndex: 0,
        stepId: "call",
        result,
        component: "/w/echo",
        attempt: 1,
        durationMs: 3,
      });
      s.completeRun(id, "completed", result);
    }
  }
  // the first of each map is kept compact, the others folded (the shape is its parent's)
  assertEquals(s.compactRuns(), { compact: 2, folded: 6 });
  for (const p of ["a", "b"]) for (let i = 0; i < 4; i++) await assertItem(s, p, i);
});
