/**
 * The PostgreSQL store beyond the shared contract (tests/state/store_contract_test.ts): migrations
 * by engines starting at once, exact numbers, leases kept by heartbeats and taken over when they
 * run out, fencing of a stalled engine, concurrent claimers, LISTEN/NOTIFY, the engines registry,
 * and a failed commit failing the run (507) without printing the password. Each test has a
 * database of its own (tests/_postgres.ts); without STEPFLOW_TEST_PG_URL they are skipped, and
 * this file says so in one line.
 */
import { assert, assertEquals, assertRejects, assertStrictEquals, REPO_ROOT } from "../_assert.ts";
import {
  PG_REQUIRED,
  PG_SKIPPED,
  PG_URL,
  pgTest,
  withClient,
  withPgDatabase,
} from "../_postgres.ts";
import { parseJson, stringifyJson } from "../../src/json/exact_json.ts";
import type { PostgresOpenOptions, PostgresStateStore } from "../../src/state/postgres.ts";
import { type RunRecord, STORE_FAILED, StoreError } from "../../src/state/store.ts";
import { flow, testConfig } from "../execution/_engine_helpers.ts";
import { Engine } from "../../src/execution/engine.ts";

if (PG_URL === undefined && !PG_REQUIRED) {
  Deno.test({ name: PG_SKIPPED, ignore: true, fn() {} });
}

async function open(url: string, options?: PostgresOpenOptions): Promise<PostgresStateStore> {
  const { PostgresStateStore } = await import("../../src/state/postgres.ts");
  return await PostgresStateStore.open(url, options);
}

/** Opens `n` stores (engines) on `url`, runs `fn`, closes them. */
async function withStores(
  url: string,
  n: number,
  options: PostgresOpenOptions,
  fn: (stores: PostgresStateStore[]) => Promise<void>,
): Promise<void> {
  const stores = await Promise.all(Array.from({ length: n }, () => open(url, options)));
  try {
    await fn(stores);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

function run(id: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: id,
    flowId: "f".repeat(64),
    status: "running",
    input: null,
    createdAt: "2024-01-01T00:00:00.000Z",
    ...extra,
  };
}

const ok = (result: unknown) => ({ outcome: "success" as const, result: result as never });

pgTest(
  "six engines opening a new database at once migrate it once",
  (server) =>
    withPgDatabase(server, async (url) => {
      await withStores(url, 6, {}, async (stores) => {
        stores[0].createRun(run("r"));
        await stores[0].flush();
        assertStrictEquals((await stores[5].getRun("r"))?.ownerId, stores[0].engineId);
      });
      await withClient(url, async (sql) => {
        const rows = await sql`SELECT name FROM _stepflow_migrations ORDER BY name`;
        assertEquals(rows.map((r) => r.name), [
          "0001_initial_schema",
          "0002_durable_runs",
          "0003_run_options",
          "0004_batch_max_concurrency",
          "0005_batch_claims",
        ]);
      });
      // opened again: nothing to migrate; autoMigrate: false finds every table
      const s = await open(url, { autoMigrate: false });
      await s.close();
    }),
);

pgTest(
  "exact numbers and JSON text round-trip through every column",
  (server) =>
    withPgDatabase(server, async (url) => {
      const s = await open(url);
      try {
        const text = '{"n":9007199254740993,"f":15.0,"s":"a\\"b\\\\c","u":"\\u00e9"}';
        const v = parseJson(text);
        const id = s.putBlob(v, "data");
        s.createRun(run("r", { input: v, variables: { k: v } }));
        s.recordStepResult("r", { stepIndex: 0, stepId: "a", result: ok(v) });
        s.completeRun("r", "completed", ok(v));
        assertStrictEquals(stringifyJson((await s.getBlob(id))?.data), stringifyJson(v));
        const r = await s.getRun("r");
        assertStrictEquals(stringifyJson(r?.input), stringifyJson(v));
        assertStrictEquals(stringifyJson(r?.variables?.k), stringifyJson(v));
        assertStrictEquals(stringifyJson(r?.result), stringifyJson(ok(v)));
        const [step] = await s.getStepResults("r");
        assertStrictEquals(stringifyJson(step.result), stringifyJson(ok(v)));
        assert(stringifyJson(step.result).includes("9007199254740993"), "exact integer");
        assert(stringifyJson(step.result).includes("15.0"), "15.0 as written");
      } finally {
        await s.close();
      }
    }),
);

pgTest(
  "fencing: an engine whose lease was taken over writes nothing more",
  (server) =>
    withPgDatabase(server, async (url) => {
      const lost: string[] = [];
      const slow = { leaseTtlMs: 60_000, heartbeatMs: 3_600_000 };
      const a = await open(url, { ...slow, onLeaseLost: (ids) => lost.push(...ids) });
      const b = await open(url, slow);
      try {
        a.createRun(run("r"));
        a.createRun(run("kid", { parentRunId: "r" }));
        a.createRun(run("other"));
        a.recordStepResult("r", { stepIndex: 0, stepId: "a", result: ok(1) });
        await a.flush();
        // a live lease is not taken
        assertEquals(await b.claimRuns({ limit: 10 }), []);
        const refused = await b.claimRun("r");
        assertStrictEquals(refused.claimed, false);
        if (!refused.claimed) assertStrictEquals(refused.owner?.engineId, a.engineId);
        // a stalls past its lease (its expiry moved back on the database clock), b takes r over
        await withClient(
          url,
          (sql) =>
            sql`UPDATE runs SET lease_expires_at = now() - interval '1 second' WHERE id = 'r'`,
        );
        const claimed = await b.claimRuns({ limit: 10 });
        assertEquals(claimed.map((c) => [c.run.runId, c.leaseEpoch, c.resumed]), [["r", 2, true]]);
        // a wakes up: its writes to r and to r's nested run are refused; its other run's are stored
        const w1 = a.recordStepResult("r", { stepIndex: 1, stepId: "b", result: ok(2) });
        const w2 = a.recordStepResult("kid", { stepIndex: 0, stepId: "x", result: ok(3) });
        const w3 = a.recordStepResult("other", { stepIndex: 0, stepId: "y", result: ok(4) });
        const done = a.completeRun("r", "completed", ok(2));
        const e = await assertRejects(() => w1 as Promise<void>, StoreError);
        assert(/another engine took the run over.*run r, lease epoch 1/.test(e.message), e.message);
        await assertRejects(() => w2 as Promise<void>, StoreError);
        await assertRejects(() => done as Promise<void>, StoreError);
        await w3;
        assertEquals(lost, ["r"]);
        // a later write is refused at once
        await assertRejects(() => a.setRunStatus("r", "paused") as Promise<void>, StoreError);
        // nothing of a's late writes is in the database
        assertEquals((await b.getStepResults("r")).map((x) => x.stepId), ["a"]);
        assertEquals(await b.getStepResults("kid"), []);
        assertEquals((await b.getStepResults("other")).map((x) => x.stepId), ["y"]);
        const r = await b.getRun("r");
        assertEquals([r?.status, r?.ownerId, r?.leaseEpoch], ["running", b.engineId, 2]);
        // the new owner writes
        b.recordStepResult("r", { stepIndex: 1, stepId: "b", result: ok(20) });
        await b.completeRun("r", "completed", ok(20));
        assertStrictEquals((await a.getRun("r"))?.status, "completed");
        const types = (await b.getEvents({ runId: "r" })).map((x) => x.type);
        assertEquals(types, [
          "run_started",
          "step_completed",
          "run_resumed",
          "step_completed",
          "run_completed",
        ]);
      } finally {
        await a.close();
        await b.close();
      }
    }),
);

pgTest(
  "a heartbeat keeps the lease; an engine stopped (SIGSTOP) past it loses the run and its late writes",
  (server) =>
    withPgDatabase(server, async (url) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", `${REPO_ROOT}/tests/fixtures/pg/lease_holder.ts`, url],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
        .getReader();
      const stdin = child.stdin.getWriter();
      const say = (cmd: string) => stdin.write(new TextEncoder().encode(cmd + "\n"));
      const next = async () => (await lines.read()).value ?? "";
      const b = await open(url, { leaseTtlMs: 1500 });
      try {
        assertStrictEquals(await next(), "ready");
        // two lease lengths: the holder's heartbeat renews it every 150 ms
        const until = Date.now() + 3000;
        while (Date.now() < until) {
          assertEquals(await b.claimRuns({ limit: 1 }), []);
          await new Promise((r) => setTimeout(r, 100));
        }
        await say("write");
        assertStrictEquals(await next(), "stored");
        // the holder stops; once its lease ran out (on the database clock), b takes the run over
        Deno.kill(child.pid, "SIGSTOP");
        const stoppedAt = Date.now();
        let claimed = await b.claimRuns({ limit: 1 });
        while (claimed.length === 0 && Date.now() - stoppedAt < 10_000) {
          await new Promise((r) => setTimeout(r, 50));
          claimed = await b.claimRuns({ limit: 1 });
        }
        assertEquals(claimed.map((c) => [c.run.runId, c.leaseEpoch, c.resumed]), [["r", 2, true]]);
        assert(Date.now() - stoppedAt < 6_500, "taken over within the lease TTL + 5 s");
        // it goes on: its late write is refused, and nothing of it is stored
        Deno.kill(child.pid, "SIGCONT");
        await say("write");
        const answer = await next();
        assert(answer.startsWith("refused: "), answer);
        assert(answer.includes("another engine took the run over"), answer);
        assertEquals((await b.getStepResults("r")).map((x) => x.stepId), ["late0"]);
        const r = await b.getRun("r");
        assertEquals([r?.ownerId, r?.leaseEpoch], [b.engineId, 2]);
        await say("exit");
        assertStrictEquals((await child.status).code, 0);
      } finally {
        try {
          Deno.kill(child.pid, "SIGKILL");
        } catch {
          // exited
        }
        await stdin.close().catch(() => {});
        await lines.cancel().catch(() => {});
        await child.status;
        await b.close();
      }
    }),
);

/** Splits a text stream into lines. */
function lineSplitter(): TransformStream<string, string> {
  let buffered = "";
  return new TransformStream({
    transform(chunk, controller) {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        controller.enqueue(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    },
  });
}

pgTest(
  "concurrent claimers: 300 queued runs, 6 engines, each run claimed exactly once",
  (server) =>
    withPgDatabase(server, async (url) => {
      await withStores(url, 6, { maxConnections: 3 }, async (stores) => {
        for (let i = 0; i < 300; i++) {
          const id = `q${String(i).padStart(3, "0")}`;
          stores[i % 6].createRun(run(id, { status: "queued" }));
        }
        await Promise.all(stores.map((s) => s.flush()));
        const claimed = await Promise.all(stores.map(async (s) => {
          const mine: string[] = [];
          for (;;) {
            const batch = await s.claimRuns({ limit: 7 });
            if (batch.length === 0) return mine;
            for (const c of batch) {
              assertStrictEquals(c.run.ownerId, s.engineId);
              mine.push(c.run.runId);
            }
          }
        }));
        const all = claimed.flat();
        assertStrictEquals(all.length, 300);
        assertStrictEquals(new Set(all).size, 300);
        await withClient(url, async (sql) => {
          const [n] = await sql`
          SELECT count(*)::int AS running, count(DISTINCT owner_id)::int AS owners,
            max(lease_epoch)::int AS epoch FROM runs WHERE status = 'running'`;
          assertEquals([n.running, n.epoch], [300, 1]);
          assert(n.owners >= 1);
          const [ev] =
            await sql`SELECT count(*)::int AS n FROM run_events WHERE type = 'run_started'`;
          assertStrictEquals(ev.n, 300);
        });
      });
    }),
);

pgTest(
  "NOTIFY wakes a claimer on another engine when a run is queued",
  (server) =>
    withPgDatabase(server, async (url) => {
      await withStores(url, 2, {}, async ([a, b]) => {
        let woken!: () => void;
        const wake = new Promise<void>((resolve) => woken = resolve);
        const stop = b.watchQueue(() => woken());
        assert(await b.listening(), "LISTEN is active");
        a.createRun(run("q", { status: "queued" }));
        await wake;
        stop();
        assertEquals((await b.claimRuns({ limit: 5 })).map((c) => c.run.runId), ["q"]);
      });
    }),
);

pgTest(
  "the engines registry lists every engine with its URL and heartbeat",
  (server) =>
    withPgDatabase(server, async (url) => {
      await withStores(url, 2, {}, async ([a, b]) => {
        await a.registerEngine({ url: "http://10.0.0.1:7840" });
        b.createRun(run("r"));
        await b.flush();
        const engines = await a.listEngines();
        assertEquals(
          engines.map((e) => [e.engineId, e.url ?? null, e.pid]).sort(),
          [[a.engineId, "http://10.0.0.1:7840", Deno.pid], [b.engineId, null, Deno.pid]].sort(),
        );
        const before = engines.find((e) => e.engineId === b.engineId)!.heartbeatAt;
        await b.renewLeases();
        const after = (await a.listEngines()).find((e) => e.engineId === b.engineId)!.heartbeatAt;
        assert(after >= before, `${after} >= ${before}`);
      });
      // closed engines leave the registry
      await withClient(url, async (sql) => {
        assertEquals(await sql`SELECT id FROM engines`, []);
      });
    }),
);

pgTest(
  "a failed commit fails the run with 507 naming the database, never the password",
  (server) =>
    withPgDatabase(server, async (url) => {
      // the test server trusts every login: the password is accepted and must not be shown
      const secret = "s3cret-Pa55word";
      const u = new URL(url);
      u.password = secret;
      await withClient(url, async (sql) => {
        // migrate first, then make every step result fail as a full disk would
        await (await open(url)).close();
        await sql.unsafe(`
        CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
          RAISE EXCEPTION USING ERRCODE = '53100',
            MESSAGE = 'could not extend file "base/1/2": No space left on device';
        END $$;
        CREATE TRIGGER refuse BEFORE INSERT ON step_results FOR EACH ROW EXECUTE FUNCTION refuse();`);
      });
      const config = testConfig({}, { stateStore: { type: "postgres", url: u.toString() } });
      const engine = await Engine.create(config);
      let result;
      try {
        result = await engine.run(
          flow(`
steps:
  - id: a
    component: /builtin/create_messages
    input: { user_prompt: hi }
output: { $from: { step: a } }
`),
          null,
        );
      } finally {
        await engine.close();
      }
      assertStrictEquals(result.outcome, "failed");
      if (result.outcome !== "failed") return;
      assertStrictEquals(result.error.code, STORE_FAILED);
      const m = result.error.message;
      assert(m.includes(`PostgreSQL database 'postgres://postgres@${u.host}${u.pathname}'`), m);
      assert(m.includes("No space left on device (SQLSTATE 53100)"), m);
      assert(!JSON.stringify(result).includes(secret), JSON.stringify(result));
    }),
);
