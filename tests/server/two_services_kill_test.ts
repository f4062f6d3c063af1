/**
 * Two `stepflow serve` processes on one SQLite file, one killed with `kill -9` while its run's
 * step is in progress (issue 13, wave 6). Before: the survivor showed the run `running` for ever
 * (only a service starting on the file noticed the dead one). Now the survivor notices within
 * its check interval (2 s; its process is gone), marks the run interrupted and resumes it: the
 * step runs again there and the run completes, answering a request with its Idempotency-Key. With
 * `--no-resume` it only marks it interrupted (503, `RUN_INTERRUPTED`).
 * @module
 */
import { assert, assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import {
  GATED_FLOW as FLOW,
  journalConfig as config,
  mkfifo,
  type RunningServer,
  startServer,
  storeFlow,
} from "./_server.ts";

/**
 * Starts two services on `dir/state.db` (the second with `secondArgs`), a run on the first whose
 * step is held, and kills the first with SIGKILL; `then` gets the survivor and the run.
 */
async function killOneOfTwo(
  secondArgs: string[],
  then: (
    two: RunningServer,
    run: { runId: string; flowId: string; input: unknown; dir: string },
  ) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const journal = `${dir}/journal.txt`;
    const args = ["--store", `${dir}/state.db`];
    const one = await startServer(dir, { args, config: config(journal) });
    let two: RunningServer | undefined;
    try {
      two = await startServer(dir, { args: [...args, ...secondArgs], config: false });
      const flowId = await storeFlow(one, FLOW);
      assertStrictEquals(await storeFlow(two, FLOW), flowId);
      const input = { v: 1, ready: `${dir}/ready`, release: `${dir}/release`, pad: 0 };
      await mkfifo(input.ready, input.release);
      const started = await one.call("POST", "/api/v1/runs", { flowId, input, wait: false }, {
        "Idempotency-Key": "k",
      });
      assertStrictEquals(started.status, 202);
      await Deno.readTextFile(input.ready); // its step is in progress in the first service
      assertStrictEquals(await one.stop("SIGKILL"), 137);
      await then(two, { runId: started.body.runId, flowId, input, dir });
    } finally {
      await one.stop(null);
      if (two) assertStrictEquals(await two.stop(), 0);
    }
  });
}

Deno.test("two services on one SQLite file: when one is killed, the other resumes its run (it showed it running for ever)", () =>
  killOneOfTwo([], async (two, { runId, flowId, input }) => {
    const t0 = performance.now();
    // taken over: the step is called again, in the survivor's step service
    await Deno.readTextFile((input as { ready: string }).ready);
    const tookMs = performance.now() - t0;
    await Deno.writeTextFile((input as { release: string }).release, "go\n");
    const done = await two.call("POST", "/api/v1/runs", { flowId, input }, {
      "Idempotency-Key": "k",
    });
    assertStrictEquals(done.status, 200, JSON.stringify(done.body));
    assertStrictEquals(done.body.runId, runId);
    assertStrictEquals(done.body.status, "completed");
    assertStrictEquals(done.body.result.result, 2);
    assert(tookMs < 15_000, `taken over after ${tookMs} ms`);
    const events = await two.call("GET", `/api/v1/runs/${runId}/events?after=0`);
    assertStringIncludes(String(events.body), "run_interrupted");
    assertStringIncludes(String(events.body), "run_resumed");
    assertStringIncludes(two.stderr(), `resumed 1 here: ${runId}`);
  }));

Deno.test("two services on one SQLite file, the survivor started with --no-resume: the killed one's run is marked interrupted, not left running", () =>
  killOneOfTwo(["--no-resume"], async (two, { runId }) => {
    let status = "running";
    let run;
    for (let i = 0; i < 300 && status === "running"; i++) {
      run = (await two.call("GET", `/api/v1/runs/${runId}`)).body;
      status = run.status;
      if (status === "running") await new Promise((r) => setTimeout(r, 50));
    }
    assertStrictEquals(status, "failed", JSON.stringify(run));
    assertStrictEquals(run.result.error.code, 503);
    assertStringIncludes(run.result.error.message, "stopped before the run finished");
    assertStringIncludes(run.result.error.message, `stepflow resume ${runId}`);
    assertStringIncludes(two.stderr(), "marked interrupted (not resumed here");
  }));
