/**
 * Retries, timeouts, cancellation, limits and the output size limit through the engine, with an
 * in-process test plugin (real workers: limits_e2e_test.ts). Delays are a few ms of real time.
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { registerPluginType } from "../../src/plugins/registry.ts";
import type { ExecuteContext, Plugin } from "../../src/plugins/plugin.ts";
import type { LoadedConfig } from "../../src/config/model.ts";
import { PluginError } from "../../src/errors.ts";
import { failed, type FlowResult, success } from "../../src/core/flow_result.ts";
import { isJsonObject, type JsonValue } from "../../src/json/exact_json.ts";
import { flow } from "./_engine_helpers.ts";

/** What the test plugin saw. */
const seen = {
  attempts: new Map<string, number[]>(),
  inFlight: 0,
  peak: 0,
  aborted: [] as string[],
};

function resetSeen() {
  seen.attempts.clear();
  seen.inFlight = 0;
  seen.peak = 0;
  seen.aborted = [];
}

/**
 * Components: `/flaky` `{key, failures, code?}` fails `failures` times per key then succeeds;
 * `/sleep` `{ms}` waits (or until aborted); `/big` `{bytes}` returns a string that long.
 */
class PolicyTestPlugin implements Plugin {
  readonly type = "policy_test";
  constructor(readonly name: string) {}
  init() {
    return Promise.resolve();
  }
  listComponents() {
    return Promise.resolve([]);
  }
  async execute(component: string, input: JsonValue, ctx: ExecuteContext): Promise<FlowResult> {
    const o = isJsonObject(input) ? input : {};
    seen.inFlight++;
    seen.peak = Math.max(seen.peak, seen.inFlight);
    try {
      if (component === "/flaky") {
        const key = String(o.key);
        const list = seen.attempts.get(key) ?? [];
        list.push(ctx.attempt);
        seen.attempts.set(key, list);
        await Promise.resolve();
        if (list.length <= Number(o.failures)) {
          return failed(Number(o.code ?? 42), `flaky failure ${list.length}`);
        }
        return success({ attempts: list });
      }
      if (component === "/sleep") {
        const ms = Number(o.ms);
        const ok = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(true), ms);
          ctx.signal.addEventListener("abort", () => {
            clearTimeout(t);
            resolve(false);
          }, { once: true });
        });
        if (!ok) {
          seen.aborted.push(ctx.stepId);
          throw ctx.signal.reason;
        }
        return success({ slept: ms, attempt: ctx.attempt });
      }
      if (component === "/big") return success("x".repeat(Number(o.bytes)));
      if (component === "/boom") throw new PluginError("boom: the component cannot run");
      throw new Error(`unknown component ${component}`);
    } finally {
      seen.inFlight--;
    }
  }
  close() {
    return Promise.resolve();
  }
}

registerPluginType("policy_test", (name) => new PolicyTestPlugin(name));

function config(extra: Record<string, unknown> = {}, plugin: Record<string, unknown> = {}) {
  return {
    config: {
      plugins: { t: { type: "policy_test", ...plugin } },
      routes: { "/t/{component}": [{ plugin: "t" }] },
      stateStore: { type: "inMemory" },
      ...extra,
    },
    workingDirectory: Deno.cwd(),
  } as unknown as LoadedConfig;
}

async function run(
  yaml: string,
  input: JsonValue = null,
  options: Parameters<Engine["run"]>[2] = {},
  cfg: LoadedConfig = config(),
): Promise<FlowResult> {
  resetSeen();
  const engine = await Engine.create(cfg);
  try {
    return await engine.run(flow(yaml), input, options);
  } finally {
    await engine.close();
  }
}

Deno.test("Engine.run() retries a failing step with attempt numbers until it passes", async () => {
  const r = await run(`
steps:
  - id: a
    component: /t/flaky
    input: { key: a, failures: 2 }
    onError: { action: retry, maxRetries: 2, initialDelay: 1 }
output: { $from: { step: a } }
`);
  assertEquals(r, success({ attempts: [1, 2, 3] }));
});

Deno.test("Engine.run() fails 'after 2 attempts' when retries run out, then onError-like fallback applies", async () => {
  const r = await run(`
steps:
  - id: a
    component: /t/flaky
    input: { key: a, failures: 2 }
    onError: { action: retry, maxRetries: 1, initialDelay: 0 }
output: { $from: { step: a } }
`);
  assert(r.outcome === "failed");
  assertEquals(r.error.code, 42);
  assertEquals(r.error.message, "Step 'a' failed after 2 attempts: flaky failure 2");
  const fb = await run(
    `
steps:
  - id: a
    component: /t/flaky
    input: { key: a, failures: 9 }
    onError:
      action: retry
      maxRetries: 1
      initialDelay: 0
      fallback: { action: useDefault, defaultValue: { $from: { workflow: input }, path: d } }
output: { $from: { step: a } }
`,
    { d: "default!" },
  );
  assertEquals(fb, success("default!"));
});

Deno.test("Engine.run() keeps a 0.8 flow's meaning: without retry a failure is not retried", async () => {
  const r = await run(`
steps:
  - id: a
    component: /t/flaky
    input: { key: a, failures: 1 }
    onError: { action: useDefault, defaultValue: 0 }
output: { $from: { step: a } }
`);
  assertEquals(r, success(0));
  assertEquals(seen.attempts.get("a"), [1]);
});

Deno.test("Engine.run() times out a step (504 naming step and limit); a retry of it runs", async () => {
  const r = await run(`
steps:
  - id: slow
    component: /t/sleep
    input: { ms: 5000 }
    timeout: 30ms
output: { $from: { step: slow } }
`);
  assert(r.outcome === "failed");
  assertEquals(r.error.code, 504);
  assertEquals(r.error.message, "Step 'slow' timed out after 30ms (timeout: 30 ms)");
  assertEquals(seen.aborted, ["slow"]);

  // The step timeout applies per attempt; a plugin default applies when the step has none.
  const r2 = await run(
    `
steps:
  - id: slow
    component: /t/sleep
    input: { ms: 5000 }
    onError: { action: retry, maxRetries: 1, initialDelay: 0, fallback: { action: skip } }
output: { $from: { step: slow }, onSkip: { action: useDefault, defaultValue: gave up } }
`,
    null,
    {},
    config({}, { timeout: 20 }),
  );
  assertEquals(r2, success("gave up"));
  assertEquals(seen.aborted, ["slow", "slow"]);
});

Deno.test("Engine.run() ends a run with a long step promptly at the run timeout (524)", async () => {
  const t0 = performance.now();
  const r = await run(
    `
steps:
  - id: long
    component: /t/sleep
    input: { ms: 10000 }
output: { $from: { step: long } }
`,
    null,
    { timeoutMs: 50 },
  );
  const took = performance.now() - t0;
  assert(r.outcome === "failed");
  assertEquals(r.error.code, 524);
  assertStringIncludes(r.error.message, "The run timed out after 50ms (timeout: 50 ms)");
  assert(took < 2000, `took ${took} ms`);
  // The call in flight was abandoned (its signal aborted).
  await new Promise((res) => setTimeout(res, 0));
  assertEquals(seen.aborted, ["long"]);
});

Deno.test("Engine.run() with an aborted AbortSignal cancels running steps", async () => {
  const ctrl = new AbortController();
  const p = run(
    `
steps:
  - id: a
    component: /t/sleep
    input: { ms: 10000 }
  - id: b
    component: /t/sleep
    input: { ms: 10000 }
output: { a: { $from: { step: a } }, b: { $from: { step: b } } }
`,
    null,
    { signal: ctrl.signal },
  );
  setTimeout(() => ctrl.abort(), 20);
  const r = await p;
  assertEquals(r.outcome, "failed");
  await new Promise((res) => setTimeout(res, 0));
  assertEquals(seen.aborted.sort(), ["a", "b"]);
});

Deno.test("Engine.run() keeps at most maxConcurrency steps in flight (option and config)", async () => {
  const steps = Array.from({ length: 8 }, (_, i) => `
  - id: s${i}
    component: /t/sleep
    input: { ms: 5 }`).join("");
  const out = `output: [${Array.from({ length: 8 }, (_, i) => `{ $from: { step: s${i} } }`)}]`;
  const yaml = `steps:${steps}\n${out}\n`;
  const r = await run(yaml, null, { maxConcurrency: 3 });
  assertEquals(r.outcome, "success");
  assertEquals(seen.peak, 3);
  await run(yaml, null, {}, config({ maxConcurrency: 2 }));
  assertEquals(seen.peak, 2);
  await run(yaml, null, {}, config({}, { maxConcurrency: 1 }));
  assertEquals(seen.peak, 1);
  await run(yaml);
  assertEquals(seen.peak, 8);
});

Deno.test("Engine.run() fails a step whose output is over maxOutputSize, without retry", async () => {
  const r = await run(
    `
steps:
  - id: big
    component: /t/big
    input: { bytes: 2000 }
    onError: { action: retry, initialDelay: 0 }
output: { $from: { step: big } }
`,
    null,
    {},
    config({ maxOutputSize: 1000 }),
  );
  assert(r.outcome === "failed");
  assertEquals(r.error.code, 413);
  assertEquals(
    r.error.message,
    "Step 'big' output is 2002 bytes, over the limit of 1000 bytes (raise maxOutputSize or make the component return less, e.g. a blob id)",
  );
});

Deno.test("Engine.run() cancels a running parallel branch when another branch aborts the run", async () => {
  const t0 = performance.now();
  const r = await run(`
steps:
  - id: long
    component: /t/sleep
    input: { ms: 10000 }
  - id: bad
    component: /t/boom
    input: {}
output: { a: { $from: { step: long } }, b: { $from: { step: bad } } }
`);
  const took = performance.now() - t0;
  assert(r.outcome === "failed");
  assertEquals(r.error.code, 500);
  assertStringIncludes(r.error.message, 'step "bad" failed');
  assert(took < 2000, `took ${took} ms`);
  await new Promise((res) => setTimeout(res, 0));
  assertEquals(seen.aborted, ["long"]);
});

Deno.test("Engine.run() with a failed branch ends failed once the parallel branch finishes", async () => {
  const r = await run(`
steps:
  - id: slow
    component: /t/sleep
    input: { ms: 50 }
  - id: bad
    component: /t/flaky
    input: { key: bad, failures: 1 }
output: { a: { $from: { step: slow } }, b: { $from: { step: bad } } }
`);
  assertEquals(r, failed(42, "flaky failure 1"));
  assertEquals(seen.aborted, []);
});
