/**
 * The StateStore contract, run against every store — in-memory, SQLite (file and `:memory:`) and
 * SQLite committing in a worker thread, PostgreSQL (a database of its own per test; skipped without STEPFLOW_TEST_PG_URL, see
 * tests/_postgres.ts): run history queries (listRuns, deleteRun, pruneRuns), step statuses, the
 * journal, signals, nested-run keys, claims, the run queue, leases and the engines registry.
 */
import { assert, assertEquals, assertStrictEquals, withTempDir } from "../_assert.ts";
import { pgTest, withPgDatabase } from "../_postgres.ts";
import { MemoryStateStore } from "../../src/state/memory.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import type { RunRecord, StateStore } from "../../src/state/store.ts";

/** Opens a store, runs the body on it, closes it (and removes what it made). */
type Use = (body: (s: StateStore) => Promise<void>) => Promise<void>;

function using(open: (dir: string) => StateStore | Promise<StateStore>): Use {
  return (body) =>
    withTempDir(async (dir) => {
      const s = await open(dir);
      try {
        await body(s);
      } finally {
        await s.close();
      }
    });
}

const STORES: [string, Use][] = [
  ["MemoryStateStore", using(() => new MemoryStateStore({ journal: true }))],
  ["SqliteStateStore (file)", using((dir) => SqliteStateStore.open(`sqlite:${dir}/runs.db`))],
  ["SqliteStateStore (:memory:)", using(() => SqliteStateStore.open("sqlite::memory:"))],
  [
    "SqliteStateStore (file, commits in a worker)",
    using(async (dir) => {
      const s = SqliteStateStore.open(`sqlite:${dir}/runs.db`);
      await s.useCommitWorker();
      assert(s.commitsInWorker, "the commit worker did not start");
      return s;
    }),
  ],
];

/** `also`: stores this test runs against besides {@linkcode STORES}. */
function contract(name: string, fn: (s: StateStore) => Promise<void>, also: [string, Use][] = []) {
  for (const [kind, use] of [...STORES, ...also]) Deno.test(`${kind}: ${name}`, () => use(fn));
  pgTest(`PostgresStateStore: ${name}`, (server) =>
    withPgDatabase(server, async (url) => {
      // loaded as the engine loads it: only when a PostgreSQL store is asked for
      const { PostgresStateStore } = await import("../../src/state/postgres.ts");
      const s = await PostgresStateStore.open(url);
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    }));
}

function run(id: string, createdAt: string, extra: Partial<RunRecord> = {}): RunRecord {
  return { runId: id, flowId: "f".repeat(64), status: "running", input: null, createdAt, ...extra };
}

contract(
  "listRuns() filters by status, flow, since, top level and pages newest first",
  async (s) => {
    s.createRun(run("r1", "2024-01-01T00:00:00.000Z", { flowName: "a" }));
    s.createRun(run("r2", "2024-01-02T00:00:00.000Z", { flowName: "b" }));
    s.createRun(run("r3", "2024-01-02T00:00:00.000Z", { flowName: "a" }));
    s.createRun(run("n1", "2024-01-03T00:00:00.000Z", { flowName: "inner", parentRunId: "r3" }));
    s.completeRun("r1", "completed", { outcome: "success", result: 1 });
    s.completeRun("r2", "failed", { outcome: "failed", error: { code: 500, message: "x" } });
    const ids = async (f = {}) => (await s.listRuns(f)).map((r) => r.runId);
    // newest first; equal createdAt → runId ascending
    assertEquals(await ids(), ["n1", "r2", "r3", "r1"]);
    assertEquals(await ids({ rootOnly: true }), ["r2", "r3", "r1"]);
    assertEquals(await ids({ status: "running" }), ["n1", "r3"]);
    assertEquals(await ids({ flowName: "a" }), ["r3", "r1"]);
    assertEquals(await ids({ since: "2024-01-02T00:00:00Z" }), ["n1", "r2", "r3"]);
    assertEquals(await ids({ since: "2024-01-02T01:00:00+01:00" }), ["n1", "r2", "r3"]);
    assertEquals(await ids({ limit: 2 }), ["n1", "r2"]);
    assertEquals(await ids({ limit: 2, offset: 2 }), ["r3", "r1"]);
    assertEquals(await ids({ offset: 3 }), ["r1"]);
    assertEquals(await ids({ parentRunId: "r3" }), ["n1"]);
    const n1 = (await s.listRuns({ parentRunId: "r3" }))[0];
    assertStrictEquals(n1.rootRunId, "r3");
  },
);

contract("a nested run's root is its parent's root; runKey finds it", async (s) => {
  s.createRun(run("root", "2024-01-01T00:00:00.000Z", { variables: { k: "v" } }));
  s.createRun(run("mid", "2024-01-01T00:00:01.000Z", { parentRunId: "root", runKey: "root/m" }));
  s.createRun(run("leaf", "2024-01-01T00:00:02.000Z", { parentRunId: "mid", runKey: "mid/x/3" }));
  assertStrictEquals((await s.getRun("leaf"))?.rootRunId, "root");
  assertStrictEquals((await s.findRunByKey("mid/x/3"))?.runId, "leaf");
  assertStrictEquals(await s.findRunByKey("mid/x/4"), undefined);
  assertEquals((await s.getRun("root"))?.variables, { k: "v" });
  assertStrictEquals((await s.getRun("root"))?.ownerId, s.engineId);
  assertStrictEquals((await s.getRun("root"))?.leaseEpoch, 1);
});

contract("deleteRun() removes the run, its steps, events, signals and nested runs", async (s) => {
  s.createRun(run("root", "2024-01-01T00:00:00.000Z"));
  s.createRun(run("kid", "2024-01-01T00:00:01.000Z", { parentRunId: "root" }));
  s.createRun(run("grandkid", "2024-01-01T00:00:02.000Z", { parentRunId: "kid" }));
  s.createRun(run("other", "2024-01-01T00:00:03.000Z"));
  for (const id of ["root", "kid", "grandkid", "other"]) {
    s.recordStepResult(id, {
      stepIndex: 0,
      stepId: "a",
      result: { outcome: "success", result: 1 },
    });
  }
  await s.putSignal({ runId: "root", name: "go", data: 1 });
  assertStrictEquals(await s.deleteRun("kid"), true);
  assertEquals((await s.listRuns()).map((r) => r.runId).sort(), ["other", "root"]);
  assertEquals(await s.getStepResults("grandkid"), []);
  assertEquals((await s.getEvents({ rootRunId: "root" })).filter((e) => e.runId === "kid"), []);
  assertStrictEquals(await s.deleteRun("root"), true);
  assertStrictEquals(await s.deleteRun("root"), false);
  assertEquals(await s.getSignals("root"), []);
  assertEquals(await s.getEvents({ runId: "root" }), []);
  assertEquals((await s.listRuns()).map((r) => r.runId), ["other"]);
  assertStrictEquals((await s.getStepResults("other")).length, 1);
});

contract("pruneRuns() deletes finished top-level runs finished before the instant", async (s) => {
  s.createRun(run("old", "2024-01-01T00:00:00.000Z"));
  s.createRun(run("old-kid", "2024-01-01T00:00:00.000Z", { parentRunId: "old" }));
  s.createRun(run("old-running", "2024-01-01T00:00:00.000Z"));
  s.createRun(run("new", "2024-01-01T00:00:00.000Z"));
  s.completeRun("old-kid", "completed");
  s.completeRun("old", "completed");
  s.completeRun("new", "failed");
  // pruneRuns compares completedAt (now): everything finished is before the far future
  assertStrictEquals(await s.pruneRuns({ before: "2000-01-01T00:00:00Z" }), 0);
  const n = await s.pruneRuns({ before: "2999-01-01T00:00:00Z" });
  assertStrictEquals(n, 3); // old, old-kid, new
  assertEquals((await s.listRuns()).map((r) => r.runId), ["old-running"]);
});

contract("step results write step_info statuses and journal events in order", async (s) => {
  s.createRun(run("r", "2024-01-01T00:00:00.000Z"));
  s.recordStepStarted("r", { stepIndex: 0, stepId: "a", component: "/x", attempt: 1 });
  s.recordStepStarted("r", { stepIndex: 1, stepId: "b", component: "/y", attempt: 1 });
  s.recordStepResult("r", {
    stepIndex: 0,
    stepId: "a",
    result: { outcome: "success", result: 1 },
    durationMs: 12.5,
  });
  s.recordStepStarted("r", { stepIndex: 1, stepId: "b", component: "/y", attempt: 2 });
  s.recordStepResult("r", {
    stepIndex: 1,
    stepId: "b",
    result: { outcome: "failed", error: { code: 42, message: "no" } },
    attempt: 2,
  });
  s.recordStepResult("r", {
    stepIndex: 2,
    stepId: "c",
    result: { outcome: "skipped" },
    component: "/z",
  });
  await s.completeRun("r", "failed", { outcome: "failed", error: { code: 42, message: "no" } });
  const info = await s.getStepInfo("r");
  assertEquals(info.map((i) => [i.stepId, i.component, i.status, i.attempt]), [
    ["a", "/x", "completed", 1],
    ["b", "/y", "failed", 2],
    ["c", "/z", "skipped", 1],
  ]);
  assertStrictEquals(info[0].durationMs, 12.5);
  const events = await s.getEvents({ runId: "r" });
  assertEquals(events.map((e) => [e.type, e.stepId ?? null, e.attempt ?? null]), [
    ["run_started", null, null],
    ["step_started", "a", 1],
    ["step_started", "b", 1],
    ["step_completed", "a", null],
    ["step_started", "b", 2],
    ["step_failed", "b", 2],
    ["step_skipped", "c", null],
    ["run_completed", null, null],
  ]);
  assert(events.every((e, i) => i === 0 || e.id > events[i - 1].id), "ids ascend");
  assertEquals(events[5].data, { error: { code: 42, message: "no" } });
  assertEquals(events[7].data, { status: "failed", outcome: "failed" });
  // resuming a stream after an id
  const after = await s.getEvents({ runId: "r", afterId: events[5].id });
  assertEquals(after.map((e) => e.type), ["step_skipped", "run_completed"]);
  assertEquals((await s.getEvents({ runId: "r", limit: 2 })).map((e) => e.type), [
    "run_started",
    "step_started",
  ]);
});

contract(
  "a step started but without a result when its run is cancelled or fails reads failed (was: running for good)",
  async (s) => {
    // committed apart: the cancel comes after the start was stored
    s.createRun(run("c", "2024-01-01T00:00:00.000Z"));
    await s.recordStepStarted("c", { stepIndex: 0, stepId: "nap", component: "/x", attempt: 1 });
    await s.completeRun("c", "cancelled", {
      outcome: "failed",
      error: { code: 410, message: "Run was cancelled" },
    });
    assertEquals((await s.getStepInfo("c")).map((i) => [i.stepId, i.status]), [["nap", "failed"]]);
    // the start and the end in one commit (a run cancelled at once)
    s.createRun(run("d", "2024-01-01T00:00:01.000Z"));
    s.recordStepStarted("d", { stepIndex: 0, stepId: "a", component: "/x", attempt: 1 });
    s.recordStepStarted("d", { stepIndex: 1, stepId: "b", component: "/x", attempt: 1 });
    s.recordStepResult("d", {
      stepIndex: 1,
      stepId: "b",
      result: { outcome: "failed", error: { code: 7, message: "no" } },
    });
    await s.completeRun("d", "failed", { outcome: "failed", error: { code: 7, message: "no" } });
    assertEquals((await s.getStepInfo("d")).map((i) => [i.stepId, i.status]), [
      ["a", "failed"],
      ["b", "failed"],
    ]);
    // a completed run keeps its statuses (no step can be running then)
    s.createRun(run("e", "2024-01-01T00:00:02.000Z"));
    s.recordStepStarted("e", { stepIndex: 0, stepId: "a", component: "/x", attempt: 1 });
    s.recordStepResult("e", {
      stepIndex: 0,
      stepId: "a",
      result: { outcome: "success", result: 1 },
    });
    await s.completeRun("e", "completed", { outcome: "success", result: 1 });
    assertEquals((await s.getStepInfo("e")).map((i) => [i.stepId, i.status]), [["a", "completed"]]);
  },
);

contract(
  "claimRunId() takes a new run id once: a second claim gets the run holding it",
  async (s) => {
    // every store has it (the in-memory one too: two engines sharing it in one process)
    assert(s.claimRunId !== undefined, `${s.kind} has no claimRunId`);
    const id = { runId: "n", flowId: "f".repeat(64), flowName: "x", input: { a: 1 } };
    const createdAt = "2024-01-01T00:00:00.000Z";
    assertStrictEquals(await s.claimRunId({ ...id, createdAt }), undefined);
    const held = await s.claimRunId({ ...id, createdAt, input: { a: 2 } });
    assertStrictEquals(held?.runId, "n");
    assertStrictEquals(held?.status, "running");
    // the claimer's createRun completes the record
    await s.createRun(run("n", createdAt, { flowName: "x", input: { a: 1 } }));
    const r = await s.getRun("n");
    assertEquals([r?.status, r?.input, r?.ownerId], ["running", { a: 1 }, s.engineId]);
    // a queued run with the id is taken over
    s.createRun(run("q", createdAt, { status: "queued" }));
    assertStrictEquals(await s.claimRunId({ ...id, runId: "q", createdAt }), undefined);
    assertStrictEquals((await s.getRun("q"))?.status, "running");
  },
);

contract(
  "a queued run has no owner (SQLite: the engine that queued it); claimRun() takes it and bumps the lease epoch",
  async (s) => {
    s.createRun(run("q", "2024-01-01T00:00:00.000Z", { status: "queued" }));
    const q = await s.getRun("q");
    assertStrictEquals(q?.status, "queued");
    // SQLite: owned by the engine that queued it, so that services on the file take it over only
    // once that engine is dead (tests/server/queued_kill_test.ts)
    assertStrictEquals(q?.ownerId, s.kind === "sqlite" ? s.engineId : undefined);
    assertEquals(await s.claimRun("nope"), { claimed: false, reason: "unknown" });
    assertEquals(await s.claimRun("q"), { claimed: true, leaseEpoch: 1 });
    assertEquals(await s.claimRun("q"), { claimed: true, leaseEpoch: 2 });
    assertStrictEquals((await s.getRun("q"))?.ownerId, s.engineId);
    const types = (await s.getEvents({ runId: "q" })).map((e) => e.type);
    assertEquals(types, ["run_queued", "run_resumed", "run_resumed"]);
  },
);

contract("signals queue per name; consumeSignal() is idempotent per consumer", async (s) => {
  s.createRun(run("r", "2024-01-01T00:00:00.000Z", { status: "paused" }));
  assertStrictEquals(await s.consumeSignal("r", "approve", "r/a"), undefined);
  const s1 = await s.putSignal({ runId: "r", name: "approve", data: { ok: true } });
  const s2 = await s.putSignal({ runId: "r", name: "approve", data: { ok: false } });
  await s.putSignal({ runId: "r", name: "other", data: 1 });
  assert(s2.id > s1.id);
  const a = await s.consumeSignal("r", "approve", "r/a");
  assertEquals(a?.data, { ok: true });
  assertStrictEquals(a?.consumedBy, "r/a");
  // the same consumer again (a re-executed step) gets the same signal
  assertStrictEquals((await s.consumeSignal("r", "approve", "r/a"))?.id, s1.id);
  assertStrictEquals((await s.consumeSignal("r", "approve", "r/b"))?.id, s2.id);
  assertStrictEquals(await s.consumeSignal("r", "approve", "r/c"), undefined);
  const all = await s.getSignals("r");
  assertEquals(all.map((x) => [x.name, x.consumedBy ?? null]), [
    ["approve", "r/a"],
    ["approve", "r/b"],
    ["other", null],
  ]);
  const events = await s.getEvents({ runId: "r" });
  assertEquals(events.filter((e) => e.type === "signal_received").length, 3);
});

contract("setRunStatus() pauses and resumes a run with journal events", async (s) => {
  s.createRun(run("r", "2024-01-01T00:00:00.000Z"));
  s.setRunStatus("r", "paused", "run_paused", { waitingFor: "approve" });
  assertStrictEquals((await s.getRun("r"))?.status, "paused");
  s.setRunStatus("r", "running");
  assertStrictEquals((await s.getRun("r"))?.status, "running");
  const events = await s.getEvents({ rootRunId: "r" });
  assertEquals(events.map((e) => e.type), ["run_started", "run_paused"]);
  assertEquals(events[1].data, { waitingFor: "approve" });
});

contract(
  "claimRuns() takes queued runs oldest first, once, with a run_started event",
  async (s) => {
    s.createRun(run("q2", "2024-01-01T00:00:02.000Z", { status: "queued" }));
    s.createRun(run("q1", "2024-01-01T00:00:01.000Z", { status: "queued" }));
    s.createRun(run("q3", "2024-01-01T00:00:03.000Z", { status: "queued" }));
    s.createRun(run("busy", "2024-01-01T00:00:00.000Z"));
    const first = await s.claimRuns({ limit: 2 });
    assertEquals(first.map((c) => [c.run.runId, c.leaseEpoch, c.resumed]), [
      ["q1", 1, false],
      ["q2", 1, false],
    ]);
    for (const c of first) {
      assertStrictEquals(c.run.status, "running");
      assertStrictEquals(c.run.ownerId, s.engineId);
    }
    assertEquals((await s.claimRuns({ limit: 10 })).map((c) => c.run.runId), ["q3"]);
    assertEquals(await s.claimRuns({ limit: 10 }), []);
    assertStrictEquals((await s.getRun("q1"))?.status, "running");
    const events = await s.getEvents({ runId: "q1" });
    assertEquals(events.map((e) => e.type), ["run_queued", "run_started"]);
    assertEquals(events[1].data, { leaseEpoch: 1, engineId: s.engineId });
  },
);

contract(
  "releaseRuns() gives a run back; claimRuns() resumes it with the next epoch",
  async (s) => {
    s.createRun(run("r", "2024-01-01T00:00:00.000Z"));
    s.createRun(run("kid", "2024-01-01T00:00:01.000Z", { parentRunId: "r" }));
    s.recordStepResult("r", {
      stepIndex: 0,
      stepId: "a",
      result: { outcome: "success", result: 1 },
    });
    await s.flush();
    assertEquals(await s.claimRuns({ limit: 5 }), []);
    assertEquals(await s.releaseRuns(["r", "unknown"]), ["r"]);
    const [c, ...more] = await s.claimRuns({ limit: 5 });
    assertEquals(more, []);
    assertStrictEquals(c.run.runId, "r");
    assertStrictEquals(c.resumed, true);
    assertStrictEquals(c.leaseEpoch, 2);
    assertStrictEquals(c.run.status, "running");
    assertEquals((await s.getStepResults("r")).map((x) => x.stepId), ["a"]);
    s.recordStepResult("r", {
      stepIndex: 1,
      stepId: "b",
      result: { outcome: "success", result: 2 },
    });
    await s.completeRun("r", "completed", { outcome: "success", result: 2 });
    assertStrictEquals((await s.getRun("r"))?.status, "completed");
    const types = (await s.getEvents({ runId: "r" })).map((e) => e.type);
    assertEquals(types, [
      "run_started",
      "step_completed",
      "run_resumed",
      "step_completed",
      "run_completed",
    ]);
  },
);

contract("registerEngine() names the engine's URL; renewLeases() keeps its runs", async (s) => {
  const e = await s.registerEngine({ url: "http://127.0.0.1:7840" });
  assertStrictEquals(e.engineId, s.engineId);
  assertStrictEquals(e.url, "http://127.0.0.1:7840");
  s.createRun(run("r", "2024-01-01T00:00:00.000Z"));
  await s.flush();
  const engines = await s.listEngines();
  assertEquals(engines.map((x) => [x.engineId, x.url ?? null]), [[
    s.engineId,
    "http://127.0.0.1:7840",
  ]]);
  assert(!Number.isNaN(Date.parse(engines[0].heartbeatAt)), "heartbeatAt is a time");
  const renewal = await s.renewLeases();
  assertEquals(renewal.renewed, ["r"]);
  assertEquals(renewal.lost, []);
});

contract("watchQueue() is woken when a run is queued, until unsubscribed", async (s) => {
  let woken!: () => void;
  const wake = new Promise<void>((resolve) => woken = resolve);
  let calls = 0;
  const stop = s.watchQueue(() => {
    calls++;
    woken();
  });
  s.createRun(run("q", "2024-01-01T00:00:00.000Z", { status: "queued" }));
  await wake;
  stop();
  const before = calls;
  s.createRun(run("q2", "2024-01-01T00:00:01.000Z", { status: "queued" }));
  await s.flush();
  assertStrictEquals(calls, before);
});

Deno.test("MemoryStateStore evicts finished top-level runs beyond maxFinishedRuns", async () => {
  const s = new MemoryStateStore({ maxFinishedRuns: 2 });
  for (let i = 0; i < 5; i++) {
    s.createRun(run(`r${i}`, `2024-01-01T00:00:0${i}.000Z`));
    s.createRun(run(`r${i}-kid`, `2024-01-01T00:00:0${i}.000Z`, { parentRunId: `r${i}` }));
    s.recordStepResult(`r${i}-kid`, {
      stepIndex: 0,
      stepId: "a",
      result: { outcome: "success", result: i },
    });
    s.completeRun(`r${i}-kid`, "completed");
    s.completeRun(`r${i}`, "completed");
  }
  s.createRun(run("live", "2024-01-01T00:00:09.000Z"));
  assertEquals((await s.listRuns({ rootOnly: true })).map((r) => r.runId), ["live", "r4", "r3"]);
  assertEquals(await s.getStepResults("r0-kid"), []);
  assertStrictEquals(await s.getRun("r1-kid"), undefined);
  assertStrictEquals((await s.getStepResults("r4-kid")).length, 1);
  assertEquals(await s.getEvents({ rootRunId: "r0" }), []);
});

contract(
  "a finished one-step map item run reads the same every way (kept compact in memory)",
  async (s) => {
    s.createRun(run("top", "2024-01-01T00:00:00.000Z"));
    for (let i = 0; i < 3; i++) {
      const id = `top-${i}`;
      s.createRun(run(id, "2024-01-01T00:00:01.000Z", {
        parentRunId: "top",
        runKey: `top/m/${i}`,
        input: { x: i },
      }));
      s.recordStepStarted(id, { stepIndex: 0, stepId: "call", component: "/w/echo", attempt: 1 });
      s.recordStepResult(id, {
        stepIndex: 0,
        stepId: "call",
        result: { outcome: "success", result: { x: i } },
        component: "/w/echo",
        attempt: 1,
        durationMs: 2,
      });
      s.completeRun(id, "completed", { outcome: "success", result: { x: i } });
    }
    await s.flush();
    const r = await s.getRun("top-1");
    assertStrictEquals(r?.status, "completed");
    assertStrictEquals(r?.parentRunId, "top");
    assertStrictEquals(r?.rootRunId, "top");
    assertStrictEquals(r?.runKey, "top/m/1");
    assertEquals(r?.input, { x: 1 });
    assertEquals(r?.result, { outcome: "success", result: { x: 1 } });
    assertStrictEquals(r?.ownerId, s.engineId);
    assert(r?.completedAt !== undefined);
    assertEquals(await s.getStepResults("top-1"), [
      { stepIndex: 0, stepId: "call", result: { outcome: "success", result: { x: 1 } } },
    ]);
    const [info, ...more] = await s.getStepInfo("top-1");
    assertEquals(more, []);
    assertEquals(
      [info.stepIndex, info.stepId, info.component, info.status, info.attempt, info.durationMs],
      [0, "call", "/w/echo", "completed", 1, 2],
    );
    assertStrictEquals((await s.findRunByKey("top/m/2"))?.runId, "top-2");
    const ids = async (f = {}) => (await s.listRuns(f)).map((x) => x.runId).sort();
    assertEquals(await ids({ parentRunId: "top" }), ["top-0", "top-1", "top-2"]);
    assertEquals(await ids({ rootOnly: true }), ["top"]);
    assertEquals(await ids({ status: "completed" }), ["top-0", "top-1", "top-2"]);
    assertStrictEquals(await s.deleteRun("top-0"), true);
    assertEquals(await ids({ parentRunId: "top" }), ["top-1", "top-2"]);
    assertEquals(await s.getStepResults("top-0"), []);
    s.completeRun("top", "completed", { outcome: "success", result: null });
    assertStrictEquals(await s.pruneRuns({ before: "2999-01-01T00:00:00Z" }), 3);
    assertStrictEquals(await s.getRun("top-1"), undefined);
    assertStrictEquals(await s.findRunByKey("top/m/2"), undefined);
    assertEquals(await s.listRuns(), []);
  },
  [["MemoryStateStore (no journal)", using(() => new MemoryStateStore())]],
);

Deno.test("MemoryStateStore evicts finished runs older than maxFinishedAgeMs", async () => {
  let now = 1_000_000;
  const s = new MemoryStateStore({ maxFinishedAgeMs: 60_000, clock: () => now });
  s.createRun(run("a", "2024-01-01T00:00:00.000Z"));
  s.completeRun("a", "completed");
  now += 30_000;
  s.createRun(run("b", "2024-01-01T00:00:01.000Z"));
  s.completeRun("b", "completed");
  assertStrictEquals((await s.getRun("a"))?.status, "completed");
  now += 30_001;
  s.createRun(run("c", "2024-01-01T00:00:02.000Z"));
  s.completeRun("c", "completed");
  assertStrictEquals(await s.getRun("a"), undefined);
  assertEquals((await s.listRuns()).map((r) => r.runId), ["c", "b"]);
});
