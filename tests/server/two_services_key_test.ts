/**
 * Two `stepflow serve` processes on one SQLite file given the same `Idempotency-Key`s at once:
 * one run per key, each step service called once per key, every request answered with that run's
 * result. Before the fix the second service's insert of its run replaced the first's row (the
 * key is unique in `runs`): both ran the request (32 of 300 keys twice here) and the first run
 * vanished from the store. Also: a repeated request with `wait: true` for a run the other service
 * executes waits for its result (it was answered 202 without one), and a key of a debug run given
 * to a request that is not one is a 422 (it waited for the paused run for ever). The same race on
 * a PostgreSQL database (two engines of a cluster) failed whole commits with a duplicate key (507
 * for every run in them) and answered runs 'deleted before it finished'; skipped without
 * STEPFLOW_TEST_PG_URL. And with `wait: false`: every answer for a key names the run that holds it
 * (an answer given before the run's record was stored could name the run that lost the key).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { assert, assertStrictEquals, assertStringIncludes, withTempDir } from "../_assert.ts";
import {
  GATED_FLOW,
  journalConfig as config,
  mkfifo,
  type RunningServer,
  startServer,
  storeFlow,
} from "./_server.ts";
import { pgTest, withClient, withPgDatabase } from "../_postgres.ts";

const FLOW = {
  schema: "https://stepflow.org/schemas/v1/flow.json",
  name: "one_call",
  steps: [{
    id: "a",
    component: "/j/record",
    input: {
      value: { $from: { workflow: "input" }, path: "$.v" },
      delay_ms: { $from: { workflow: "input" }, path: "$.delay" },
    },
  }],
  output: { $from: { step: "a" }, path: "$.value" },
};

const KEYS = 120;

/**
 * Sends requests with `KEYS` keys to both services at once (10 lanes each), and checks: every
 * answer 200 with its key's result, one run per key, one step service call per key, and the
 * runs stored (`stored()`: id and status of every run) are those answered.
 */
async function raceKeys(
  one: RunningServer,
  two: RunningServer,
  flowId: string,
  journal: string,
  stored: () => Promise<{ id: string; status: string }[]>,
): Promise<void> {
  const answers: { key: number; status: number; runId: string; result: unknown }[] = [];
  const send = async (s: RunningServer, from: number) => {
    for (let k = from; k < KEYS; k += 10) {
      const a = await s.call("POST", "/api/v1/runs", { flowId, input: { v: k, delay: 0 } }, {
        "Idempotency-Key": `key-${k}`,
      });
      answers.push({ key: k, status: a.status, runId: a.body.runId, result: a.body.result });
    }
  };
  const lanes = [];
  for (let lane = 0; lane < 10; lane++) lanes.push(send(one, lane), send(two, lane));
  await Promise.all(lanes);

  for (const a of answers) {
    assertStrictEquals(a.status, 200, `key-${a.key}: ${JSON.stringify(a)}`);
    assertStrictEquals(
      JSON.stringify(a.result),
      JSON.stringify({ outcome: "success", result: a.key + 1 }),
    );
  }
  const byKey = new Map<number, Set<string>>();
  for (const a of answers) byKey.set(a.key, (byKey.get(a.key) ?? new Set()).add(a.runId));
  for (const [k, ids] of byKey) {
    assertStrictEquals(ids.size, 1, `key-${k} answered with runs ${[...ids]}`);
  }
  const lines = (await Deno.readTextFile(journal)).trim().split("\n");
  assertStrictEquals(lines.length, KEYS, "one step service call per key");
  const rows = await stored();
  assertStrictEquals(rows.length, KEYS);
  for (const r of rows) assertStrictEquals(r.status, "completed");
  const ids = new Set(rows.map((r) => r.id.replaceAll("-", "")));
  for (const runIds of byKey.values()) {
    assert(ids.has([...runIds][0].replaceAll("-", "")), "the answered run is the stored one");
  }
}

/**
 * Sends, for each of 60 keys, 10 requests with `wait: false` at once (5 to each service), and
 * checks that every answer for a key names the same run — the one stored (before the fix, an
 * answer given before the run's record was stored named the run that lost the key: 34 of 40
 * keys on SQLite, 21 of 40 on PostgreSQL) — and that each key's run executed once.
 */
async function raceKeysNoWait(
  one: RunningServer,
  two: RunningServer,
  flowId: string,
  journal: string,
  stored: () => Promise<{ id: string; status: string }[]>,
): Promise<void> {
  const keys = 60;
  const named = new Map<number, Set<string>>();
  const lane = async (from: number) => {
    for (let k = from; k < keys; k += 6) {
      const all = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? one : two).call(
            "POST",
            "/api/v1/runs",
            { flowId, input: { v: 1000 + k, delay: 0 }, wait: false },
            { "Idempotency-Key": `nowait-${k}` },
          )),
      );
      for (const a of all) {
        assert(a.status === 202 || a.status === 200, `nowait-${k}: ${JSON.stringify(a.body)}`);
      }
      named.set(k, new Set(all.map((a) => a.body.runId)));
    }
  };
  await Promise.all(Array.from({ length: 6 }, (_, i) => lane(i)));
  for (const [k, ids] of named) {
    assertStrictEquals(ids.size, 1, `nowait-${k} was answered with runs ${[...ids]}`);
    const done = await one.call("POST", "/api/v1/runs", {
      flowId,
      input: { v: 1000 + k, delay: 0 },
    }, { "Idempotency-Key": `nowait-${k}` });
    assertStrictEquals(done.status, 200, JSON.stringify(done.body));
    assertStrictEquals(done.body.runId, [...ids][0]);
    assertStrictEquals(done.body.result.result, 1001 + k);
  }
  const rows = (await stored()).filter((r) => r.status !== "cancelled");
  const answered = new Set([...named.values()].map((ids) => [...ids][0].replaceAll("-", "")));
  const keyed = rows.filter((r) => answered.has(r.id.replaceAll("-", "")));
  assertStrictEquals(keyed.length, keys, "each answered run is stored");
  const calls = (await Deno.readTextFile(journal)).trim().split("\n")
    .filter((l) => / 10\d\d$/.test(l));
  assertStrictEquals(calls.length, keys, "one step service call per key");
}

Deno.test("two services on one SQLite file, the same Idempotency-Keys at once: one run and one step service call per key", () =>
  withTempDir(async (dir) => {
    const journal = `${dir}/journal.txt`;
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config(journal));
    const args = ["--store", `${dir}/state.db`];
    const one = await startServer(dir, { args, config: false });
    const two = await startServer(dir, { args, config: false }).catch(async (e) => {
      await one.stop();
      throw e;
    });
    try {
      const flowId = await storeFlow(one, FLOW);
      assertStrictEquals(await storeFlow(two, FLOW), flowId);
      const db = new DatabaseSync(`${dir}/state.db`, { readOnly: true });
      try {
        const rows = () =>
          Promise.resolve(
            db.prepare("SELECT id, status FROM runs").all() as { id: string; status: string }[],
          );
        await raceKeys(one, two, flowId, journal, rows);
        await raceKeysNoWait(one, two, flowId, journal, rows);
      } finally {
        db.close();
      }
      // a repeated request for a run the other service executes waits for its result
      const slow = await one.call("POST", "/api/v1/runs", {
        flowId,
        input: { v: 1000, delay: 1500 },
        wait: false,
      }, { "Idempotency-Key": "slow" });
      assertStrictEquals(slow.status, 202);
      const waited = await two.call("POST", "/api/v1/runs", {
        flowId,
        input: { v: 1000, delay: 1500 },
      }, { "Idempotency-Key": "slow" });
      assertStrictEquals(waited.status, 200, JSON.stringify(waited.body));
      assertStrictEquals(waited.body.runId, slow.body.runId);
      assertStrictEquals(waited.body.result.result, 1001);
      assertStrictEquals(waited.headers.get("idempotent-replayed"), "true");

      // the key of a debug run (paused) given to a request that is not one: 422, not a wait
      const dbg = await one.call("POST", "/api/v1/runs", {
        flowId,
        input: { v: 1, delay: 0 },
        debug: true,
      }, { "Idempotency-Key": "dbg" });
      assertStrictEquals(dbg.status, 200);
      for (const s of [one, two]) {
        const plain = await s.call("POST", "/api/v1/runs", { flowId, input: { v: 1, delay: 0 } }, {
          "Idempotency-Key": "dbg",
        });
        assertStrictEquals(plain.status, 422, JSON.stringify(plain.body));
        assertStringIncludes(plain.body.message, "debug run");
        assertStringIncludes(plain.body.message, dbg.body.runId);
      }
      const again = await one.call("POST", "/api/v1/runs", {
        flowId,
        input: { v: 1, delay: 0 },
        debug: true,
      }, { "Idempotency-Key": "dbg" });
      assertStrictEquals(again.body.runId, dbg.body.runId);
    } finally {
      await Promise.all([one.stop(), two.stop()]);
    }
  }));

pgTest(
  "two services on one PostgreSQL database, the same Idempotency-Keys at once: one run and one step service call per key",
  (server) =>
    withPgDatabase(server, (url) =>
      withTempDir(async (dir) => {
        const journal = `${dir}/journal.txt`;
        await Deno.writeTextFile(`${dir}/stepflow-config.yml`, config(journal));
        const args = ["--store", url];
        const one = await startServer(dir, { args, config: false });
        const two = await startServer(dir, { args, config: false }).catch(async (e) => {
          await one.stop();
          throw e;
        });
        try {
          const flowId = await storeFlow(one, FLOW);
          assertStrictEquals(await storeFlow(two, FLOW), flowId);
          const rows = () =>
            withClient(
              url,
              async (sql) =>
                [...await sql`SELECT id, status FROM runs`] as { id: string; status: string }[],
            );
          await raceKeys(one, two, flowId, journal, rows);
          await raceKeysNoWait(one, two, flowId, journal, rows);
        } finally {
          await Promise.all([one.stop(), two.stop()]);
        }
      })),
);

Deno.test("a step running on one service reads running (with its attempt and start) on the other service of the database", () =>
  withTempDir(async (dir) => {
    // was: the other service answered `blocked` in GET /runs/{id}/steps and drew the step
    // `status-blocked` in /graph (the web UI showed it waiting): only the service executing a run
    // knew its running steps; the journal's step_started was not read for them
    const args = ["--store", "sqlite:state.db"];
    const ready = `${dir}/ready`;
    const release = `${dir}/release`;
    await mkfifo(ready, release);
    const one = await startServer(dir, { args, config: config(`${dir}/journal.txt`) });
    let two: RunningServer | undefined;
    try {
      two = await startServer(dir, { args, config: false });
      const flowId = await storeFlow(one, GATED_FLOW);
      const input = { v: 1, ready, release, pad: 0 };
      const started = await one.call("POST", "/api/v1/runs", { flowId, input, wait: false });
      assertStrictEquals(started.status, 202, JSON.stringify(started.body));
      const runId = started.body.runId;
      await Deno.readTextFile(ready); // the step service is called
      for (const s of [one, two]) {
        const steps = await s.call("GET", `/api/v1/runs/${runId}/steps`);
        const a = steps.body.steps.a;
        assertStrictEquals(a.status, "running", JSON.stringify(steps.body));
        assertStrictEquals(a.attempt, 1);
        assert(typeof a.startedAt === "string", JSON.stringify(a));
        const svg = await fetch(`${s.url}/api/v1/runs/${runId}/graph`).then((r) => r.text());
        assertStringIncludes(svg, "status-running");
      }
      await Deno.writeTextFile(release, "go\n");
      const deadline = Date.now() + 30_000;
      let status = "";
      while (status !== "completed" && Date.now() < deadline) {
        status = (await two.call("GET", `/api/v1/runs/${runId}`)).body.status;
        if (status !== "completed") await new Promise((r) => setTimeout(r, 50));
      }
      assertStrictEquals(status, "completed");
      const after = await two.call("GET", `/api/v1/runs/${runId}/steps`);
      assertStrictEquals(after.body.steps.a.status, "completed");
    } finally {
      if (two !== undefined) assertStrictEquals(await two.stop(), 0, two.stderr());
      assertStrictEquals(await one.stop(), 0, one.stderr());
    }
  }));
