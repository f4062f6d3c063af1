/**
 * `stepflow run` under Ctrl-C / SIGTERM (issue 5): the running step is cancelled, the step
 * service is stopped, what was cancelled is printed, and the exit code is 130.
 * Also `--max-concurrency` / `--timeout` validation.
 * @module
 */
import { assert, assertEquals, assertStringIncludes, REPO_ROOT, runCli } from "../_assert.ts";

const WORKER = `${REPO_ROOT}/tests/fixtures/workers/limits/limits_worker.py`;

async function setup(dir: string, readyFile: string): Promise<string> {
  await Deno.writeTextFile(
    `${dir}/stepflow-config.yml`,
    `plugins:
  w:
    type: stepflow
    command: python3
    args: [${JSON.stringify(WORKER)}]
    env: { PYTHONUNBUFFERED: "1" }
routes:
  "/w/{component}":
    - plugin: w
`,
  );
  const flowPath = `${dir}/flow.yaml`;
  await Deno.writeTextFile(
    flowPath,
    `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: nap
    component: /w/sleep
    input: { ms: 60000, ready_file: ${JSON.stringify(readyFile)} }
output: { $from: { step: nap } }
`,
  );
  return flowPath;
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`stepflow run on ${signal} cancels the running step, stops the worker, exits 130`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const readyFile = `${dir}/ready`;
      const flowPath = await setup(dir, readyFile);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          `${REPO_ROOT}/main.ts`,
          "run",
          "--flow",
          flowPath,
          "--input-json",
          "{}",
        ],
        cwd: dir,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Wait (bounded) until the worker has started the step, or the CLI ended early.
      let exited = false;
      child.status.then(() => exited = true);
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && !exited) {
        try {
          if ((await Deno.readTextFile(readyFile)).length > 0) break;
        } catch {
          // not yet
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      if (exited) {
        const early = await child.output();
        throw new Error(`stepflow run ended early: ${new TextDecoder().decode(early.stderr)}`);
      }
      const workerPid = Number(await Deno.readTextFile(readyFile));
      const t0 = performance.now();
      child.kill(signal);
      const out = await child.output();
      const took = performance.now() - t0;
      const stderr = new TextDecoder().decode(out.stderr);
      const stdout = new TextDecoder().decode(out.stdout);
      assertEquals(out.code, 130, stderr);
      assertStringIncludes(stderr, `${signal}: cancelling the run; steps cancelled: nap`);
      assertStringIncludes(stderr, "run cancelled; step services stopped");
      assertStringIncludes(stdout, '"outcome":"failed"');
      assert(took < 5000, `exit took ${took} ms`);
      assert(!alive(workerPid), `worker ${workerPid} still running`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("stepflow run rejects --max-concurrency 0 and a bad --timeout (exit 2)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const flowPath = await setup(dir, `${dir}/ready`);
    const a = await runCli([
      "run",
      "--flow",
      flowPath,
      "--input-json",
      "{}",
      "--max-concurrency",
      "0",
    ], { cwd: dir });
    assertEquals(a.code, 2);
    assertStringIncludes(a.stderr, '--max-concurrency must be a positive integer, got "0"');
    const b = await runCli(["run", "--flow", flowPath, "--input-json", "{}", "--timeout", "-5s"], {
      cwd: dir,
    });
    assertEquals(b.code, 2);
    assertStringIncludes(b.stderr, "--timeout must be");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stepflow run --timeout ends a run with a long step (exit 1, code 524)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const flowPath = await setup(dir, `${dir}/ready`);
    const r = await runCli(
      ["run", "--flow", flowPath, "--input-json", "{}", "--timeout", "500ms"],
      { cwd: dir },
    );
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stdout, '"code":524');
    assertStringIncludes(r.stderr, "The run timed out after 500ms (timeout: 500 ms)");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
