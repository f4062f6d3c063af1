/**
 * `/builtin/wait_for` in a `stepflow run` without a database: no other process can send the
 * signal. Before, the pause line still said `stepflow signal <id> review --data-json '...'`, a
 * command that cannot find the run, and the run waited for ever. Now it says the state is in
 * memory and how to make the run reachable.
 * @module
 */
import { assertStringIncludes, REPO_ROOT, withTempDir } from "../_assert.ts";
import { readStderr } from "./_stderr.ts";

Deno.test("wait_for without a store: the pause line says no other process can signal the run", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: w
description: waits
steps:
  - id: review
    component: /builtin/wait_for
    input: { name: review }
output: { $from: { step: review } }
`,
    );
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins: { builtin: { type: builtin } }
routes: { "/builtin/{*component}": [{ plugin: builtin }] }
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        `${REPO_ROOT}/main.ts`,
        "run",
        "--flow",
        `${dir}/flow.yaml`,
        "--input-json",
        "{}",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const stderr = readStderr(child.stderr);
    try {
      const [line] = await stderr.until(/waits for signal 'review'.*\n/);
      assertStringIncludes(line, "the run's state is in memory: only this process can send it");
      assertStringIncludes(line, "run with --store FILE");
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await stderr.done;
    }
  });
});
