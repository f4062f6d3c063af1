/**
 * `stepflow run --store` prints the run id only once the run's record is committed: killed with
 * SIGKILL right after the id appears on stderr, the run is still found by `stepflow resume ID`
 * (before, the id was printed while the record's write was still in the store's commit queue,
 * and a kill there lost the run).
 *
 * And it prints it before any step with side effects makes its call: killed once a step service
 * has done something, the run's id is on stderr. Before, the id was printed a few promise
 * callbacks after the commit that also let the first steps call their step service; on a loaded
 * machine the engine could be descheduled in between, the step service act and the kill come
 * first (the crash harness's "no run id on stderr", about 1 run in 8 with CPU hogs running). The
 * engine now calls `RunOptions.onRecorded` synchronously on the commit, before any such call.
 */
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  withTempDir,
} from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { registerPluginType } from "../../src/plugins/registry.ts";
import type { ExecuteContext, Plugin } from "../../src/plugins/plugin.ts";
import type { LoadedConfig } from "../../src/config/model.ts";
import { type FlowResult, success } from "../../src/core/flow_result.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { flow } from "../execution/_engine_helpers.ts";

const MAIN = `${REPO_ROOT}/main.ts`;
const TRIALS = 6;

const CONFIG = `plugins:
  builtin: { type: builtin }
routes:
  "/builtin/{*component}": [{ plugin: builtin }]
`;

// waits for a signal that never comes: the run is alive when it is killed
const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
name: pause
steps:
  - id: hello
    component: /builtin/create_messages
    input: { user_prompt: { $from: { workflow: input }, path: who } }
  - id: review
    component: /builtin/wait_for
    input: { name: review, after: { $from: { step: hello } } }
output: { $from: { step: review } }
`;

/**
 * Spawns `stepflow <args>` and reads its stderr until `until` matches (then kills it with
 * SIGKILL at once) or the process ends. Returns the stderr read and the match.
 */
async function untilStderr(
  args: string[],
  until: RegExp,
): Promise<{ stderr: string; match: RegExpExecArray | null }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let stderr = "";
  let match: RegExpExecArray | null = null;
  const reader = child.stderr.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += dec.decode(value, { stream: true });
      match = until.exec(stderr);
      if (match) {
        try {
          child.kill("SIGKILL");
        } catch {
          // it ended first
        }
        break;
      }
    }
  } finally {
    reader.releaseLock();
    await child.stderr.cancel().catch(() => {});
    await child.status;
  }
  return { stderr, match };
}

Deno.test({
  name: "stepflow run --store: a run killed right after its id is printed is found by resume",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/stepflow-config.yml`, CONFIG);
      await Deno.writeTextFile(`${dir}/pause.yaml`, FLOW);
      const store = ["--store", `sqlite:${dir}/runs.db`, "--config", `${dir}/stepflow-config.yml`];
      for (let i = 0; i < TRIALS; i++) {
        const run = await untilStderr(
          ["run", "--flow", `${dir}/pause.yaml`, "--input-json", '{"who":"Ada"}', ...store],
          /run_id: ([0-9a-f-]{36})\n/,
        );
        assert(run.match, `trial ${i}: no run id on stderr: ${run.stderr}`);
        const id = run.match[1];
        const resumed = await untilStderr(
          ["resume", id, ...store],
          /run_id: \S+ \(resumed\)\n|error: [^\n]*\n/,
        );
        assertStringIncludes(resumed.stderr, `run_id: ${id} (resumed)`, `trial ${i}`);
      }
    }),
});

/** What happened, in order: `recorded` (the hook) and `call <step>` (a side effect). */
const order: string[] = [];

/** An in-process plugin with side effects (not replayable): its calls are noted in `order`. */
class EffectPlugin implements Plugin {
  readonly type = "run_id_effect";
  constructor(readonly name: string) {}
  init() {
    return Promise.resolve();
  }
  listComponents() {
    return Promise.resolve([]);
  }
  execute(_component: string, input: JsonValue, ctx: ExecuteContext): Promise<FlowResult> {
    order.push(`call ${ctx.stepId}`);
    return Promise.resolve(success(input));
  }
  close() {
    return Promise.resolve();
  }
}
registerPluginType("run_id_effect", (name) => new EffectPlugin(name));

const EFFECT_FLOW = `name: effects
steps:
  - id: a
    component: /e/x
    input: { n: 1 }
  - id: b
    component: /e/x
    input: { n: 2 }
  - id: c
    component: /e/x
    input: { after: { $from: { step: a } } }
output: { b: { $from: { step: b } }, c: { $from: { step: c } } }
`;

for (const kind of ["sqlite", "inMemory"] as const) {
  Deno.test(`RunOptions.onRecorded (${kind}) runs once, before any step with side effects calls`, () =>
    withTempDir(async (dir) => {
      const config = {
        config: {
          plugins: { e: { type: "run_id_effect" } },
          routes: { "/e/{component}": [{ plugin: "e" }] },
          stateStore: { type: "inMemory" },
        },
        workingDirectory: dir,
      } as unknown as LoadedConfig;
      const engine = await Engine.create(
        config,
        kind === "sqlite" ? { store: SqliteStateStore.open(`sqlite:${dir}/runs.db`) } : {},
      );
      try {
        order.length = 0;
        const handle = engine.start(flow(EFFECT_FLOW), null, {
          onRecorded: () => order.push("recorded"),
        });
        const result = await handle.result;
        assertStrictEquals(result.outcome, "success", JSON.stringify(result));
        assertEquals(order[0], "recorded", order.join(", "));
        assertEquals(order.filter((e) => e === "recorded").length, 1);
        assertEquals(order.slice(1).sort(), ["call a", "call b", "call c"]);
        // what the hook was called for holds: the run is found by its id
        assert((await engine.store.getRun(handle.runId)) !== undefined);
      } finally {
        await engine.close();
      }
    }));
}

Deno.test({
  name: "stepflow run --store: a run killed once its step service acted had its id printed",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withTempDir(async (dir) => {
      const durable = `${REPO_ROOT}/tests/fixtures/cli/durable`;
      for (let i = 0; i < TRIALS; i++) {
        const journal = `${dir}/journal-${i}.txt`;
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--quiet",
            MAIN,
            "run",
            "--flow",
            `${durable}/crash.yaml`,
            "--config",
            `${durable}/stepflow-config.yml`,
            "--store",
            `sqlite:${dir}/runs.db`,
            "--input-json",
            JSON.stringify({ value: 1, delay_ms: 3, journal }),
          ],
          env: { NO_COLOR: "1" },
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        const stderr = new Response(child.stderr).text();
        let exited = false;
        child.status.then(() => exited = true);
        // the journal is written by the step service (a grandchild): polled, killed at once
        let size = 0;
        while (!exited && size === 0) {
          size = await Deno.stat(journal).then((s) => s.size, () => 0);
          if (size === 0) await new Promise((r) => setTimeout(r, 1));
        }
        try {
          child.kill("SIGKILL");
        } catch {
          // it ended first
        }
        await child.status;
        const text = await stderr;
        const printed = /run_id: ([0-9a-f-]{36})\n/.exec(text);
        assert(printed, `trial ${i}: no run id on stderr: ${JSON.stringify(text)}`);
        // the id of the run whose step acted
        const first = (await Deno.readTextFile(journal)).split(" ")[0];
        assertStrictEquals(first, printed[1], `trial ${i}`);
      }
    }),
});
