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

/**
 * Writes a config with the limits worker and a one-step flow calling its `/spawn` with `spawn`
 * (plus the pid file), starts `stepflow run` on it, and returns it with the pid of the worker's
 * child once that child has written it.
 */
async function runSpawner(
  dir: string,
  spawn: string,
  options: { closeGrace?: string; env?: Record<string, string>; stdio?: "piped" | "null" } = {},
): Promise<{ engine: Deno.ChildProcess; grandchild: () => Promise<number> }> {
  const pidFile = `${dir}/grandchild.pid`;
  const grace = options.closeGrace ? `, closeGrace: ${options.closeGrace}` : "";
  await Deno.writeTextFile(
    `${dir}/stepflow-config.yml`,
    `plugins:
  w: { type: stepflow, command: python3, args: [${JSON.stringify(WORKER)}]${grace} }
routes:
  "/w/{component}": [{ plugin: w }]
`,
  );
  await Deno.writeTextFile(
    `${dir}/flow.yaml`,
    `schema: https://stepflow.org/schemas/v1/flow.json
name: spawner
description: a step whose worker starts a child
steps:
  - id: s
    component: /w/spawn
    input: { pid_file: ${JSON.stringify(pidFile)}${spawn ? `, ${spawn}` : ""} }
output: { $from: { step: s } }
`,
  );
  const stdio = options.stdio ?? "piped";
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
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: stdio,
    stderr: stdio,
  }).spawn();
  const grandchild = () =>
    waitFor("the worker's child", () => {
      try {
        const t = Deno.readTextFileSync(pidFile).trim();
        return t === "" ? undefined : Number(t);
      } catch {
        return undefined;
      }
    });
  return { engine, grandchild };
}

/** Process group and session of `pid` (from /proc). */
function groupOf(pid: number): { pgrp: number; session: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const [, , pgrp, session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { pgrp: Number(pgrp), session: Number(session) };
}

for (const mode of ["default", "walk"] as const) {
  Deno.test(`stepflow run on SIGTERM stops a worker's setsid() child that ignores SIGTERM (${mode})`, async () => {
    if (Deno.build.os !== "linux") return;
    await withTempDir(async (dir) => {
      const { engine, grandchild: started } = await runSpawner(
        dir,
        "setsid: true, ignore_term: true",
        { closeGrace: "300ms", env: mode === "walk" ? { STEPFLOW_PROCESS_TREE: "walk" } : {} },
      );
      let grandchild: number | undefined;
      try {
        grandchild = await started();
        // it left the worker's process group and session
        assertEquals(groupOf(grandchild), { pgrp: grandchild, session: grandchild });
        engine.kill("SIGTERM");
        const out = await engine.output();
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
    // the worker's call sleeps 120 s (it never reads its closed stdin), its child too
    const { engine, grandchild: started } = await runSpawner(dir, "", { stdio: "null" });
    let grandchild: number | undefined;
    let worker: number | undefined;
    try {
      grandchild = await started();
      worker = groupOf(grandchild).pgrp; // the worker leads its process group
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
