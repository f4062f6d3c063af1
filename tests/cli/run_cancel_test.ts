/**
 * `stepflow run` under Ctrl-C / SIGTERM (issue 5): the running step is cancelled, the step
 * service is stopped, what was cancelled is printed, and the exit code is 130.
 * Also `--max-concurrency` / `--timeout` validation.
 * @module
 */
import {
  assert,
  assertEquals,
  assertStringIncludes,
  removeTree,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";

import { readStderr } from "./_stderr.ts";
import { waitForFile } from "../server/_server.ts";

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
      await removeTree(dir);
    }
  });
}

Deno.test("stepflow run rejects --max-concurrency 0 and a bad --timeout (exit 2)", async () => {
  await withTempDir(async (dir) => {
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
  });
});

Deno.test("stepflow run --timeout ends a run with a long step (exit 1, code 524)", async () => {
  await withTempDir(async (dir) => {
    const flowPath = await setup(dir, `${dir}/ready`);
    const r = await runCli(
      ["run", "--flow", flowPath, "--input-json", "{}", "--timeout", "500ms"],
      { cwd: dir },
    );
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stdout, '"code":524');
    assertStringIncludes(r.stderr, "The run timed out after 500ms (timeout: 500 ms)");
  });
});

// A worker that writes its pid to a file, then never answers `initialize` (mode "init") or answers
// it and never answers anything else (mode "call"). When it starts leaving a request unanswered it
// writes "<pid file>.waiting".
const STUCK_WORKER = `import json, os, signal, sys, time
if len(sys.argv) > 3:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").write(str(os.getpid()))
for line in sys.stdin:
    m = json.loads(line)
    if m.get("method") == "initialize" and sys.argv[2] == "call":
        print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": {"server_protocol_version": 1}}), flush=True)
    elif "id" in m:
        open(sys.argv[1] + ".waiting", "w").write("1")
        time.sleep(600)
`;

async function stuckSetup(
  dir: string,
  mode: "init" | "call",
  stubborn = false,
): Promise<string> {
  await Deno.writeTextFile(`${dir}/stuck.py`, STUCK_WORKER);
  const pidFile = `${dir}/worker.pid`;
  await Deno.writeTextFile(
    `${dir}/stepflow-config.yml`,
    `plugins:
  w: { type: stepflow, command: python3, args: [stuck.py, ${JSON.stringify(pidFile)}, ${mode}${
      stubborn ? ", stubborn" : ""
    }] }
routes:
  "/w/{component}": [{ plugin: w }]
`,
  );
  await Deno.writeTextFile(
    `${dir}/flow.yaml`,
    `schema: https://stepflow.org/schemas/v1/flow.json
name: stuck
steps:
  - id: a
    component: /w/x
    input: {}
output: { $from: { step: a } }
test:
  cases:
    - name: one
      input: {}
      output: { outcome: success, result: 1 }
`,
  );
  return pidFile;
}

/** Starts the CLI in `dir`, sends SIGINT once the worker wrote its pid, returns what happened. */
async function interrupt(dir: string, pidFile: string, args: string[], twice = false) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${REPO_ROOT}/main.ts`, ...args],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let pid = 0;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && pid === 0) {
    try {
      pid = Number(await Deno.readTextFile(pidFile)) || 0;
    } catch {
      // not yet
    }
    if (pid === 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert(pid > 0, "the worker never started");
  // wait until the request the worker leaves unanswered (handshake or call) is in flight
  while (Date.now() < deadline) {
    try {
      await Deno.stat(`${pidFile}.waiting`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const sent = Date.now();
  child.kill("SIGINT");
  if (twice) {
    await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGINT");
  }
  const out = await child.output();
  const elapsed = Date.now() - sent;
  await new Promise((r) => setTimeout(r, 200));
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    elapsed,
    workerAlive: alive(pid),
    kill: () => {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    },
  };
}

const INTERRUPTED: [string, "init" | "call", string[]][] = [
  ["run, during the step service's handshake", "init", [
    "run",
    "--flow",
    "flow.yaml",
    "--input-json",
    "{}",
  ]],
  ["test, during a case", "call", ["test", "flow.yaml"]],
  ["list-components, during components/list", "call", ["list-components"]],
];
for (const [what, mode, args] of INTERRUPTED) {
  Deno.test(`Ctrl-C in stepflow ${what}: exits 130 at once and stops the step service`, async () => {
    const dir = await Deno.makeTempDir();
    const r = await interrupt(dir, await stuckSetup(dir, mode), args);
    try {
      assertEquals(r.code, 130, r.stderr);
      assert(r.elapsed < 10_000, `took ${r.elapsed} ms to exit`);
      assert(!r.workerAlive, "the step service was left running");
      assertStringIncludes(r.stderr, "SIGINT: cancelling");
      assert(!r.stderr.includes("    at "), r.stderr);
    } finally {
      r.kill();
      await removeTree(dir);
    }
  });
}

Deno.test("a second Ctrl-C exits at once and still kills a step service that ignores SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  const args = ["run", "--flow", "flow.yaml", "--input-json", "{}"];
  const r = await interrupt(dir, await stuckSetup(dir, "call", true), args, true);
  try {
    assertEquals(r.code, 130, r.stderr);
    assert(r.elapsed < 3_000, `took ${r.elapsed} ms to exit`);
    assert(!r.workerAlive, "the step service was left running");
  } finally {
    r.kill();
    await removeTree(dir);
  }
});

Deno.test("stepflow run --store on SIGTERM stores the run 'cancelled' (it was 'failed'): runs list --status cancelled finds it", async () => {
  await withTempDir(async (dir) => {
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
        "--store",
        "runs.db",
        "--verbose",
      ],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // the run is recorded (run_id printed) and its step started once the worker wrote the file
    void child.stdout.cancel();
    const stderr = readStderr(child.stderr);
    await waitForFile(readyFile);
    const runId = (await stderr.until(/run_id: (\S+)/))[1];
    child.kill("SIGTERM");
    assertEquals((await child.status).code, 130, await stderr.done);
    const list = await runCli(["runs", "list", "--status", "cancelled", "--store", "runs.db"], {
      cwd: dir,
    });
    assertEquals(list.code, 0, list.stderr);
    assertStringIncludes(list.stdout, runId.replaceAll("-", "").slice(0, 8));
  });
});
