/**
 * What the next `stepflow serve` on a SQLite file does with the runs a service killed with
 * `kill -9` left queued (issue 13, wave 6 gaps): a batch's runs, debug runs, and queued rows
 * written before queued rows had an owner. Each is run once by the next service (a restart, or a
 * survivor on the same file), and ends as it would have without the kill.
 *
 * Before: a batch's queued runs were taken over without the batch's variables (the queued row
 * did not store them: a flow reading a variable got its default); a debug run queued behind
 * another was answered `paused` before its row was stored; queued rows without an owner were
 * never run by a surviving service; a batch's `maxConcurrency` was not stored, so its queued runs
 * all started at once within the service's `--max-concurrent-runs`.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertStrictEquals, withTempDir } from "../_assert.ts";
import {
  journalConfig as config,
  mkfifo,
  type RunningServer,
  SCHEMA,
  startServer,
  storeFlow,
  TWO_STEPS,
} from "./_server.ts";

/** One held step (`/j/gate`), its output with the variable `k` (default `"default"`). */
const FLOW = {
  schema: SCHEMA,
  name: "gated-var",
  variables: { type: "object", properties: { k: { type: "string", default: "default" } } },
  steps: [{
    id: "a",
    component: "/j/gate",
    input: {
      value: { $from: { workflow: "input" }, path: "$.v" },
      ready: { $from: { workflow: "input" }, path: "$.ready" },
      release: { $from: { workflow: "input" }, path: "$.release" },
    },
  }],
  output: {
    v: { $from: { step: "a" }, path: "$.value" },
    k: { $from: { variable: "k" } },
  },
};

interface Gate {
  v: number;
  ready: string;
  release: string;
}

async function gate(dir: string, name: string, v: number): Promise<Gate> {
  const g = { v, ready: `${dir}/${name}.ready`, release: `${dir}/${name}.release` };
  await mkfifo(g.ready, g.release);
  return g;
}

/** Lets the step held at `g` answer (waits until it is called). */
async function release(g: Gate): Promise<void> {
  await Deno.readTextFile(g.ready);
  await Deno.writeTextFile(g.release, "go\n");
}

/** Kills service `s` with SIGKILL, and its step services (as a reboot would). */
async function kill9(s: RunningServer): Promise<void> {
  const workers = (await Deno.readTextFile(`/proc/${s.pid}/task/${s.pid}/children`))
    .trim().split(/\s+/).filter((p) => p !== "").map(Number);
  assertStrictEquals(await s.stop("SIGKILL"), 137);
  for (const pid of workers) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}

/**
 * A service on `args` posts a batch of three gated runs with `maxConcurrency: 1` (and `extra` in
 * the request) and is killed with kill -9 while the first run holds the batch's one slot (its
 * rows are stored: the step was called). Gives the batch, its run ids and their gates.
 */
async function batchOfKilledService(
  dir: string,
  args: string[],
  prefix: string,
  extra: Record<string, unknown> = {},
): Promise<{ batchId: string; runIds: string[]; gates: Gate[] }> {
  const one = await startServer(dir, { args, config: false });
  const gates = [
    await gate(dir, `${prefix}0`, 1),
    await gate(dir, `${prefix}1`, 10),
    await gate(dir, `${prefix}2`, 20),
  ];
  try {
    const flowId = await storeFlow(one, FLOW);
    const b = await one.call("POST", "/api/v1/batches", {
      flowId,
      inputs: gates,
      maxConcurrency: 1,
      ...extra,
    });
    assertStrictEquals(b.status, 200, JSON.stringify(b.body));
    const batchId: string = b.body.batchId;
    await Deno.readTextFile(gates[0].ready);
    const runs = await one.call("GET", `/api/v1/batches/${batchId}/runs`);
    const runIds: string[] = runs.body.runs.map((r: { runId: string }) => r.runId);
    assertStrictEquals(runIds.length, 3);
    await one.call("GET", "/health");
    return { batchId, runIds, gates };
  } finally {
    await kill9(one);
  }
}

/** Waits until every run of batch `batchId` has ended (its `completedAt` is set). */
async function batchEnded(s: RunningServer, batchId: string, runIds: string[]) {
  for (const id of runIds) await s.call("GET", `/api/v1/runs/${id}/events?after=0`);
  const d = await s.call("GET", `/api/v1/batches/${batchId}`);
  assertStrictEquals(d.status, 200, JSON.stringify(d.body));
  return d.body;
}

/** How many times the step of run `runId` was called (its `step_started` events). */
async function starts(s: RunningServer, runId: string): Promise<number> {
  const e = await s.call("GET", `/api/v1/runs/${runId}/events?after=0`);
  return String(e.body).split("event: step_started").length - 1;
}

for (const survivor of [false, true]) {
  const how = survivor ? "a survivor on the same file" : "a restart on the same file";
  Deno.test(`batch of a service killed with kill -9 while its runs are queued: ${how} runs each once with the batch's variables, and the batch ends with its counts and outputs`, () =>
    withTempDir(async (dir) => {
      const args = ["--store", `${dir}/state.db`, "--max-concurrent-runs", "1"];
      await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config(`${dir}/journal.txt`));
      const other = survivor ? await startServer(dir, { args, config: false }) : undefined;
      try {
        const { batchId, runIds, gates } = await batchOfKilledService(dir, args, "b", {
          variables: { k: "batch" },
        });
        const two = other ?? await startServer(dir, { args, config: false });
        try {
          // the held run is resumed (its step is called again), the queued ones run after it
          for (const g of gates) await release(g);
          const d = await batchEnded(two, batchId, runIds);
          assertEquals(
            {
              completed: d.completedRuns,
              running: d.runningRuns,
              failed: d.failedRuns,
              cancelled: d.cancelledRuns,
              paused: d.pausedRuns,
              status: d.status,
              total: d.totalInputs,
            },
            {
              completed: 3,
              running: 0,
              failed: 0,
              cancelled: 0,
              paused: 0,
              status: "running",
              total: 3,
            },
          );
          assert(typeof d.completedAt === "string", JSON.stringify(d));
          const out = await two.call("GET", `/api/v1/batches/${batchId}/outputs`);
          assertEquals(
            out.body.outputs.map((
              o: { batchInputIndex: number; status: string; result: unknown },
            ) => [
              o.batchInputIndex,
              o.status,
              o.result,
            ]),
            gates.map((g, i) => [i, "completed", {
              outcome: "success",
              result: { v: g.v + 1, k: "batch" },
            }]),
          );
          assertStrictEquals(await starts(two, runIds[1]), 1);
          assertStrictEquals(await starts(two, runIds[2]), 1);
        } finally {
          assertStrictEquals(await two.stop(), 0);
        }
      } finally {
        await other?.stop(null);
      }
    }));
}

/** The journal ids of run `runId`'s events of `type` (in commit order across runs). */
async function eventIds(s: RunningServer, runId: string, type: string): Promise<number[]> {
  const e = await s.call("GET", `/api/v1/runs/${runId}/events?after=0`);
  return String(e.body).split("\n\n").filter((b) => b.includes(`\nevent: ${type}\n`))
    .map((b) => Number(/^id: (\d+)$/m.exec(b)![1]));
}

for (const [survivor, old] of [[false, false], [true, false], [false, true]]) {
  const how = survivor ? "a survivor on the same file" : "a restart on the same file";
  const name = old
    ? `batch recorded without its maxConcurrency (before migration 0004) of a service killed with kill -9: ${how} runs its queued runs as before, within --max-concurrent-runs alone`
    : `batch with maxConcurrency 1 of a service killed with kill -9: ${how} keeps to it (each run starts once the one before ended), within a larger --max-concurrent-runs`;
  Deno.test(name, () =>
    withTempDir(async (dir) => {
      const args = ["--store", `${dir}/state.db`, "--max-concurrent-runs", "10"];
      await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config(`${dir}/journal.txt`));
      const other = survivor ? await startServer(dir, { args, config: false }) : undefined;
      try {
        const { batchId, runIds, gates } = await batchOfKilledService(dir, args, "m");
        if (old) {
          const db = new DatabaseSync(`${dir}/state.db`);
          try {
            db.prepare("UPDATE batches SET max_concurrency = NULL WHERE id = ?").run(batchId);
          } finally {
            db.close();
          }
        }
        const two = other ?? await startServer(dir, { args, config: false });
        try {
          // the held run is resumed; the queued ones start one at a time after it (they all
          // started at once: the batch's limit was not stored)
          if (old) {
            // no limit: the three steps are called at once (before any answers)
            for (const g of gates) await Deno.readTextFile(g.ready);
            for (const g of gates) await Deno.writeTextFile(g.release, "go\n");
          } else {
            for (const g of gates) await release(g);
          }
          const d = await batchEnded(two, batchId, runIds);
          assertStrictEquals(d.completedRuns, 3, JSON.stringify(d));
          for (let i = 1; i < 3; i++) {
            const [ended] = await eventIds(two, runIds[i - 1], "run_completed");
            const started = await eventIds(two, runIds[i], "step_started");
            assertStrictEquals(started.length, 1, `run ${i}: ${started}`);
            if (old) {
              // (no limit stored: all three start at once, as before)
              assert(started[0] < ended, `run ${i} (${started[0]}) waited for ${i - 1} (${ended})`);
              continue;
            }
            assert(
              started[0] > ended,
              `run ${i}'s step started (event ${started[0]}) before run ${i - 1} ended (${ended})`,
            );
          }
        } finally {
          assertStrictEquals(await two.stop(), 0);
        }
      } finally {
        await other?.stop(null);
      }
    }));
}

for (const survivor of [false, true]) {
  const how = survivor ? "a survivor on the same file" : "a restart on the same file";
  Deno.test(`debug run queued by a service killed with kill -9: ${how} runs it held before each step, as a debug run`, () =>
    withTempDir(async (dir) => {
      const args = ["--store", `${dir}/state.db`, "--max-concurrent-runs", "1"];
      await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config(`${dir}/journal.txt`));
      const other = survivor ? await startServer(dir, { args, config: false }) : undefined;
      try {
        const one = await startServer(dir, { args, config: false });
        const held = await gate(dir, "held", 1);
        let heldId: string;
        let debugId: string;
        try {
          const flowId = await storeFlow(one, FLOW);
          const h = await one.call("POST", "/api/v1/runs", { flowId, input: held, wait: false });
          assertStrictEquals(h.status, 202, JSON.stringify(h.body));
          heldId = h.body.runId;
          await Deno.readTextFile(held.ready); // it holds the one slot
          const two = await storeFlow(one, TWO_STEPS);
          const d = await one.call("POST", "/api/v1/runs", {
            flowId: two,
            input: { q: "hi" },
            debug: true,
          });
          assertStrictEquals(d.status, 200, JSON.stringify(d.body));
          assertEquals(d.body, { runId: d.body.runId, status: "paused", debug: true });
          debugId = d.body.runId;
          // answered once its queued row is stored
          const db = new DatabaseSync(`${dir}/state.db`, { readOnly: true });
          try {
            const row = db.prepare("SELECT status, debug_mode FROM runs WHERE id = ?").get(debugId);
            assertEquals({ ...row }, { status: "queued", debug_mode: 1 });
          } finally {
            db.close();
          }
        } finally {
          await kill9(one);
        }
        const s = other ?? await startServer(dir, { args, config: false });
        try {
          await release(held); // resumed: its step is called again
          await s.call("GET", `/api/v1/runs/${heldId}/events?after=0`);
          const path = `/api/v1/runs/${debugId}`;
          // it starts once the slot is free, held before its first step (stored paused)
          for (;;) {
            const r = await s.call("GET", `${path}/debug/runnable`);
            if (r.status === 200 && r.body.runnableSteps.length > 0) {
              assertEquals(r.body, { runnableSteps: ["a"] });
              break;
            }
            await new Promise((ok) => setTimeout(ok, 20)); // (taken over within its check)
          }
          const a = await s.call("POST", `${path}/debug/step`, { stepIds: ["a"] });
          assertStrictEquals(a.status, 200, JSON.stringify(a.body));
          assertStrictEquals(a.body.results.a.outcome, "success");
          assertEquals((await s.call("GET", `${path}/debug/runnable`)).body, {
            runnableSteps: ["b"],
          });
          const c = await s.call("POST", `${path}/debug/continue`);
          assertStrictEquals(c.status, 200, JSON.stringify(c.body));
          await s.call("GET", `${path}/events?after=0`);
          const done = await s.call("GET", path);
          assertStrictEquals(done.body.status, "completed", JSON.stringify(done.body));
          assertStrictEquals(done.body.debugMode, true);
          assertStrictEquals(done.body.result.result, "hi");
          // each step ran once (built-in steps journal only their end)
          const events = String((await s.call("GET", `${path}/events?after=0`)).body);
          assertStrictEquals(events.split("event: step_completed").length - 1, 2);
        } finally {
          assertStrictEquals(await s.stop(), 0);
        }
      } finally {
        await other?.stop(null);
      }
    }));
}

/**
 * Starts a service (`--max-concurrent-runs 1`) with a held run and two runs queued behind it,
 * whose queued rows then lose their owner, as a version before queued rows had one wrote them.
 */
async function oldStyleQueue(dir: string) {
  const args = ["--store", `${dir}/state.db`, "--max-concurrent-runs", "1"];
  const one = await startServer(dir, { args, config: false });
  const flowId = await storeFlow(one, FLOW);
  const post = async (name: string, v: number) => {
    const g = await gate(dir, name, v);
    const a = await one.call("POST", "/api/v1/runs", { flowId, input: g, wait: false });
    assertStrictEquals(a.status, 202, JSON.stringify(a.body));
    return { ...g, runId: a.body.runId as string };
  };
  const held = await post("held", 1);
  await Deno.readTextFile(held.ready); // it holds the one slot
  const queued = [await post("q1", 10), await post("q2", 20)];
  const db = new DatabaseSync(`${dir}/state.db`);
  try {
    const { changes } = db.prepare(
      "UPDATE runs SET owner_id = NULL WHERE status = 'queued'",
    ).run();
    assertStrictEquals(Number(changes), 2);
  } finally {
    db.close();
  }
  return { one, args, held, queued };
}

/** Lets each run's step answer, and checks that each ran once and completed. */
async function finishOnce(s: RunningServer, runs: (Gate & { runId: string })[]) {
  for (const r of runs) {
    await release(r);
    await s.call("GET", `/api/v1/runs/${r.runId}/events?after=0`);
    const done = await s.call("GET", `/api/v1/runs/${r.runId}`);
    assertStrictEquals(done.body.status, "completed", JSON.stringify(done.body));
    assertStrictEquals(done.body.result.result.v, r.v + 1);
  }
}

Deno.test("queued rows without an owner (written before queued rows had one), left by a service killed with kill -9: a restart runs each once", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config(`${dir}/journal.txt`));
    const { one, args, held, queued } = await oldStyleQueue(dir);
    await kill9(one);
    const two = await startServer(dir, { args, config: false });
    try {
      await finishOnce(two, [held, ...queued]);
      for (const q of queued) assertStrictEquals(await starts(two, q.runId), 1);
    } finally {
      assertStrictEquals(await two.stop(), 0);
    }
    assert(two.stderr().includes("queued 2 run(s) a stopped service had queued"), two.stderr());
  }));

Deno.test("queued rows without an owner: a service started while the one that queued them lives leaves them to it (run once, not twice); a survivor runs them once that one is killed with kill -9", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config(`${dir}/journal.txt`));
    const { one, args, held, queued } = await oldStyleQueue(dir);
    let two: RunningServer | undefined;
    try {
      two = await startServer(dir, { args, config: false });
      // its start looked at the runs to resume, then at the queued ones: it says so after both
      const said = `not resumed: run ${held.runId}`;
      for (let i = 0; !two.stderr().includes(said); i++) {
        assert(i < 1000, two.stderr());
        await new Promise((ok) => setTimeout(ok, 20));
      }
      const db = new DatabaseSync(`${dir}/state.db`, { readOnly: true });
      try {
        const rows = db.prepare("SELECT status, owner_id FROM runs WHERE id IN (?, ?)")
          .all(queued[0].runId, queued[1].runId).map((r) => ({ ...r }));
        assertEquals(rows, [{ status: "queued", owner_id: null }, {
          status: "queued",
          owner_id: null,
        }]);
      } finally {
        db.close();
      }
      // the first queued run starts in the service that queued it; it is killed meanwhile
      await Deno.writeTextFile(held.release, "go\n"); // (its step was called)
      await Deno.readTextFile(queued[0].ready);
    } finally {
      await kill9(one);
    }
    try {
      // the survivor resumes the first (interrupted) and runs the second (queued, no owner)
      await finishOnce(two, queued);
      assertStrictEquals(await starts(two, queued[0].runId), 2); // started, resumed
      assertStrictEquals(await starts(two, queued[1].runId), 1);
    } finally {
      assertStrictEquals(await two.stop(), 0);
    }
    assert(two.stderr().includes("queued 1 here"), two.stderr());
  }));

Deno.test("queued rows without an owner, left by a service killed with kill -9 while two services survive: one of them runs each once (they waited while more than one service lived)", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config(`${dir}/journal.txt`));
    const { one, args, held, queued } = await oldStyleQueue(dir);
    const survivors: RunningServer[] = [];
    try {
      for (let i = 0; i < 2; i++) survivors.push(await startServer(dir, { args, config: false }));
      await kill9(one);
      await release(held); // resumed by the survivor that found the killed service dead
      // the queued rows are taken (owned, then started) by one survivor: they stayed queued
      const db = new DatabaseSync(`${dir}/state.db`, { readOnly: true });
      try {
        const owners = db.prepare("SELECT owner_id FROM runs WHERE id = ?");
        for (let i = 0;; i++) {
          const o = queued.map((q) =>
            (owners.get(q.runId) as { owner_id: string | null }).owner_id
          );
          if (o.every((x) => x !== null)) break;
          assert(i < 1500, `queued rows still without an owner after 30 s: ${o}`);
          await new Promise((ok) => setTimeout(ok, 20));
        }
      } finally {
        db.close();
      }
      await finishOnce(survivors[0], queued);
      for (const q of queued) assertStrictEquals(await starts(survivors[0], q.runId), 1);
    } finally {
      for (const s of survivors) assertStrictEquals(await s.stop(), 0);
    }
    const said = survivors.map((s) => s.stderr()).join("\n");
    assertStrictEquals(said.split("queued 2 here").length - 1, 1, said);
  }));
