/**
 * End-to-end acceptance of issue 5 with real step-service processes
 * (tests/fixtures/workers/limits/limits_worker.py): timeouts and retries of a sleeping step, a
 * run timeout, no process left behind, and a 10,000-item map with concurrency 4 checked by the
 * worker itself.
 * @module
 */
import { assert, assertEquals, assertStringIncludes, removeTree, REPO_ROOT } from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { parseConfigValue } from "../../src/config/load.ts";
import type { FlowResult } from "../../src/core/flow_result.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";
import { flow } from "./_engine_helpers.ts";

const WORKER_DIR = `${REPO_ROOT}/tests/fixtures/workers/limits`;

function config(extra: Record<string, JsonValue> = {}) {
  return parseConfigValue({
    plugins: {
      builtin: { type: "builtin" },
      w: {
        type: "stepflow",
        command: "python3",
        args: ["limits_worker.py"],
        env: { PYTHONUNBUFFERED: "1" },
        restartDelay: 1,
        maxRestarts: 10,
      },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/w/{component}": [{ plugin: "w" }],
    },
    ...extra,
  }, { workingDirectory: WORKER_DIR });
}

async function withEngine<T>(fn: (e: Engine) => Promise<T>, extra = {}): Promise<T> {
  const engine = await Engine.create(config(extra));
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

Deno.test("e2e: a step sleeping past its timeout fails as a timeout, and its retry runs", async () => {
  await withEngine(async (engine) => {
    const r = await engine.run(
      flow(`
steps:
  - id: nap
    component: /w/sleep
    input: { ms: 3000 }
    timeout: 100ms
output: { $from: { step: nap } }
`),
      null,
    );
    assert(r.outcome === "failed");
    assertEquals(r.error.code, 504);
    assertEquals(r.error.message, "Step 'nap' timed out after 100ms (timeout: 100 ms)");

    // Attempt 1 sleeps 3 s and times out; the retry (attempt 2) sleeps 10 ms and passes.
    const r2 = await engine.run(
      flow(`
steps:
  - id: nap
    component: /w/sleep
    input: { ms_by_attempt: [3000, 10] }
    timeout: 300ms
    onError: { action: retry, maxRetries: 1, initialDelay: 0 }
output: { $from: { step: nap } }
`),
      null,
    );
    assertEquals(r2, { outcome: "success", result: { slept: 10, attempt: 2 } });
  });
});

Deno.test("e2e: a run timeout ends a flow with a long step promptly", async () => {
  await withEngine(async (engine) => {
    const t0 = performance.now();
    const r = await engine.run(
      flow(`
steps:
  - id: long
    component: /w/sleep
    input: { ms: 30000 }
output: { $from: { step: long } }
`),
      null,
      { timeoutMs: 300 },
    );
    const took = performance.now() - t0;
    assert(r.outcome === "failed");
    assertEquals(r.error.code, 524);
    assert(took < 3000, `the run took ${took} ms`);
  });
});

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // state is the field after the parenthesised command name; Z = zombie (already dead)
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

Deno.test("e2e: a step service that spawned a child process leaves no process behind", async () => {
  const dir = await Deno.makeTempDir();
  const pidFile = `${dir}/child.pid`;
  try {
    await withEngine(async (engine) => {
      const r = await engine.run(
        flow(`
steps:
  - id: spawn
    component: /w/spawn
    input: { pid_file: ${JSON.stringify(pidFile)} }
    timeout: 1s
output: { $from: { step: spawn } }
`),
        null,
      );
      assertEquals(r.outcome, "failed");
    });
    const pid = Number(await Deno.readTextFile(pidFile));
    assert(pid > 0, "the worker wrote its child's pid");
    // The engine is closed: the worker's process group got SIGTERM. Give the kernel a moment.
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert(!alive(pid), `child process ${pid} is still running`);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("e2e: a 10,000-item map with max_concurrency 4 never has more than 4 calls in flight", async () => {
  const n = 10_000;
  const items = Array.from({ length: n }, (_, i) => i);
  await withEngine(async (engine) => {
    const r: FlowResult = await engine.run(
      flow(`
steps:
  - id: each
    component: /builtin/map
    input:
      workflow:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          steps:
            - id: c
              component: /w/count
              input: { limit: 4, item: { $from: { workflow: input } } }
          output: { $from: { step: c }, path: in_flight }
      items: { $from: { workflow: input }, path: items }
      max_concurrency: 4
  - id: peak
    component: /w/peak
    input: { after: { $from: { step: each }, path: successful } }
output:
  successful: { $from: { step: each }, path: successful }
  failed: { $from: { step: each }, path: failed }
  worker: { $from: { step: peak } }
`),
      { items } as unknown as JsonValue,
    );
    assert(r.outcome === "success", JSON.stringify(r).slice(0, 500));
    const out = r.result as {
      successful: number;
      failed: number;
      worker: { peak: number; calls: number };
    };
    assertEquals(out.successful, n);
    assertEquals(out.failed, 0);
    assertEquals(out.worker.calls, n);
    assert(out.worker.peak <= 4, `peak in flight was ${out.worker.peak}`);
  });
});

Deno.test("e2e: worker crashes use the transport budget, not the component budget", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withEngine(async (engine) => {
      // Calls 1-2 crash the worker (with a retry policy the engine, not the plugin, retries a
      // crashed call: two transport failures), calls 3-4 fail in the component, call 5
      // succeeds: maxRetries 2 is enough only if the crashes did not count against it.
      const r = await engine.run(
        flow(`
steps:
  - id: c
    component: /w/crashy
    input: { dir: ${JSON.stringify(dir)}, crashes: 2, failures: 2 }
    onError: { action: retry, maxRetries: 2, maxTransportRetries: 2, initialDelay: 1 }
output: { $from: { step: c } }
`),
        null,
      );
      assert(r.outcome === "success", JSON.stringify(r));
      assertEquals((r.result as { calls: number }).calls, 5);

      // Without a transport budget the crash ends the step, whatever maxRetries says.
      await Deno.remove(`${dir}/calls`);
      const r2 = await engine.run(
        flow(`
steps:
  - id: c
    component: /w/crashy
    input: { dir: ${JSON.stringify(dir)}, crashes: 2, failures: 0 }
    onError: { action: retry, maxRetries: 5, maxTransportRetries: 0, initialDelay: 1 }
output: { $from: { step: c } }
`),
        null,
      );
      assert(r2.outcome === "failed", JSON.stringify(r2));
      assertEquals(r2.error.code, -32603);
      assertStringIncludes(r2.error.message, "Step 'c' failed after 1 attempt: ");
    });
  } finally {
    await removeTree(dir);
  }
});
