/**
 * `RunOptions.runId` naming a run the state store already has (a finished one, or one another
 * engine executes) is refused, in every store, with a {@linkcode UsageError} saying what to do.
 * Before: the new run silently replaced the record of the old one (its input, status, result),
 * its step results mixed with the old run's. A `queued` record (the service's own queued run,
 * started later under its id) is still started, and `engine.resume` still reuses the id.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  withTempDir,
} from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { MemoryStateStore } from "../../src/state/memory.ts";
import { UsageError } from "../../src/errors.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";
import { flow, testConfig } from "./_engine_helpers.ts";
import { PG_REQUIRED, PG_SKIPPED, PG_URL, pgTest, withPgDatabase } from "../_postgres.ts";

if (PG_URL === undefined && !PG_REQUIRED) {
  Deno.test({ name: `run_id_reuse: ${PG_SKIPPED}`, ignore: true, fn() {} });
}

const ECHO = flow(`steps:
  - id: hello
    component: /builtin/create_messages
    input: { user_prompt: { $from: { workflow: input }, path: who } }
output: { $from: { step: hello }, path: "$.messages[0].content" }
`);

/** Two steps: a top-level run of it goes through the scheduler, not the one-step path. */
const TWO = flow(`steps:
  - id: a
    component: /builtin/create_messages
    input: { user_prompt: { $from: { workflow: input }, path: who } }
  - id: b
    component: /builtin/create_messages
    input: { user_prompt: { $from: { step: a }, path: "$.messages[0].content" } }
output: { $from: { step: b }, path: "$.messages[0].content" }
`);

/** Fails: its file does not exist. */
const FAILS = flow(`steps:
  - id: read
    component: /builtin/load_file
    input: { path: /nonexistent/stepflow-run-id-reuse.json }
output: { $from: { step: read } }
`);

/** A finished run's id given again is refused, the old record kept, in `stateStore`. */
async function refusesFinishedId(stateStore: JsonValue | undefined): Promise<void> {
  const engine = await Engine.create(
    testConfig({}, stateStore === undefined ? {} : { stateStore }),
  );
  try {
    for (const f of [ECHO, TWO]) {
      const runId = crypto.randomUUID();
      assertEquals(await engine.run(f, { who: "Ada" }, { runId }), {
        outcome: "success",
        result: "Ada",
      });
      // the failing input: the id of the completed run, given again
      const e = await assertRejects(
        () => engine.run(f, { who: "Bob" }, { runId }),
        UsageError,
        `RunOptions.runId: run ${runId} is already in the state store (completed)`,
      );
      assertStringIncludes(e.message, "give each run its own id (or none: a new one is made)");
      const handle = engine.start(f, { who: "Bob" }, { runId });
      await assertRejects(() => handle.result, UsageError, "already in the state store");
      await assertRejects(() => handle.recorded, UsageError);
      const kept = await engine.store.getRun(runId);
      assertStrictEquals(kept?.status, "completed");
      assertEquals(kept?.input, { who: "Ada" });
      assertEquals(kept?.result, { outcome: "success", result: "Ada" });
      // the id of a failed run: refused too, pointing at resume
      const failedId = crypto.randomUUID();
      const r = await engine.run(FAILS, null, { runId: failedId });
      assertStrictEquals(r.outcome, "failed");
      const f2 = await assertRejects(
        () => engine.run(f, { who: "Bob" }, { runId: failedId }),
        UsageError,
        "(failed)",
      );
      assertStringIncludes(f2.message, `engine.resume('${failedId}')`);
      // a new id (or none) still runs
      assertStrictEquals((await engine.run(f, { who: "Cy" })).outcome, "success");
    }
  } finally {
    await engine.close();
  }
}

Deno.test("engine.run with the runId of a finished run is refused (in-memory store)", async () => {
  await refusesFinishedId(undefined);
});

Deno.test("engine.run with the runId of a finished run is refused (SQLite store)", async () => {
  await withTempDir(async (dir) => {
    await refusesFinishedId({ type: "sqlite", databaseUrl: `sqlite:${dir}/runs.db` });
  });
});

pgTest(
  "engine.run with the runId of a finished run is refused (PostgreSQL store)",
  (server) =>
    withPgDatabase(server, async (url) => {
      await refusesFinishedId({ type: "postgres", url });
    }),
);

Deno.test("a runId finished in an earlier process is refused; resume of an interrupted run still reuses its id", async () => {
  await withTempDir(async (dir) => {
    const stateStore = { type: "sqlite", databaseUrl: `sqlite:${dir}/runs.db` };
    const first = await Engine.create(testConfig({}, { stateStore }));
    const done = crypto.randomUUID();
    const interrupted = crypto.randomUUID();
    try {
      assertStrictEquals(
        (await first.run(ECHO, { who: "Ada" }, { runId: done })).outcome,
        "success",
      );
      // a run interrupted by the engine's close (resumable)
      const held = first.start(
        flow(`steps:
  - id: w
    component: /builtin/wait_for
    input: { name: go }
output: { $from: { step: w } }
`),
        null,
        { runId: interrupted },
      );
      await held.recorded;
      await first.close();
      await held.result;
    } finally {
      await first.close();
    }
    const second = await Engine.create(testConfig({}, { stateStore }));
    try {
      await assertRejects(
        () => second.run(ECHO, { who: "Bob" }, { runId: done }),
        UsageError,
        "is already in the state store (completed)",
      );
      await assertRejects(
        () => second.run(ECHO, { who: "Bob" }, { runId: interrupted }),
        UsageError,
        `to continue it, resume it: engine.resume('${interrupted}')`,
      );
      const handle = await second.resume(interrupted);
      assertStrictEquals(handle.runId, interrupted);
      await second.store.putSignal({ runId: interrupted, name: "go", data: { ok: true } });
      second.notifySignal(interrupted);
      assertEquals(await handle.result, { outcome: "success", result: { ok: true } });
      assert((await second.store.getRun(interrupted))?.status === "completed");
    } finally {
      await second.close();
    }
  });
});

/**
 * Two engines on one database given the same new run id at the same instant: exactly one runs,
 * the other is refused with the UsageError, and the record is the winner's, whole.
 */
async function oneOfTwoWins(stateStore: JsonValue | MemoryStateStore): Promise<void> {
  // an in-memory store is shared by handing both engines the one object
  const shared = stateStore instanceof MemoryStateStore ? { store: stateStore } : undefined;
  const config = testConfig({}, shared ? {} : { stateStore: stateStore as JsonValue });
  const a = await Engine.create(config, shared);
  const b = await Engine.create(config, shared);
  try {
    for (let round = 0; round < 5; round++) {
      const runId = crypto.randomUUID();
      // the failing input: one new id, two engines, started in the same turn. Before, both
      // looked the id up, found nothing, and both ran it as one record.
      const outcomes = await Promise.allSettled([
        a.run(TWO, { who: "Ada" }, { runId }),
        b.run(TWO, { who: "Bob" }, { runId }),
      ]);
      const won = outcomes.filter((o) => o.status === "fulfilled");
      const lost = outcomes.filter((o) => o.status === "rejected");
      assertStrictEquals(won.length, 1, `round ${round}: ${JSON.stringify(outcomes)}`);
      assertStrictEquals(lost.length, 1);
      const e = (lost[0] as PromiseRejectedResult).reason as Error;
      assert(e instanceof UsageError, String(e));
      assertStringIncludes(
        e.message,
        `RunOptions.runId: run ${runId} is already in the state store (`,
      );
      const result =
        (won[0] as PromiseFulfilledResult<{ outcome: string; result: JsonValue }>).value;
      assertStrictEquals(result.outcome, "success");
      const stored = await a.store.getRun(runId);
      assertStrictEquals(stored?.status, "completed");
      assertEquals(stored?.result, result);
      assertEquals(stored?.input, { who: result.result });
      const steps = await b.store.getStepResults(runId);
      assertEquals(steps.map((s) => s.stepId), ["a", "b"]);
    }
  } finally {
    await a.close();
    await b.close();
  }
}

Deno.test("two engines given one new runId at once on one in-memory store: exactly one runs, the other gets the UsageError", async () => {
  // before: the in-memory store had no claimRunId: both engines looked the id up (getRun),
  // found nothing, and both ran under it
  await oneOfTwoWins(new MemoryStateStore());
});

Deno.test("two engines given one new runId at once on one SQLite database: exactly one runs, the other gets the UsageError", async () => {
  await withTempDir(async (dir) => {
    await oneOfTwoWins({ type: "sqlite", databaseUrl: `sqlite:${dir}/runs.db` });
  });
});

pgTest(
  "two engines given one new runId at once on one PostgreSQL database: exactly one runs, the other gets the UsageError",
  (server) =>
    withPgDatabase(server, async (url) => {
      await oneOfTwoWins({ type: "postgres", url });
    }),
);
