/**
 * Issue 10, item 13: a step service's child that calls `setsid()` (a new session, so it is in no
 * process group of the worker) survived the engine's SIGTERM. The engine now stops the whole tree
 * of processes a worker started: in a cgroup where it can make one, else found by walking /proc.
 * Real processes: `stepflow run` is sent SIGTERM while the step runs.
 * @module
 */
import { assert, assertEquals, REPO_ROOT, withTempDir } from "../../_assert.ts";

const WORKER = `${REPO_ROOT}/tests/fixtures/workers/limits/limits_worker.py`;

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

for (const mode of ["default", "walk"] as const) {
  Deno.test(`stepflow run on SIGTERM stops a worker's setsid() child that ignores SIGTERM (${mode})`, async () => {
    if (Deno.build.os !== "linux") return;
    await withTempDir(async (dir) => {
      const pidFile = `${dir}/grandchild.pid`;
      await Deno.writeTextFile(
        `${dir}/stepflow-config.yml`,
        `plugins:
  w: { type: stepflow, command: python3, args: [${JSON.stringify(WORKER)}], closeGrace: 300ms }
routes:
  "/w/{component}": [{ plugin: w }]
`,
      );
      await Deno.writeTextFile(
        `${dir}/flow.yaml`,
        `schema: https://stepflow.org/schemas/v1/flow.json
name: spawner
description: a step whose worker starts a daemon-like child
steps:
  - id: s
    component: /w/spawn
    input: { pid_file: ${JSON.stringify(pidFile)}, setsid: true, ignore_term: true }
output: { $from: { step: s } }
`,
      );
      const env: Record<string, string> = { NO_COLOR: "1" };
      if (mode === "walk") env.STEPFLOW_PROCESS_TREE = "walk";
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          `${REPO_ROOT}/main.ts`,
          "run",
          "--flow",
          "flow.yaml",
          "--input-json",
          "{}",
        ],
        cwd: dir,
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let grandchild: number | undefined;
      try {
        grandchild = await waitFor("the worker's child", () => {
          try {
            const t = Deno.readTextFileSync(pidFile).trim();
            return t === "" ? undefined : Number(t);
          } catch {
            return undefined;
          }
        });
        // it left the worker's process group and session
        const stat = Deno.readTextFileSync(`/proc/${grandchild}/stat`);
        const [, , pgrp, session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        assertEquals(pgrp, String(grandchild));
        assertEquals(session, String(grandchild));
        child.kill("SIGTERM");
        const out = await child.output();
        assertEquals(out.code, 130, new TextDecoder().decode(out.stderr));
        // SIGTERM is ignored: the SIGKILL after closeGrace (300 ms) ends it
        await waitFor(
          "the setsid() child to end",
          () => alive(grandchild!) ? undefined : true,
          5000,
        );
      } finally {
        if (grandchild !== undefined && alive(grandchild)) Deno.kill(grandchild, "SIGKILL");
      }
      assert(!alive(grandchild!));
    });
  });
}

Deno.test("a stuck step service and its children end within seconds of their engine's kill -9", async () => {
  if (Deno.build.os !== "linux") return;
  await withTempDir(async (dir) => {
    const pidFile = `${dir}/grandchild.pid`;
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:
  w: { type: stepflow, command: python3, args: [${JSON.stringify(WORKER)}] }
routes:
  "/w/{component}": [{ plugin: w }]
`,
    );
    // the worker's call sleeps 120 s (it never reads its closed stdin), its child too
    await Deno.writeTextFile(
      `${dir}/flow.yaml`,
      `schema: https://stepflow.org/schemas/v1/flow.json
name: stuck
steps:
  - id: s
    component: /w/spawn
    input: { pid_file: ${JSON.stringify(pidFile)} }
output: { $from: { step: s } }
`,
    );
    const engine = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        `${REPO_ROOT}/main.ts`,
        "run",
        "--flow",
        "flow.yaml",
        "--input-json",
        "{}",
      ],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let grandchild: number | undefined;
    let worker: number | undefined;
    try {
      grandchild = await waitFor("the worker's child", () => {
        try {
          const t = Deno.readTextFileSync(pidFile).trim();
          return t === "" ? undefined : Number(t);
        } catch {
          return undefined;
        }
      });
      const stat = Deno.readTextFileSync(`/proc/${grandchild}/stat`);
      worker = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]); // its group: the worker's
      assert(alive(worker), "the worker runs");
      engine.kill("SIGKILL");
      await engine.status;
      await waitFor("the worker to end", () => alive(worker!) ? undefined : true, 10_000);
      await waitFor(
        "the worker's child to end",
        () => alive(grandchild!) ? undefined : true,
        10_000,
      );
    } finally {
      for (const pid of [grandchild, worker]) {
        if (pid !== undefined && alive(pid)) Deno.kill(pid, "SIGKILL");
      }
      try {
        engine.kill("SIGKILL");
      } catch {
        // ended
      }
    }
  });
});
