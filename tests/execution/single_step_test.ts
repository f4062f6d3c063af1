/**
 * Nested runs of one-step flows skip the scheduler (src/execution/single_step.ts, issue 17): the
 * results, the state store's records and the observers' events must be those of a scheduled run.
 * Each case runs the same item flow twice: as written (one step: the fast path) and with a second
 * step nothing needs (never run, but it sends the flow through the scheduler).
 * @module
 */
import { assert, assertEquals, assertStrictEquals, REPO_ROOT } from "../_assert.ts";
import { parseConfigValue } from "../../src/config/load.ts";
import { Engine, type RunEvent } from "../../src/execution/engine.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";
import { flow, testConfig } from "./_engine_helpers.ts";

const MOCKS: Record<string, JsonValue> = {
  "/f": {
    behaviors: [
      { input: 1, result: { outcome: "success", result: { v: 10 } } },
      { input: 2, result: { outcome: "failed", error: { code: 7, message: "bad item" } } },
      { input: 3, result: { error: "boom" } },
      { input: 4, result: { outcome: "success", result: { v: 40 } } },
    ],
  },
};

/** Item flows (YAML of the `workflow` object, indented for the map's input). */
const ITEM_FLOWS: Record<string, string> = {
  plain: `
          steps:
            - id: s
              component: /mock/f
              input: { $from: { workflow: input } }
          output: { $from: { step: s } }`,
  useDefault: `
          steps:
            - id: s
              component: /mock/f
              input: { $from: { workflow: input } }
              onError: { action: useDefault, defaultValue: { v: 0 } }
          output: { got: { $from: { step: s }, path: v }, item: { $from: { workflow: input } } }`,
  skip: `
          steps:
            - id: s
              component: /mock/f
              input: { $from: { workflow: input } }
              onError: { action: skip }
          output: { $from: { step: s } }`,
  skipIf: `
          steps:
            - id: s
              component: /mock/f
              input: { $from: { workflow: input } }
              skipIf: { $literal: true }
          output: { $from: { step: s } }`,
  mustExecute: `
          steps:
            - id: s
              component: /mock/f
              input: { $from: { workflow: input } }
              mustExecute: true
          output: { $literal: done }`,
  badOutput: `
          steps:
            - id: s
              component: /mock/f
              input: { $from: { workflow: input } }
          output: { $from: { step: s }, path: missing.field }`,
};

const UNUSED_STEP = `
            - id: unused
              component: /builtin/create_messages
              input: { user_prompt: never run }`;

function mapFlow(itemFlow: string, scheduled: boolean) {
  // the second step goes after the first one's lines (before `output:`)
  const body = scheduled
    ? itemFlow.replace(/\n {10}output:/, `${UNUSED_STEP}\n          output:`)
    : itemFlow;
  return flow(`steps:
  - id: each
    component: /builtin/map
    input:
      items: [1, 2, 3, 4]
      max_concurrency: 2
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json${body}
output: { $from: { step: each } }
`);
}

/** What the store keeps of a run's item runs, without ids and times. */
async function itemRecords(engine: Engine, parentRunId: string) {
  const runs = (await engine.store.listRuns()).filter((r) => r.parentRunId === parentRunId);
  const out = [];
  for (const r of runs) {
    const steps = await engine.store.getStepResults(r.runId);
    out.push({
      runKey: r.runKey,
      status: r.status,
      input: r.input,
      result: r.result,
      rootRunId: r.rootRunId,
      steps: steps.map((s) => ({ stepId: s.stepId, stepIndex: s.stepIndex, result: s.result })),
    });
  }
  return out.sort((a, b) => (a.runKey ?? "").localeCompare(b.runKey ?? ""));
}

for (const [name, itemFlow] of Object.entries(ITEM_FLOWS)) {
  Deno.test(`a one-step item flow (${name}) gives the results and records of a scheduled run`, async () => {
    const engine = await Engine.create(testConfig(MOCKS));
    try {
      const seen: { fast: RunEvent[]; scheduled: RunEvent[] } = { fast: [], scheduled: [] };
      let into = seen.fast;
      engine.observe({ onEvent: (e) => into.push(e) });
      const fast = engine.start(mapFlow(itemFlow, false), null);
      const fastResult = await fast.result;
      into = seen.scheduled;
      const scheduled = engine.start(mapFlow(itemFlow, true), null);
      const scheduledResult = await scheduled.result;
      assertEquals(fastResult, scheduledResult);

      const fastRecords = await itemRecords(engine, fast.runId);
      const scheduledRecords = await itemRecords(engine, scheduled.runId);
      assertStrictEquals(fastRecords.length, 4);
      // the deterministic key of each item's run: <parentRunId>/<stepId>/<item index>
      assertEquals(
        fastRecords.map((r) => r.runKey),
        [0, 1, 2, 3].map((i) => `${fast.runId}/each/${i}`),
      );
      const strip = (rs: typeof fastRecords, runId: string) =>
        rs.map((r) => ({
          ...r,
          runKey: r.runKey?.slice(runId.length),
          rootRunId: r.rootRunId === runId,
        }));
      assertEquals(strip(fastRecords, fast.runId), strip(scheduledRecords, scheduled.runId));
      for (const r of fastRecords) {
        const run = await engine.store.findRunByKey(r.runKey!);
        assertEquals(run?.result, r.result);
      }

      // the same events per item run, in the same order
      const shape = (events: RunEvent[], runId: string) => {
        const byRun = new Map<string, string[]>();
        for (const e of events) {
          if (e.runId === runId) continue;
          const line = e.type === "run_started"
            ? `run_started ${e.runKey?.slice(runId.length)} ${e.parentRunId === runId}`
            : e.type === "step_started"
            ? `step_started ${e.stepId} ${e.attempt}`
            : e.type === "step_finished"
            ? `step_finished ${e.stepId} ${e.outcome}`
            : e.type === "run_finished"
            ? `run_finished ${e.status} ${JSON.stringify(e.result)}`
            : e.type;
          const list = byRun.get(e.runId) ?? [];
          list.push(line);
          byRun.set(e.runId, list);
        }
        return [...byRun.values()].map((l) => l.join("\n")).sort();
      };
      assertEquals(shape(seen.fast, fast.runId), shape(seen.scheduled, scheduled.runId));
    } finally {
      await engine.close();
    }
  });
}

Deno.test("one-step item runs count against maxNestedRuns", async () => {
  const engine = await Engine.create(testConfig(MOCKS, { maxNestedRuns: 2 }));
  try {
    const r = await engine.run(mapFlow(ITEM_FLOWS.useDefault, false), null);
    assert(r.outcome === "failed");
    assertEquals(r.error.data, { kind: "RUN_LIMIT", limit: "maxNestedRuns", value: 2 });
  } finally {
    await engine.close();
  }
});

Deno.test("cancelling a run stops its one-step item runs (a real step service)", async () => {
  const engine = await Engine.create(parseConfigValue({
    plugins: {
      builtin: { type: "builtin" },
      w: { type: "stepflow", command: "python3", args: ["limits_worker.py"] },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/w/{component}": [{ plugin: "w" }],
    },
  }, { workingDirectory: `${REPO_ROOT}/tests/fixtures/workers/limits` }));
  const items = Array.from({ length: 200 }, (_, i) => i);
  let cancel = () => {};
  let started = 0;
  // cancelled once the sixth item run has started (four in flight, two done)
  engine.observe({ runStarted: (e) => e.parentRunId !== undefined && ++started === 6 && cancel() });
  let runId = "";
  try {
    const h = engine.start(
      flow(`steps:
  - id: each
    component: /builtin/map
    input:
      items: ${JSON.stringify(items)}
      max_concurrency: 4
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - id: nap
              component: /w/sleep
              input: { ms: 20 }
          output: { $from: { step: nap } }
output: { $from: { step: each } }
`),
      null,
    );
    runId = h.runId;
    cancel = () => h.cancel();
    const r = await h.result;
    assert(r.outcome === "failed");
    assertStrictEquals(r.error.code, 410);
  } finally {
    await engine.close(); // the calls still open fail as the worker stops
  }
  const runs = (await engine.store.listRuns()).filter((x) => x.parentRunId === runId);
  assertEquals(runs.length, 6);
  for (const x of runs) assert(x.status !== "running", `${x.runKey} still running`);
});

/** A top-level flow of the item flow (de-indented), with the unused second step or without. */
function topFlow(itemFlow: string, scheduled: boolean) {
  const body = scheduled
    ? itemFlow.replace(/\n {10}output:/, `${UNUSED_STEP}\n          output:`)
    : itemFlow;
  return flow(body.replace(/\n {10}/g, "\n").trimStart() + "\n");
}

for (const [name, itemFlow] of Object.entries(ITEM_FLOWS)) {
  for (const input of [1, 2, 3]) {
    Deno.test(`a top-level one-step run (${name}, input ${input}) records and reports as a scheduled one`, async () => {
      const engine = await Engine.create(testConfig(MOCKS));
      try {
        const seen: { fast: RunEvent[]; scheduled: RunEvent[] } = { fast: [], scheduled: [] };
        let into = seen.fast;
        engine.observe({ onEvent: (e) => into.push(e) });
        let recordedFast = false;
        const fast = engine.start(topFlow(itemFlow, false), input, {
          onRecorded: () => recordedFast = true,
        });
        const fastResult = await fast.result;
        await fast.recorded;
        assert(recordedFast);
        into = seen.scheduled;
        const scheduled = engine.start(topFlow(itemFlow, true), input);
        assertEquals(fastResult, await scheduled.result);
        const record = async (runId: string) => {
          const r = await engine.store.getRun(runId);
          assert(r !== undefined);
          const { runId: _i, flowId: _f, createdAt: _c, completedAt: _d, rootRunId, ...rest } = r;
          const steps = await engine.store.getStepResults(runId);
          const info = (await engine.store.getStepInfo(runId)).map((s) => ({
            stepId: s.stepId,
            status: s.status,
            attempt: s.attempt,
            component: s.component,
          }));
          return { rest, root: rootRunId === runId, steps, info, keys: Object.keys(r).sort() };
        };
        assertEquals(await record(fast.runId), await record(scheduled.runId));
        const shape = (events: RunEvent[]) =>
          events.map((e) =>
            e.type === "run_started"
              ? `run_started ${e.parentRunId} ${e.rootRunId === e.runId} ${e.runKey}`
              : e.type === "step_started"
              ? `step_started ${e.stepId} ${e.attempt}`
              : e.type === "step_finished"
              ? `step_finished ${e.stepId} ${e.outcome}`
              : e.type === "run_finished"
              ? `run_finished ${e.status} ${JSON.stringify(e.result)}`
              : e.type
          );
        assertEquals(shape(seen.fast), shape(seen.scheduled));
        assertEquals(fast.inFlight(), []);
      } finally {
        await engine.close();
      }
    });
  }
}

Deno.test("a top-level one-step run times out and is cancelled as a scheduled run", async () => {
  const engine = await Engine.create(parseConfigValue({
    plugins: { w: { type: "stepflow", command: "python3", args: ["limits_worker.py"] } },
    routes: { "/w/{component}": [{ plugin: "w" }] },
  }, { workingDirectory: `${REPO_ROOT}/tests/fixtures/workers/limits` }));
  try {
    const nap = (scheduled: boolean) =>
      topFlow(
        `
          steps:
            - id: nap
              component: /w/sleep
              input: { ms: 5000 }
          output: { $from: { step: nap } }`,
        scheduled,
      );
    for (const scheduled of [false, true]) {
      const timedOut = await engine.run(nap(scheduled), null, { timeoutMs: 50 });
      assert(timedOut.outcome === "failed");
      assertStrictEquals(timedOut.error.code, 524, JSON.stringify(timedOut));
      assertEquals(timedOut.error.data, { kind: "RUN_TIMEOUT" });
      const h = engine.start(nap(scheduled), null);
      while (h.inFlight().length === 0) await new Promise((r) => setTimeout(r, 5));
      assertStrictEquals(h.inFlight()[0].stepId, "nap");
      h.cancel();
      const c = await h.result;
      assert(c.outcome === "failed");
      assertStrictEquals(c.error.code, 410);
      // cancelled by its signal: stored `cancelled` on both paths (src/execution/run_lifecycle.ts endRun)
      assertStrictEquals((await engine.store.getRun(h.runId))?.status, "cancelled");
    }
  } finally {
    await engine.close();
  }
});

Deno.test("a one-step flow's built-in step waiting when its run is cancelled reads failed, as in a flow of two steps", async () => {
  // fault: the one-step path (src/execution/single_step.ts) forgot the step's start when its
  // call was cancelled, so the run's end did not record it: `blocked` in GET /runs/{id}/steps
  // (a two-step flow through the scheduler read `failed`)
  const engine = await Engine.create(testConfig());
  try {
    for (
      const extra of [
        "",
        "  - { id: later, component: /builtin/create_messages, input: { user_prompt: x } }\n",
      ]
    ) {
      const f = flow(`name: wait
steps:
  - { id: w, component: /builtin/wait_for, input: { name: go } }
${extra}output: { $from: { step: w } }
`);
      const h = engine.start(f, {});
      const deadline = Date.now() + 30_000;
      while (h.inFlight().length === 0) {
        if (Date.now() > deadline) throw new Error("w never started");
        await new Promise((r) => setTimeout(r, 20));
      }
      h.cancel();
      const result = await h.result;
      assertStrictEquals(result.outcome, "failed");
      assertStrictEquals((await engine.store.getRun(h.runId))?.status, "cancelled");
      const info = await engine.store.getStepInfo(h.runId);
      const w = info.find((s) => s.stepId === "w");
      assertStrictEquals(
        w?.status,
        "failed",
        `${extra ? "two" : "one"} step(s): ${JSON.stringify(info)}`,
      );
    }
  } finally {
    await engine.close();
  }
});

Deno.test("a map's one-step items cancelled while waiting read as scheduled ones: run cancelled, step failed", async () => {
  // fault: a one-step item run was stored `failed` with no step (a two-step item: `cancelled`,
  // its waiting step `failed`)
  const engine = await Engine.create(testConfig());
  try {
    const seen: string[] = [];
    for (
      const extra of [
        "",
        "            - { id: later, component: /builtin/create_messages, input: { user_prompt: x } }\n",
      ]
    ) {
      const f = flow(`name: top
steps:
  - id: m
    component: /builtin/map
    input:
      items: [1, 2]
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - { id: w, component: /builtin/wait_for, input: { name: go } }
${extra}          output: { $from: { step: w } }
output: { $from: { step: m } }
`);
      let waiting = 0;
      const stop = engine.observe({ stepStarted: (e) => void (e.stepId === "w" && waiting++) });
      const h = engine.start(f, {});
      const deadline = Date.now() + 30_000;
      while (waiting < 2) {
        if (Date.now() > deadline) throw new Error("the items never started");
        await new Promise((r) => setTimeout(r, 20));
      }
      stop();
      h.cancel();
      await h.result;
      const kids = (await engine.store.listRuns({ limit: 100 })).filter((r) =>
        r.parentRunId === h.runId
      );
      for (const k of kids) {
        const steps = (await engine.store.getStepInfo(k.runId)).map((s) =>
          `${s.stepId}:${s.status}`
        );
        seen.push(`${extra ? "two" : "one"} ${k.status} ${steps.join(",")}`);
      }
    }
    assertEquals(seen, [
      "one cancelled w:failed",
      "one cancelled w:failed",
      "two cancelled w:failed",
      "two cancelled w:failed",
    ]);
  } finally {
    await engine.close();
  }
});
