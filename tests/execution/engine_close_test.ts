/**
 * `engine.close()` while runs are going, an engine used after `close()`, and what an engine keeps
 * in memory (library API).
 * Before: a run going at close was told 507 "cannot store run state in SQLite database ...:
 * database is not open ... It is recorded failed with this error as soon as the database can be
 * written again" while the store marked it interrupted (503, resumable), and a run started after
 * close ran on the closed store and failed inside a step with "Failed to get blob: statement has
 * been finalized" (or, with the in-memory store, simply succeeded). Two runs started with the same
 * `runId` ran as one record (their step results mixed, the last result kept).
 * @module
 */
import {
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
  removeTree,
} from "../_assert.ts";
import {
  configFromValue,
  Engine,
  loadFlow,
  openStateStore,
  parseFlowValue,
  UsageError,
} from "../../mod.ts";
import { FLOW_CACHE_SIZE } from "../../src/execution/engine.ts";

const WAIT_FLOW = `
schema: https://stepflow.org/schemas/v1/flow.json
name: waits
steps:
  - { id: w, component: /builtin/wait_for, input: { name: go } }
output: { $from: { step: w } }
`;

function config(db: string) {
  return configFromValue({
    stateStore: { type: "sqlite", databaseUrl: `sqlite:${db}` },
    plugins: { builtin: { type: "builtin" } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
  });
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("engine.close() interrupts the runs still going (told 503 as stored, resumable) and a closed engine refuses new runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const db = `${dir}/runs.db`;
    const flow = await loadFlow(WAIT_FLOW, { text: true });
    const engine = await Engine.create(config(db));
    const handle = engine.start(flow, {});
    await until("the step to wait", () => handle.inFlight().length === 1);
    await handle.recorded;
    await engine.close();
    const r = await handle.result;
    assertEquals(r.outcome, "failed");
    if (r.outcome !== "failed") return;
    assertEquals(r.error.code, 503, JSON.stringify(r));
    assertStringIncludes(r.error.message, "the engine was closed (engine.close())");
    assertStringIncludes(r.error.message, `stepflow resume ${handle.runId}`);

    // what the run was told is what the store says, and it can be resumed
    const again = await Engine.create(config(db));
    try {
      // (a run waiting for a signal stays `paused`; one with a step running is marked failed, 503)
      const rec = await again.store.getRun(handle.runId);
      assertEquals(rec?.status === "paused" || rec?.status === "failed", true, rec?.status);
      const resumed = await again.resume(handle.runId);
      await until("the resumed step to wait", () => resumed.inFlight().length === 1);
      await again.store.putSignal({ runId: handle.runId, name: "go", data: 7 });
      again.notifySignal(handle.runId);
      assertEquals(await resumed.result, { outcome: "success", result: 7 });
    } finally {
      await again.close();
    }

    // a closed engine says so (before: ran on the closed store)
    await assertRejects(() => engine.run(flow, {}), UsageError, "the engine is closed");
    assertThrows(() => engine.start(flow, {}), UsageError, "the engine is closed");
    await assertRejects(() => engine.resume(handle.runId), UsageError, "the engine is closed");
    await engine.close(); // twice is fine
  } finally {
    await removeTree(dir);
  }
});

Deno.test("engine.close() while a step service's step runs: the run is told 503 interrupted (was -32603 'step service is closed' or 507)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const workers = new URL("../fixtures/workers", import.meta.url).pathname;
    const engine = await Engine.create(configFromValue({
      stateStore: { type: "sqlite", databaseUrl: `sqlite:${dir}/runs.db` },
      plugins: { py: { type: "stepflow", command: "python3", args: [`${workers}/py_worker.py`] } },
      routes: { "/py/{*component}": [{ plugin: "py" }] },
    }));
    const flow = await loadFlow(
      `schema: https://stepflow.org/schemas/v1/flow.json
name: sleeps
steps:
  - { id: s, component: /py/sleep, input: { ms: 60000 } }
output: { $from: { step: s } }
`,
      { text: true },
    );
    const handle = engine.start(flow, {});
    await until("the step to run", () => handle.inFlight().length === 1);
    await engine.close();
    const r = await handle.result;
    assertEquals(r.outcome === "failed" && r.error.code, 503, JSON.stringify(r));
    assertStringIncludes(JSON.stringify(r), "the engine was closed (engine.close())");
  } finally {
    await removeTree(dir);
  }
});

Deno.test("engine.start: a runId already executing in this engine is refused; once ended it may be given again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const flow = await loadFlow(WAIT_FLOW, { text: true });
    const engine = await Engine.create(config(`${dir}/runs.db`));
    try {
      const runId = crypto.randomUUID();
      const first = engine.start(flow, {}, { runId });
      assertThrows(
        () => engine.start(flow, {}, { runId }),
        UsageError,
        `run ${runId} is already executing in this engine`,
      );
      await assertRejects(() => engine.run(flow, {}, { runId }), UsageError, "already executing");
      first.cancel();
      assertEquals((await first.result).outcome, "failed");
    } finally {
      await engine.close();
    }
  } finally {
    await removeTree(dir);
  }
});

Deno.test("engine: the parsed flows it keeps by id are bounded (FLOW_CACHE_SIZE); an evicted flow is read back from the store", async () => {
  // Before: every distinct flow an engine ran stayed parsed in memory for the engine's life
  // (~4 KB each: a service or library process running generated flows grew without bound).
  // (a store that keeps every flow here: the in-memory store's own bound, maxFlows, is 1000 too;
  // tests/server/flow_retention_test.ts tests it)
  const inner = await openStateStore(
    { type: "inMemory", maxFlows: 2 * FLOW_CACHE_SIZE },
    Deno.cwd(),
  );
  let reads = 0;
  const store = new Proxy(inner, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (key === "getBlob") {
        return (id: string) => {
          reads++;
          return (v as (id: string) => unknown).call(target, id);
        };
      }
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const engine = await Engine.create(
    configFromValue({
      plugins: { builtin: { type: "builtin" } },
      routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
    }),
    { store },
  );
  try {
    const ids: string[] = [];
    for (let i = 0; i <= FLOW_CACHE_SIZE; i++) {
      const flow = parseFlowValue({
        schema: "https://stepflow.org/schemas/v1/flow.json",
        name: `f${i}`,
        steps: [{ id: "a", component: "/builtin/create_messages", input: { user_prompt: `${i}` } }],
        output: { $from: { step: "a" }, path: "$.messages[0].content" },
      });
      assertEquals(await engine.run(flow, {}), { outcome: "success", result: `${i}` });
      ids.push(engine.storeFlow(flow.flow));
    }
    reads = 0;
    assertEquals((await engine.getFlow(ids[FLOW_CACHE_SIZE])).name, `f${FLOW_CACHE_SIZE}`);
    assertEquals(reads, 0); // kept
    assertEquals((await engine.getFlow(ids[0])).name, "f0");
    assertEquals(reads, 1); // evicted: read from the store, and kept again
    assertEquals((await engine.getFlow(ids[0])).name, "f0");
    assertEquals(reads, 1);
  } finally {
    await engine.close();
  }
});
