/**
 * The stepflow plugin inside the real engine: a Python worker calls blobs/put, flows/evaluate,
 * flows/get_metadata, flows/submit_batch and flows/get_batch while its step runs; a worker's
 * JSON-RPC error is a failed step that `onError` handles.
 */
import { assert, assertEquals, assertStringIncludes, withTempDir } from "../../_assert.ts";
import { configFromValue, Engine, loadFlow } from "../../../mod.ts";
import { WORKERS } from "./_helpers.ts";

const CONFIG = {
  plugins: {
    builtin: { type: "builtin" },
    py: {
      type: "stepflow",
      transport: "stdio",
      command: "python3",
      args: ["py_worker.py"],
      env: { PYTHONUNBUFFERED: "1" },
    },
  },
  routes: {
    "/builtin/{*component}": [{ plugin: "builtin" }],
    "/py/{*component}": [{ plugin: "py" }],
  },
};

Deno.test("real engine: a worker's flows/evaluate, metadata and batch calls inside a step", async () => {
  const engine = await Engine.create(configFromValue(CONFIG, WORKERS));
  try {
    const flow = await loadFlow(
      `
schema: https://stepflow.org/schemas/v1/flow.json
name: outer
metadata: { owner: tests }
steps:
  - id: call_back
    component: /py/nested
    metadata: { note: "step meta" }
    input: { x: { $from: { workflow: input }, path: n } }
output: { $from: { step: call_back } }
`,
      { text: true },
    );
    const r = await engine.run(flow, { n: 21 });
    assertEquals(r.outcome, "success", JSON.stringify(r));
    const out = (r as { result: Record<string, unknown> }).result;
    assertEquals(out.evaluated, { outcome: "success", result: 21 });
    assertEquals((out.flow_metadata as Record<string, unknown>).owner, "tests");
    assertEquals(out.step_metadata, { note: "step meta" });
    assertEquals(out.batch_total, 2);
    assertEquals(out.batch_results, [
      { outcome: "success", result: 1 },
      { outcome: "success", result: 2 },
    ]);
    assertStringIncludes(String(out.missing), "Failed to evaluate flow");
  } finally {
    await engine.close();
  }
});

Deno.test("real engine: a worker's JSON-RPC error is a failed step that onError can handle", async () => {
  const engine = await Engine.create(configFromValue(CONFIG, WORKERS));
  try {
    const flow = await loadFlow(
      `
schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: bad
    component: /py/no_such_component
    input: {}
  - id: handled
    component: /py/no_such_component
    input: {}
    onError: { action: useDefault, defaultValue: { fallback: true } }
output:
  handled: { $from: { step: handled } }
`,
      { text: true },
    );
    assertEquals(await engine.run(flow, {}), {
      outcome: "success",
      result: { handled: { fallback: true } },
    });
    const failing = await loadFlow(
      `
schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: bad
    component: /py/no_such_component
    input: {}
output: { $from: { step: bad } }
`,
      { text: true },
    );
    assertEquals(await engine.run(failing, {}), {
      outcome: "failed",
      error: { code: -32001, message: "Component '/no_such_component' not found" },
    });
  } finally {
    await engine.close();
  }
});

Deno.test("real engine: a flow evaluating itself through a step service without observability stops at once, not after thousands of levels", async () => {
  const engine = await Engine.create(configFromValue({
    plugins: {
      builtin: { type: "builtin" },
      rw: { type: "stepflow", command: "python3", args: ["unattributed_worker.py"] },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/rw/{*component}": [{ plugin: "rw" }],
    },
  }, WORKERS));
  try {
    const flow = await loadFlow(
      `
schema: https://stepflow.org/schemas/v1/flow.json
name: recurse
steps:
  - id: s
    component: /rw/recurse
    input: {}
    timeout: 60s
output: { $from: { step: s } }
`,
      { text: true },
    );
    // before: each level's evaluate ran as a run of no run (two runs had calls open), outside
    // the nesting depth: 13,000 levels and 430 MB until the step's timeout
    const r = await engine.run(flow, {});
    assertEquals(r.outcome, "success", JSON.stringify(r));
    const text = JSON.stringify(r);
    assertStringIncludes(text, "cannot tell which run it belongs to");
    assertEquals(text.split('"reply"').length - 1, 2, "the second level is refused");
  } finally {
    await engine.close();
  }
});

Deno.test("real engine: a worker's flows/evaluate while no call is open is refused (-32602), not run as a run of no run", async () => {
  const engine = await Engine.create(configFromValue({
    plugins: {
      builtin: { type: "builtin" },
      rw: { type: "stepflow", command: "python3", args: ["unattributed_worker.py"] },
    },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/rw/{*component}": [{ plugin: "rw" }],
    },
  }, WORKERS));
  try {
    await withTempDir(async (dir) => {
      const go = `${dir}/go`;
      const out = `${dir}/reply.json`;
      const flow = await loadFlow(
        JSON.stringify({
          schema: "https://stepflow.org/schemas/v1/flow.json",
          steps: [{ id: "s", component: "/rw/evaluate_later", input: { go, out } }],
          output: { $from: { step: "s" } },
        }),
        { text: true },
      );
      assertEquals(await engine.run(flow, {}), { outcome: "success", result: { ok: true } });
      // the run is over, no call is open: the worker now sends flows/evaluate without
      // observability (was: run as a nested run of no run, cancelled with nothing, outside the
      // nesting depth and run budget)
      await Deno.writeTextFile(go, "");
      const deadline = Date.now() + 60_000;
      let reply: { error?: { code: number; message: string }; result?: unknown } | undefined;
      while (reply === undefined) {
        try {
          reply = JSON.parse(await Deno.readTextFile(out));
        } catch {
          assert(Date.now() < deadline, "the worker wrote no reply within 60 s");
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      assert(reply.error, `answered: ${JSON.stringify(reply)}`);
      assertEquals(reply.error.code, -32602);
      assertStringIncludes(
        reply.error.message,
        "flows/evaluate: cannot tell which run it belongs to",
      );
      assertStringIncludes(reply.error.message, "no components/execute call is open");
    });
  } finally {
    await engine.close();
  }
});
