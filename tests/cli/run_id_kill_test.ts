/**
 * `stepflow run --store` prints the run id only once the run's record is committed: killed with
 * SIGKILL right after the id appears on stderr, the run is still found by `stepflow resume ID`
 * (before, the id was printed while the record's write was still in the store's commit queue,
 * and a kill there lost the run).
 */
import { assert, assertStringIncludes, REPO_ROOT, withTempDir } from "../_assert.ts";

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
