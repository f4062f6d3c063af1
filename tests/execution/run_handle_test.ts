/**
 * The run handle (`engine.start()`), run observers, `ExecuteContext.progress`, the per-run step
 * gate, and the record stage's handling of a store that commits in groups (a promise per write).
 * @module
 */
import { assert, assertEquals, assertStrictEquals, REPO_ROOT } from "../_assert.ts";
import { Engine, type RunEvent } from "../../src/execution/engine.ts";
import { parseConfigValue } from "../../src/config/load.ts";
import { MemoryStateStore } from "../../src/state/memory.ts";
import type { RunRecord, RunStatus, StepResultRecord } from "../../src/state/store.ts";
import type { FlowResult } from "../../src/core/flow_result.ts";
import { GroupCommit } from "../../src/state/group_commit.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";
import type { ExecuteContext } from "../../src/plugins/plugin.ts";
import { STORE_FAILED } from "../../src/core/error_codes.ts";
import { flow, testConfig } from "./_engine_helpers.ts";

const WORKER = `${REPO_ROOT}/tests/fixtures/workers/limits/limits_worker.py`;

/** builtin + a python step service `w` (components /sleep, ...). */
function workerConfig() {
  return parseConfigValue({
    plugins: {
      builtin: { type: "builtin" },
      w: { type: "stepflow", command: "python3", args: [WORKER] },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/w/{component}": [{ plugin: "w" }],
    },
  }, { workingDirectory: Deno.cwd() });
}

const TWO_STEPS = flow(`steps:
  - { id: a, component: /builtin/create_messages, input: { user_prompt: hi } }
  - id: b
    component: /builtin/create_messages
    input: { user_prompt: { $from: { step: a }, path: "$.messages[0].content" } }
output: { $from: { step: b }, path: "$.messages[0].content" }
`);

Deno.test("engine.start(): the handle's runId, result, inFlight() and cancel()", async () => {
  const engine = await Engine.create(workerConfig());
  try {
    const dir = await Deno.makeTempDir();
    const ready = `${dir}/ready`;
    const h = engine.start(
      flow(`steps:
  - { id: nap, component: /w/sleep, input: { ms: 60000, ready_file: ${JSON.stringify(ready)} } }
output: { $from: { step: nap } }
`),
      {},
      { runId: "0193a1b2-0000-7000-8000-00000000000a" },
    );
    assertStrictEquals(h.runId, "0193a1b2-0000-7000-8000-00000000000a");
    for (let i = 0; i < 600; i++) {
      try {
        if ((await Deno.readTextFile(ready)).length > 0) break;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const running = h.inFlight();
    assertEquals(running.map((s) => [s.stepId, s.attempt]), [["nap", 1]]);
    assert(Date.now() - running[0].startedAt < 60_000);
    h.cancel(new Error("enough"));
    const r = await h.result;
    assert(r.outcome === "failed");
    assertStrictEquals(r.error.code, 410);
    assertEquals(h.inFlight(), []);
    await Deno.remove(dir, { recursive: true });
  } finally {
    await engine.close();
  }
});

Deno.test("engine.observe(): run and step events in order; nested runs carry parent and key", async () => {
  const engine = await Engine.create(testConfig());
  try {
    const events: RunEvent[] = [];
    const stop = engine.observe({ onEvent: (e) => events.push(e) });
    const r = await engine.run(TWO_STEPS, {});
    assertEquals(r, { outcome: "success", result: "hi" });
    assertEquals(events.map((e) => e.type), [
      "run_started",
      "step_started",
      "step_finished",
      "step_started",
      "step_finished",
      "run_finished",
    ]);
    const finished = events.filter((e) => e.type === "step_finished");
    assertEquals(finished.map((e) => e.type === "step_finished" && [e.stepId, e.outcome]), [
      ["a", "success"],
      ["b", "success"],
    ]);
    // a map: its item runs say where they come from
    events.length = 0;
    const m = await engine.run(
      flow(`steps:
  - id: each
    component: /builtin/map
    input:
      items: [1, 2]
      workflow:
        schema: https://stepflow.org/schemas/v1/flow.json
        output: { $from: { workflow: input } }
output: { $from: { step: each }, path: successful }
`),
      {},
    );
    assertEquals(m, { outcome: "success", result: 2 });
    const starts = events.filter((e) => e.type === "run_started");
    const root = starts[0];
    assert(root.type === "run_started");
    assertStrictEquals(root.rootRunId, root.runId);
    const keys = starts.slice(1).map((e) => e.type === "run_started" && e.runKey).sort();
    assertEquals(keys, [`${root.runId}/each/0`, `${root.runId}/each/1`]);
    for (const e of starts.slice(1)) {
      assert(e.type === "run_started");
      assertStrictEquals(e.parentRunId, root.runId);
      assertStrictEquals(e.rootRunId, root.runId);
    }
    // unsubscribed: nothing more
    stop();
    events.length = 0;
    await engine.run(TWO_STEPS, {});
    assertEquals(events, []);
  } finally {
    await engine.close();
  }
});

Deno.test("an observer that throws is logged and does not break the run", async () => {
  const engine = await Engine.create(testConfig());
  try {
    engine.observe({
      stepStarted: () => {
        throw new Error("observer bug");
      },
    });
    assertEquals(await engine.run(TWO_STEPS, {}), { outcome: "success", result: "hi" });
  } finally {
    await engine.close();
  }
});

Deno.test("ExecuteContext.progress reaches observers as step_progress; absent when nobody observes", async () => {
  const engine = await Engine.create(testConfig());
  try {
    const builtin = engine.plugins.get("builtin")!;
    const execute = builtin.execute.bind(builtin);
    const seen: boolean[] = [];
    (builtin as { execute: typeof execute }).execute = (c, input, ctx: ExecuteContext) => {
      seen.push(ctx.progress !== undefined);
      ctx.progress?.({ tokens: 3 });
      return execute(c, input, ctx);
    };
    await engine.run(TWO_STEPS, {});
    assertEquals(seen, [false, false]);
    const progress: JsonValue[] = [];
    engine.observe({ stepProgress: (e) => progress.push([e.stepId, e.data]) });
    await engine.run(TWO_STEPS, {});
    assertEquals(progress, [["a", { tokens: 3 }], ["b", { tokens: 3 }]]);
  } finally {
    await engine.close();
  }
});

Deno.test("RunOptions.gate holds a ready step until its promise resolves", async () => {
  const engine = await Engine.create(testConfig());
  try {
    let release!: () => void;
    const held = new Promise<void>((r) => release = r);
    const asked: string[] = [];
    let started = 0;
    engine.observe({ stepStarted: () => started++ });
    const h = engine.start(TWO_STEPS, {}, {
      gate: (step) => {
        asked.push(step.id);
        return step.id === "b" ? held : undefined;
      },
    });
    // a runs at once; b waits
    for (let i = 0; i < 100 && asked.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assertEquals(asked, ["a", "b"]);
    assertStrictEquals(started, 1);
    release();
    assertEquals(await h.result, { outcome: "success", result: "hi" });
    assertStrictEquals(started, 2);
  } finally {
    await engine.close();
  }
});

/** A memory store whose step-result writes commit later (as a group-committing store does). */
class SlowCommitStore extends MemoryStateStore {
  commits: { stepId: string; at: number }[] = [];
  fail = false;
  override recordStepResult(runId: string, record: StepResultRecord): Promise<void> {
    super.recordStepResult(runId, record);
    return new Promise<void>((resolve, reject) =>
      setTimeout(() => {
        if (this.fail) {
          reject(new Error("cannot store run state in test database 'mem': disk full"));
          return;
        }
        this.commits.push({ stepId: record.stepId, at: performance.now() });
        resolve();
      }, 50)
    );
  }
}

Deno.test("a step with side effects starts only after the results it follows are committed", async () => {
  const store = new SlowCommitStore();
  const engine = await Engine.create(workerConfig(), { store });
  try {
    const starts: Record<string, number> = {};
    engine.observe({ stepStarted: (e) => starts[e.stepId] = performance.now() });
    const calls: Record<string, number> = {};
    const w = engine.plugins.get("w")!;
    const execute = w.execute.bind(w);
    (w as { execute: typeof execute }).execute = (c, input, ctx) => {
      calls[ctx.stepId] = performance.now();
      return execute(c, input, ctx);
    };
    const r = await engine.run(
      flow(`steps:
  - { id: a, component: /builtin/create_messages, input: { user_prompt: hi } }
  - id: b
    component: /w/sleep
    input: { ms: { $literal: 0 }, after: { $from: { step: a } } }
output: { $from: { step: b }, path: slept }
`),
      {},
    );
    assertEquals(r, { outcome: "success", result: 0 });
    const aCommitted = store.commits.find((c) => c.stepId === "a")!.at;
    assert(calls.b >= aCommitted, `b was called ${aCommitted - calls.b} ms before a's commit`);
    // and the run's result was given after b's commit
    assert(store.commits.some((c) => c.stepId === "b"));
  } finally {
    await engine.close();
  }
});

Deno.test("a store write that fails fails the run with 507 naming the store", async () => {
  const store = new SlowCommitStore();
  store.fail = true;
  const engine = await Engine.create(testConfig(), { store });
  try {
    const r = await engine.run(TWO_STEPS, {});
    assert(r.outcome === "failed", JSON.stringify(r));
    assertStrictEquals(r.error.code, STORE_FAILED);
    assertStrictEquals(
      r.error.message,
      "cannot store run state in test database 'mem': disk full",
    );
  } finally {
    await engine.close();
  }
});

/**
 * A memory store that commits as the SQLite store does: the writes of one event-loop turn in one
 * group commit (src/state/group_commit.ts), each taking `delayMs` to become durable; it records
 * what each commit held and when it ended.
 */
class GroupCommitStore extends MemoryStateStore {
  commits: { writes: string[]; at: number }[] = [];
  /** Commits holding a write that starts with this fail ("cannot store ..."). */
  failOn: string | undefined;
  delayMs = 30;
  #queue: string[] = [];
  #gc = new GroupCommit(() => {
    const writes = this.#queue;
    this.#queue = [];
    return new Promise<void>((resolve, reject) =>
      setTimeout(() => {
        if (this.failOn !== undefined && writes.some((w) => w.startsWith(this.failOn!))) {
          reject(new Error("cannot store run state in test database 'mem': disk full"));
          return;
        }
        this.commits.push({ writes, at: performance.now() });
        resolve();
      }, this.delayMs)
    );
  });
  #write(what: string): Promise<void> {
    this.#queue.push(what);
    return this.#gc.queued();
  }
  override createRun(run: RunRecord): Promise<void> {
    super.createRun(run);
    return this.#write("run");
  }
  override recordStepResult(runId: string, record: StepResultRecord): Promise<void> {
    super.recordStepResult(runId, record);
    return this.#write(`result ${record.stepId}`);
  }
  override completeRun(runId: string, status: RunStatus, result?: FlowResult): Promise<void> {
    super.completeRun(runId, status, result);
    return this.#write(`end ${status}`);
  }
  override async close(): Promise<void> {
    await this.#gc.drain();
    await super.close();
  }
}

Deno.test("a short run of built-in steps is one commit: its end is queued behind its results", async () => {
  const store = new GroupCommitStore();
  const engine = await Engine.create(testConfig(), { store });
  try {
    const finished: number[] = [];
    engine.observe({ runFinished: () => finished.push(performance.now()) });
    const r = await engine.run(TWO_STEPS, {});
    const answeredAt = performance.now();
    assertEquals(r, { outcome: "success", result: "hi" });
    // the run, both results and the end in one group commit (before: results, then the end)
    assertEquals(store.commits.map((c) => c.writes), [[
      "run",
      "result a",
      "result b",
      "end completed",
    ]]);
    // the result is given only once the end is committed
    assert(answeredAt >= store.commits[0].at, "the result came before the end was committed");
    assert(finished[0] >= store.commits[0].at, "run_finished came before the end was committed");
  } finally {
    await engine.close();
  }
});

Deno.test("a run's result waits for its end's commit, even when the results' commit came first", async () => {
  const store = new GroupCommitStore();
  store.delayMs = 40;
  const engine = await Engine.create(workerConfig(), { store });
  try {
    // the step service's result comes in a later turn than the run's start: two commits, the
    // second holding b's result and the run's end
    const r = await engine.run(
      flow(`steps:
  - id: b
    component: /w/sleep
    input: { ms: { $literal: 0 } }
output: { $from: { step: b }, path: slept }
`),
      {},
    );
    const answeredAt = performance.now();
    assertEquals(r, { outcome: "success", result: 0 });
    const end = store.commits.find((c) => c.writes.includes("end completed"))!;
    assert(end.writes.includes("result b"), JSON.stringify(store.commits));
    assert(answeredAt >= end.at, "the result came before the end was committed");
  } finally {
    await engine.close();
  }
});

Deno.test("a failed commit of the run's end fails the run with 507, reported and stored", async () => {
  const store = new GroupCommitStore();
  store.failOn = "end completed";
  const engine = await Engine.create(testConfig(), { store });
  try {
    const statuses: string[] = [];
    engine.observe({ runFinished: (e) => statuses.push(e.status) });
    const h = engine.start(TWO_STEPS, {});
    const r = await h.result;
    assert(r.outcome === "failed", JSON.stringify(r));
    assertStrictEquals(r.error.code, STORE_FAILED);
    assertStrictEquals(
      r.error.message,
      "cannot store run state in test database 'mem': disk full",
    );
    // the store is told the run failed (its end said `completed` when it was queued)
    const stored = await store.getRun(h.runId);
    assertStrictEquals(stored?.status, "failed");
    assertStrictEquals(stored?.result?.outcome, "failed");
    // and observers see it failed
    assertEquals(statuses, ["failed"]);
  } finally {
    await engine.close();
  }
});
