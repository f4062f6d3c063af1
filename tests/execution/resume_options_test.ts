/**
 * A resumed run gets the options it was started with (`RunRecord.runOptions`): its max
 * concurrency, and its run timeout — what is left of it when its engine stopped, all of it again
 * when a failed run is re-driven — unless `engine.resume` is given others. Engines in this process
 * on one SQLite file stand for the engine that stopped and the one resuming.
 */
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertStrictEquals, withTempDir } from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { executedMs, resumedRunLimits } from "../../src/execution/resume.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import type { RunEventRecord, RunRecord, StateStore } from "../../src/state/store.ts";
import { flow, testConfig } from "./_engine_helpers.ts";

const THREE_WAITS = flow(`steps:
  - { id: a, component: /builtin/wait_for, input: { name: a } }
  - { id: b, component: /builtin/wait_for, input: { name: b } }
  - { id: c, component: /builtin/wait_for, input: { name: c } }
output: { a: { $from: { step: a } }, b: { $from: { step: b } }, c: { $from: { step: c } } }
`);

const ONE_WAIT = flow(`steps:
  - { id: w, component: /builtin/wait_for, input: { name: go } }
output: { $from: { step: w } }
`);

async function engineOn(db: string): Promise<Engine> {
  return await Engine.create(testConfig(), { store: SqliteStateStore.open(`sqlite:${db}`) });
}

async function untilPaused(engine: Engine, runId: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if ((await engine.store.getRun(runId))?.status === "paused") return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`run ${runId} not paused`);
}

Deno.test("a run whose engine stopped resumes with the max concurrency and timeout it was started with", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const first = await engineOn(db);
    const h = first.start(THREE_WAITS, {}, { maxConcurrency: 1, timeoutMs: 600_000 });
    await untilPaused(first, h.runId);
    assertStrictEquals(h.inFlight().length, 1);
    await first.close(); // the engine stops: the run is interrupted
    await h.result;
    const second = await engineOn(db);
    try {
      const record = await second.store.getRun(h.runId);
      assertEquals(record?.runOptions, {
        workingDirectory: Deno.cwd(),
        timeoutMs: 600_000,
        maxConcurrency: 1,
      });
      const resumed = await second.resume(h.runId);
      await untilPaused(second, h.runId);
      // still one step at a time
      assertEquals(resumed.inFlight().map((s) => s.stepId), ["a"]);
      for (const name of ["a", "b", "c"]) {
        await second.store.putSignal({ runId: h.runId, name, data: name });
        second.notifySignal(h.runId);
      }
      assertEquals(await resumed.result, {
        outcome: "success",
        result: { a: "a", b: "b", c: "c" },
      });
    } finally {
      await second.close();
    }
  });
});

Deno.test("no time left: the resumed run times out before any step; a re-driven run gets its whole timeout again; ResumeOptions win", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const first = await engineOn(db);
    const h = first.start(ONE_WAIT, {}, { timeoutMs: 5_000 });
    await untilPaused(first, h.runId);
    await first.close();
    await h.result;
    // the run had been executing for 10 s before its engine stopped
    const sql = new DatabaseSync(db);
    try {
      const { at } = sql.prepare(
        "SELECT at FROM run_events WHERE run_id = ? AND type = 'run_started'",
      ).get(h.runId) as { at: string };
      sql.prepare("UPDATE run_events SET at = ? WHERE run_id = ? AND type = 'run_started'")
        .run(new Date(Date.parse(at) - 10_000).toISOString(), h.runId);
    } finally {
      sql.close();
    }
    const second = await engineOn(db);
    try {
      let started = 0;
      second.observe({ stepStarted: () => started++ });
      const out = await (await second.resume(h.runId)).result;
      assertStrictEquals(out.outcome, "failed");
      assert(out.outcome === "failed");
      assertStrictEquals(out.error.code, 524);
      assertStrictEquals(out.error.message, "The run timed out after 5s (timeout: 5000 ms)");
      assertStrictEquals(started, 0);
      // given a limit, the resumed part has it
      const limited = await (await second.resume(h.runId, { timeoutMs: 50 })).result;
      assert(limited.outcome === "failed");
      assertStrictEquals(limited.error.message, "The run timed out after 50ms (timeout: 50 ms)");
      assertStrictEquals(started, 1);
      // re-driven (it failed on its own): the whole 5 s again, so the step can take its signal
      const again = await second.resume(h.runId);
      await untilPaused(second, h.runId);
      await second.store.putSignal({ runId: h.runId, name: "go", data: 7 });
      second.notifySignal(h.runId);
      assertEquals(await again.result, { outcome: "success", result: 7 });
    } finally {
      await second.close();
    }
  });
});

/** A store answering `getEvents` from `events` (what executedMs and resumedRunLimits read). */
function journalStore(events: Omit<RunEventRecord, "id" | "rootRunId">[]): StateStore {
  const all = events.map((e, i) => ({ ...e, id: i + 1, rootRunId: "r" }));
  return {
    getEvents: (f: { afterId?: number; limit?: number }) =>
      Promise.resolve(
        all.filter((e) => e.id > (f.afterId ?? 0)).slice(0, f.limit ?? all.length),
      ),
  } as unknown as StateStore;
}

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

Deno.test("executedMs counts each stretch an engine executed the run, not the time none did", async () => {
  const record: RunRecord = {
    runId: "r",
    flowId: "f",
    status: "running",
    input: null,
    createdAt: at(0),
  };
  const store = journalStore([
    { runId: "r", type: "run_started", at: at(0) },
    { runId: "r", type: "step_started", stepIndex: 0, at: at(1) },
    { runId: "r/m/0", type: "step_completed", stepIndex: 0, at: at(4) }, // a nested run's
    // found dead 100 s later, a signal meanwhile: neither is execution
    { runId: "r", type: "run_interrupted", at: at(104) },
    { runId: "r", type: "signal_received", at: at(105) },
    // a debug resume is not a takeover
    { runId: "r", type: "run_resumed", data: { debug: true }, at: at(3) },
    { runId: "r", type: "run_resumed", data: { leaseEpoch: 2 }, at: at(200) },
    { runId: "r", type: "step_started", stepIndex: 1, at: at(206) },
    { runId: "r", type: "run_resumed", data: { leaseEpoch: 3 }, at: at(300) },
  ]);
  assertStrictEquals(await executedMs(store, record), 4_000 + 6_000);
  // the limits: what is left for a run whose engine stopped...
  const stored = { ...record, runOptions: { timeoutMs: 60_000, maxConcurrency: 2 } };
  assertEquals(await resumedRunLimits(store, stored, {}), {
    timeoutMs: 60_000,
    timeoutUsedMs: 10_000,
    maxConcurrency: 2,
  });
  // ...all of it for a run that failed on its own; given values win
  const failed: RunRecord = {
    ...stored,
    status: "failed",
    result: { outcome: "failed", error: { code: 500, message: "boom" } },
  };
  assertEquals(await resumedRunLimits(store, failed, {}), { timeoutMs: 60_000, maxConcurrency: 2 });
  assertEquals(await resumedRunLimits(store, stored, { timeoutMs: 5, maxConcurrency: 9 }), {
    timeoutMs: 5,
    maxConcurrency: 9,
  });
  // a run recorded without options: nothing from the store
  assertEquals(await resumedRunLimits(store, record, {}), {});
});
