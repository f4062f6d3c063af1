/**
 * Runs queued by a `stepflow serve` (beyond `--max-concurrent-runs`, SQLite store) that is killed
 * with `kill -9` before starting them (issue 13, wave 6). Before: they stayed `queued` for ever —
 * neither a survivor on the same file nor a restart of the service ran them (a queued row had no
 * owner, so nothing could tell it from a run a live service would start). Now a queued row is
 * owned by the service that queued it; once that service is dead, a restart on the file (or a
 * survivor, within its check interval) claims each queued run and runs it once, within its own
 * `--max-concurrent-runs`.
 * @module
 */
import { assert, assertStrictEquals, withTempDir } from "../_assert.ts";
import {
  GATED_FLOW as FLOW,
  journalConfig as config,
  mkfifo,
  type RunningServer,
  startServer,
  storeFlow,
} from "./_server.ts";

interface Gated {
  runId: string;
  input: { v: number; ready: string; release: string; pad: number };
}

/** Posts a run of FLOW (wait: false) whose step will be held at `dir/<name>.ready`. */
async function post(s: RunningServer, flowId: string, dir: string, name: string, v: number) {
  const input = { v, ready: `${dir}/${name}.ready`, release: `${dir}/${name}.release`, pad: 0 };
  await mkfifo(input.ready, input.release);
  const a = await s.call("POST", "/api/v1/runs", { flowId, input, wait: false });
  assertStrictEquals(a.status, 202, JSON.stringify(a.body));
  return { runId: a.body.runId as string, input, status: a.body.status as string };
}

/** Lets run `g`'s step (called now or later) answer, and waits for the run to complete. */
async function finish(s: RunningServer, g: Gated): Promise<void> {
  await Deno.readTextFile(g.input.ready); // its step is called
  await Deno.writeTextFile(g.input.release, "go\n");
  await s.call("GET", `/api/v1/runs/${g.runId}/events?after=0`); // ends once the run ended
  const done = await s.call("GET", `/api/v1/runs/${g.runId}`);
  assertStrictEquals(done.status, 200, JSON.stringify(done.body));
  assertStrictEquals(done.body.status, "completed", JSON.stringify(done.body));
  assertStrictEquals(done.body.result.result, g.input.v + 1);
}

/** How many times run `runId`'s step was called (its `step_started` events). */
async function starts(s: RunningServer, runId: string): Promise<number> {
  const e = await s.call("GET", `/api/v1/runs/${runId}/events?after=0`);
  return String(e.body).split("event: step_started").length - 1;
}

/**
 * Starts a service with `--max-concurrent-runs 1` on `dir/state.db`, a held run on it and two
 * runs queued behind it, and kills it with SIGKILL; `then` gets the runs.
 */
async function killBusy(
  dir: string,
  then: (runs: { held: Gated; queued: Gated[]; flowId: string }) => Promise<void>,
): Promise<void> {
  const one = await startServer(dir, {
    args: ["--store", `${dir}/state.db`, "--max-concurrent-runs", "1"],
    config: config(`${dir}/journal.txt`),
  });
  try {
    const flowId = await storeFlow(one, FLOW);
    const held = await post(one, flowId, dir, "held", 1);
    await Deno.readTextFile(held.input.ready); // it holds the one slot
    const queued = [await post(one, flowId, dir, "q1", 10), await post(one, flowId, dir, "q2", 20)];
    for (const q of queued) assertStrictEquals(q.status, "queued");
    // (their 202 came once their queued rows were stored)
    // its step service goes with it (as in a reboot): left running, it would still wait for
    // the held step's release FIFO, and could take the release meant for the resumed step
    const workers = (await Deno.readTextFile(`/proc/${one.pid}/task/${one.pid}/children`))
      .trim().split(/\s+/).filter((p) => p !== "").map(Number);
    assertStrictEquals(await one.stop("SIGKILL"), 137);
    for (const pid of workers) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    await then({ held, queued, flowId });
  } finally {
    await one.stop(null);
  }
}

Deno.test("serve killed with runs queued: a restart on the same SQLite file runs them, once each, within its --max-concurrent-runs (they stayed queued for ever)", () =>
  withTempDir((dir) =>
    killBusy(dir, async ({ held, queued }) => {
      const two = await startServer(dir, {
        args: ["--store", `${dir}/state.db`, "--max-concurrent-runs", "1"],
        config: false,
      });
      try {
        await finish(two, held); // resumed at start (it was running)
        for (const q of queued) {
          // one at a time: the next one waits for the slot
          const r = await two.call("GET", `/api/v1/runs/${q.runId}`);
          assert(["queued", "running"].includes(r.body.status), JSON.stringify(r.body));
          await finish(two, q);
        }
        for (const q of queued) assertStrictEquals(await starts(two, q.runId), 1);
        assert(
          two.stderr().includes(`queued 2 run(s) a stopped service had queued`),
          two.stderr(),
        );
      } finally {
        assertStrictEquals(await two.stop(), 0);
      }
    })
  ));

Deno.test("two services on one SQLite file: the runs queued by one killed with kill -9 are run by the survivor (they stayed queued for ever)", () =>
  withTempDir(async (dir) => {
    const two = await startServer(dir, {
      args: ["--store", `${dir}/state.db`],
      config: config(`${dir}/journal.txt`),
    });
    try {
      await killBusy(dir, async ({ held, queued }) => {
        await finish(two, held); // taken over: resumed
        for (const q of queued) await finish(two, q); // taken over: queued there
        for (const q of queued) assertStrictEquals(await starts(two, q.runId), 1);
        assert(two.stderr().includes("queued 2 here"), two.stderr());
      });
    } finally {
      assertStrictEquals(await two.stop(), 0);
    }
  }));
