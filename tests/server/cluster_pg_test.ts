/**
 * Scale-out through PostgreSQL with real processes (issue 14): several `stepflow serve` on one
 * database share its run queue; a run whose engine is killed (`kill -9`) or stalled (`SIGSTOP`)
 * past its lease is taken over by another engine and continued from its journal; committed steps
 * do not run again (a step service writes down every call); a stalled engine's late writes are
 * refused. Lease TTL 2 s so that it is quick.
 *
 * Skipped (one line) without `STEPFLOW_TEST_PG_URL`, unless `STEPFLOW_REQUIRE_PG=1`.
 * @module
 */
import { assert, assertEquals, REPO_ROOT, withTempDir } from "../_assert.ts";
import {
  PG_REQUIRED,
  PG_SKIPPED,
  PG_URL,
  pgTest,
  withClient,
  withPgDatabase,
} from "../_postgres.ts";
import { type RunningServer, SCHEMA, startServer, storeFlow } from "./_server.ts";

if (PG_URL === undefined && !PG_REQUIRED) {
  Deno.test({ name: PG_SKIPPED.replace("PostgreSQL store", "scale-out"), ignore: true, fn() {} });
}

const TTL = "2s";
const TTL_MS = 2000;

function config(journal: string | undefined): string {
  if (journal === undefined) {
    return `plugins:
  builtin: { type: builtin }
routes:
  "/builtin/{*component}":
    - plugin: builtin
`;
  }
  return `plugins:
  builtin: { type: builtin }
  svc:
    type: stepflow
    command: ${JSON.stringify(Deno.execPath())}
    args: [run, --quiet, -A, ${
    JSON.stringify(`${REPO_ROOT}/tests/fixtures/workers/cluster_worker.ts`)
  }]
    env: { JOURNAL_FILE: ${JSON.stringify(journal)} }
routes:
  "/builtin/{*component}":
    - plugin: builtin
  "/svc/{*component}":
    - plugin: svc
`;
}

/** a → b → c, each a call to the step service; b takes `bMs`. */
function chain(bMs: number) {
  return {
    schema: SCHEMA,
    name: "chain",
    steps: [
      {
        id: "a",
        component: "/svc/step",
        input: { value: { $from: { workflow: "input" }, path: "$.n" } },
      },
      {
        id: "b",
        component: "/svc/step",
        input: { value: { $from: { step: "a" }, path: "$.value" }, delay_ms: bMs },
      },
      {
        id: "c",
        component: "/svc/step",
        input: { value: { $from: { step: "b" }, path: "$.value" } },
      },
    ],
    output: { $from: { step: "c" }, path: "$.value" },
  };
}

/**
 * Starts `n` engines on `db` in `dir` (at once), with the config written first (with the step
 * service, journaling to `dir/journal.txt`, unless `stepService` is false).
 */
async function engines(
  dir: string,
  db: string,
  n: number,
  extra: string[] = [],
  stepService = true,
) {
  await Deno.writeTextFile(
    `${dir}/stepflow-config.yml`,
    config(stepService ? `${dir}/journal.txt` : undefined),
  );
  return await Promise.all(
    Array.from({ length: n }, () =>
      startServer(dir, {
        config: false,
        args: ["--store", db, "--lease-ttl", TTL, "--shutdown-timeout", "0", ...extra],
      })),
  );
}

async function stopAll(list: RunningServer[]): Promise<void> {
  await Promise.all(list.map((s) => s.stop("SIGKILL").catch(() => {})));
}

/** Lines of the journal: `[what, run, step, attempt]`. */
async function journal(dir: string): Promise<string[][]> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${dir}/journal.txt`);
  } catch {
    // nothing yet
  }
  return text.split("\n").filter((l) => l !== "").map((l) => l.split(" "));
}

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

pgTest(
  "three engines on one database: 300 runs submitted to any of them complete, each stored once, spread over the engines",
  async (server) => {
    await withPgDatabase(server, async (db) => {
      await withTempDir(async (dir) => {
        // ten slots each: a batch of 30 needs all three
        const es = await engines(dir, db, 3, ["--max-concurrent-runs", "10"], false);
        try {
          const list = await es[0].call("GET", "/api/v1/engines");
          assertEquals(list.body.engines.length, 3);
          assert(list.body.engines.every((e: { alive: boolean }) => e.alive));
          const flow = {
            schema: SCHEMA,
            name: "fan",
            steps: [{
              id: "m",
              component: "/builtin/create_messages",
              input: { user_prompt: { $from: { workflow: "input" }, path: "$.q" } },
            }],
            output: { m: { $from: { step: "m" } } },
          };
          const flowId = await storeFlow(es[0], flow);
          const ids: string[] = [];
          // 300 runs, round robin over the engines, 30 at a time; every tenth waits for its
          // result (which another engine may produce)
          for (let k = 0; k < 300; k += 30) {
            await Promise.all(Array.from({ length: 30 }, async (_, j) => {
              const i = k + j;
              const wait = i % 10 === 0;
              const r = await es[i % 3].call("POST", "/api/v1/runs", {
                flowId,
                input: { q: `q${i}` },
                wait,
              });
              ids[i] = r.body.runId;
              if (wait) {
                assertEquals(r.status, 200, JSON.stringify(r.body));
                assertEquals(r.body.result.result.m.messages[0].content, `q${i}`);
              } else assertEquals(r.status, 202, JSON.stringify(r.body));
            }));
          }
          await withClient(db, async (sql) => {
            await until("all 300 runs completed", 60_000, async () => {
              const [{ n }] =
                await sql`SELECT count(*)::int AS n FROM runs WHERE status = 'completed'`;
              return n === 300 ? true : undefined;
            });
            const [counts] = await sql`
              SELECT count(*)::int AS runs, count(DISTINCT id)::int AS ids,
                count(DISTINCT owner_id)::int AS owners, max(lease_epoch)::int AS epoch
              FROM runs`;
            assertEquals([counts.runs, counts.ids, counts.epoch], [300, 300, 1]);
            assert(counts.owners >= 2, `runs executed by ${counts.owners} engine(s) only`);
            // each run started once, finished once, each step stored once
            const ev = await sql`
              SELECT type, count(*)::int AS n, count(DISTINCT run_id)::int AS runs FROM run_events
              WHERE type IN ('run_started', 'run_completed', 'step_completed') GROUP BY type
              ORDER BY type`;
            assertEquals(ev.map((e) => [e.type, e.n, e.runs]), [
              ["run_completed", 300, 300],
              ["run_started", 300, 300],
              ["step_completed", 300, 300],
            ]);
            const [{ steps }] = await sql`SELECT count(*)::int AS steps FROM step_results`;
            assertEquals(steps, 300);
            assertEquals(ids.filter((x) => typeof x === "string").length, 300);
          });
          // any engine answers for any run, naming its owner
          const other = await es[1].call("GET", `/api/v1/runs/${ids[0]}`);
          assertEquals(other.body.status, "completed");
          assert(
            es.some((e) => e.pid === other.body.owner.pid && e.url === other.body.owner.url),
            JSON.stringify(other.body.owner),
          );
          // a batch submitted to one engine: its runs are claimed by the engines
          const batch = await es[2].call("POST", "/api/v1/batches", {
            flowId,
            inputs: Array.from({ length: 30 }, (_, i) => ({ q: `b${i}` })),
          });
          assertEquals(batch.status, 200, JSON.stringify(batch.body));
          const details = await until("the batch finished", 30_000, async () => {
            const d = await es[0].call("GET", `/api/v1/batches/${batch.body.batchId}`);
            return d.body.completedRuns === 30 ? d.body : undefined;
          });
          assertEquals([details.failedRuns, details.runningRuns], [0, 0]);
          const outputs = await es[1].call("GET", `/api/v1/batches/${batch.body.batchId}/outputs`);
          assertEquals(outputs.body.outputs[29].result.result.m.messages[0].content, "b29");
          await withClient(db, async (sql) => {
            const [{ owners }] = await sql`
              SELECT count(DISTINCT r.owner_id)::int AS owners FROM batch_runs b
              JOIN runs r ON r.id = b.run_id WHERE b.batch_id = ${batch.body.batchId}`;
            assert(owners >= 2, `the batch ran on ${owners} engine(s) only`);
          });
          // graceful stop: each engine leaves the registry
          await es[2].stop("SIGTERM");
          const after = await es[0].call("GET", "/api/v1/engines");
          assertEquals(after.body.engines.length, 2);
        } finally {
          await stopAll(es);
        }
      });
    });
  },
);

pgTest(
  "a batch with maxConcurrency 3 on three engines: never more than 3 of its runs in flight at once (sampled from the database), all 20 finish",
  async (server) => {
    await withPgDatabase(server, async (db) => {
      await withTempDir(async (dir) => {
        const es = await engines(dir, db, 3, ["--max-concurrent-runs", "10"], false);
        try {
          // each run waits for its signal: it stays in flight (paused) until the test releases it
          const flowId = await storeFlow(es[0], {
            schema: SCHEMA,
            name: "held",
            steps: [{ id: "w", component: "/builtin/wait_for", input: { name: "go" } }],
            output: { $from: { step: "w" } },
          });
          const batch = await es[1].call("POST", "/api/v1/batches", {
            flowId,
            inputs: Array.from({ length: 20 }, (_, i) => ({ i })),
            maxConcurrency: 3,
          });
          assertEquals(batch.status, 200, JSON.stringify(batch.body));
          const batchId = batch.body.batchId as string;
          const signalled = new Set<string>();
          let most = 0;
          let k = 0;
          await withClient(db, async (sql) => {
            await until("all 20 runs of the batch completed", 120_000, async () => {
              const rows = await sql`
                SELECT r.id, r.status FROM batch_runs b JOIN runs r ON r.id = b.run_id
                WHERE b.batch_id = ${batchId} ORDER BY b.batch_input_index`;
              const inFlight = rows.filter((r) => r.status === "running" || r.status === "paused");
              most = Math.max(most, inFlight.length);
              assert(inFlight.length <= 3, `${inFlight.length} runs of the batch in flight`);
              if (rows.every((r) => r.status === "completed")) return true;
              // release one run in flight (through any engine)
              const next = inFlight.find((r) => !signalled.has(r.id as string));
              if (next !== undefined) {
                signalled.add(next.id as string);
                const r = await es[k++ % 3].call(
                  "POST",
                  `/api/v1/runs/${next.id}/signals/go`,
                  { ok: k },
                );
                assertEquals(r.status, 200, JSON.stringify(r.body));
              }
              return undefined;
            });
          });
          assertEquals(most, 3);
          assertEquals(signalled.size, 20);
          const d = await es[2].call("GET", `/api/v1/batches/${batchId}`);
          assertEquals([d.body.completedRuns, d.body.failedRuns], [20, 0]);
        } finally {
          await stopAll(es);
        }
      });
    });
  },
);

pgTest(
  "failover: the owner is killed (kill -9) while a step is in flight; another engine takes the run over within the lease TTL + 5 s and committed steps ran once",
  async (server) => {
    await withPgDatabase(server, async (db) => {
      await withTempDir(async (dir) => {
        const es = await engines(dir, db, 3);
        try {
          const flowId = await storeFlow(es[0], chain(1500));
          const r = await es[0].call("POST", "/api/v1/runs", {
            flowId,
            input: { n: 1 },
            wait: false,
          });
          const runId = r.body.runId;
          await until(
            "b in flight",
            20_000,
            async () =>
              (await journal(dir)).some((l) => l[0] === "start" && l[1] === runId && l[2] === "b")
                ? true
                : undefined,
          );
          const owner = (await es[1].call("GET", `/api/v1/runs/${runId}`)).body.owner;
          const victim = es.find((e) => e.pid === owner.pid)!;
          assert(victim, JSON.stringify(owner));
          Deno.kill(victim.pid, "SIGKILL");
          const killedAt = Date.now();
          await victim.stop(null);
          const rest = es.filter((e) => e !== victim);
          const done = await until(
            "the run completed on another engine",
            TTL_MS + 15_000,
            async () => {
              const g = await rest[0].call("GET", `/api/v1/runs/${runId}`);
              return g.body.status === "completed" ? g.body : undefined;
            },
          );
          assertEquals(done.result, { outcome: "success", result: 4 });
          assert(done.owner.engineId !== owner.engineId);
          assertEquals(done.owner.leaseEpoch, 2, "taken over once");
          await withClient(db, async (sql) => {
            const [ev] = await sql`
              SELECT at FROM run_events WHERE run_id = ${runId} AND type = 'run_resumed'`;
            const took = (ev.at as Date).getTime() - killedAt;
            assert(took < TTL_MS + 5000, `taken over ${took} ms after the kill`);
          });
          const lines = (await journal(dir)).filter((l) => l[1] === runId && l[0] === "start");
          const starts = (step: string) => lines.filter((l) => l[2] === step).map((l) => l[3]);
          assertEquals(starts("a"), ["1"], "a was committed: it ran once");
          assertEquals(starts("b"), ["1", "2"], "b was in flight: it ran again, attempt 2");
          assertEquals(starts("c"), ["1"]);
          // the killed engine is listed, not alive (its row goes after ten lease lengths)
          const listed = await rest[0].call("GET", "/api/v1/engines");
          const dead = listed.body.engines.find((e: { pid: number }) => e.pid === victim.pid);
          assertEquals(dead?.alive, false);
        } finally {
          await stopAll(es);
        }
      });
    });
  },
);

pgTest(
  "an owner stopped (SIGSTOP) past its lease loses the run: another engine finishes it, and after SIGCONT its late writes are refused",
  async (server) => {
    await withPgDatabase(server, async (db) => {
      await withTempDir(async (dir) => {
        const es = await engines(dir, db, 2);
        try {
          const flowId = await storeFlow(es[0], chain(800));
          const r = await es[1].call("POST", "/api/v1/runs", {
            flowId,
            input: { n: 10 },
            wait: false,
          });
          const runId = r.body.runId;
          await until(
            "b in flight",
            20_000,
            async () =>
              (await journal(dir)).some((l) => l[0] === "start" && l[1] === runId && l[2] === "b")
                ? true
                : undefined,
          );
          const owner = (await es[0].call("GET", `/api/v1/runs/${runId}`)).body.owner;
          const stalled = es.find((e) => e.pid === owner.pid)!;
          const other = es.find((e) => e !== stalled)!;
          Deno.kill(stalled.pid, "SIGSTOP");
          let done;
          try {
            done = await until("taken over and completed", TTL_MS + 15_000, async () => {
              const g = await other.call("GET", `/api/v1/runs/${runId}`);
              return g.body.status === "completed" ? g.body : undefined;
            });
          } finally {
            Deno.kill(stalled.pid, "SIGCONT");
          }
          assertEquals(done.result, { outcome: "success", result: 13 });
          assert(done.owner.leaseEpoch >= 2, JSON.stringify(done.owner));
          // the stalled engine wakes up with b's answer of attempt 1: its write is refused
          await until("the stalled engine noticed", 10_000, () =>
            Promise.resolve(
              /lost the lease of 1 run\(s\) to another engine/.test(stalled.stderr())
                ? true
                : undefined,
            )).catch((e) => {
              throw new Error(`${e.message}; its stderr:\n${stalled.stderr()}`);
            });
          await new Promise((r) => setTimeout(r, 300));
          await withClient(db, async (sql) => {
            const ev = await sql`
              SELECT type, step_id, attempt FROM run_events WHERE run_id = ${runId} ORDER BY id`;
            const resumed = ev.findIndex((e) => e.type === "run_resumed");
            assert(resumed > 0);
            const late = ev.slice(resumed).filter((e) => e.step_id === "b" && e.attempt === 1);
            assertEquals(late, [], "no write of the stalled engine after the takeover");
            const [run] =
              await sql`SELECT status, owner_id, result_json FROM runs WHERE id = ${runId}`;
            assertEquals([run.status, run.owner_id], ["completed", done.owner.engineId]);
          });
          // the stalled engine goes on serving
          const again = await stalled.call("POST", "/api/v1/runs", { flowId, input: { n: 0 } });
          assertEquals(again.body.result, { outcome: "success", result: 3 });
        } finally {
          await stopAll(es);
        }
      });
    });
  },
);

pgTest(
  "every engine killed while a run is in flight: one engine started again takes the run over and finishes it",
  async (server) => {
    await withPgDatabase(server, async (db) => {
      await withTempDir(async (dir) => {
        const es = await engines(dir, db, 2);
        try {
          const flowId = await storeFlow(es[0], chain(1500));
          const r = await es[0].call("POST", "/api/v1/runs", {
            flowId,
            input: { n: 100 },
            wait: false,
          });
          const runId = r.body.runId;
          await until(
            "b in flight",
            20_000,
            async () =>
              (await journal(dir)).some((l) => l[0] === "start" && l[1] === runId && l[2] === "b")
                ? true
                : undefined,
          );
          for (const e of es) Deno.kill(e.pid, "SIGKILL");
          await Promise.all(es.map((e) => e.stop(null)));
          const fresh = (await engines(dir, db, 1))[0];
          es.push(fresh);
          const done = await until("finished by the new engine", TTL_MS + 15_000, async () => {
            const g = await fresh.call("GET", `/api/v1/runs/${runId}`);
            return g.body.status === "completed" ? g.body : undefined;
          });
          assertEquals(done.result, { outcome: "success", result: 103 });
          const lines = (await journal(dir)).filter((l) => l[1] === runId && l[0] === "start");
          assertEquals(lines.filter((l) => l[2] === "a").length, 1, "a was committed: it ran once");
          assertEquals(lines.filter((l) => l[2] === "c").length, 1);
        } finally {
          await stopAll(es);
        }
      });
    });
  },
);

pgTest(
  "cancel on any engine (a queued run in the database, a running one by its engine); a graceful stop releases the runs still executing to the other engine",
  async (server) => {
    await withPgDatabase(server, async (db) => {
      await withTempDir(async (dir) => {
        // one slot per engine: the third run waits in the queue
        const es = await engines(dir, db, 2, ["--max-concurrent-runs", "1"]);
        try {
          const flowId = await storeFlow(es[0], chain(20_000));
          const ids: string[] = [];
          for (let i = 0; i < 3; i++) {
            const r = await es[0].call("POST", "/api/v1/runs", {
              flowId,
              input: { n: i },
              wait: false,
            });
            ids.push(r.body.runId);
          }
          const running = await until("two runs running", 20_000, async () => {
            const got = await Promise.all(
              ids.map(async (id) => (await es[0].call("GET", `/api/v1/runs/${id}`)).body),
            );
            const r = got.filter((g) => g.status === "running");
            return r.length === 2 && got.some((g) => g.status === "queued") ? got : undefined;
          });
          const queued = running.find((g) => g.status === "queued");
          const c1 = await es[1].call("POST", `/api/v1/runs/${queued.runId}/cancel`);
          assertEquals([c1.status, c1.body.status], [200, "cancelled"], JSON.stringify(c1.body));
          // a running run, cancelled through the engine that does not execute it
          for (const g of running.filter((x) => x.status === "running")) {
            const other = es.find((e) => e.pid !== g.owner.pid)!;
            const c = await other.call("POST", `/api/v1/runs/${g.runId}/cancel`);
            assertEquals([c.status, c.body.status], [200, "cancelled"], JSON.stringify(c.body));
          }
          for (const id of ids) {
            const g = await es[1].call("GET", `/api/v1/runs/${id}`);
            assertEquals(g.body.status, "cancelled");
          }
          // a graceful stop (SIGTERM) releases the runs still executing: the other engine
          // continues them
          const flowId2 = await storeFlow(es[0], chain(1500));
          const r = await es[0].call("POST", "/api/v1/runs", {
            flowId: flowId2,
            input: { n: 5 },
            wait: false,
          });
          const runId = r.body.runId;
          await until(
            "b in flight",
            20_000,
            async () =>
              (await journal(dir)).some((l) => l[0] === "start" && l[1] === runId && l[2] === "b")
                ? true
                : undefined,
          );
          const owner = (await es[0].call("GET", `/api/v1/runs/${runId}`)).body.owner;
          const leaving = es.find((e) => e.pid === owner.pid)!;
          const staying = es.find((e) => e !== leaving)!;
          assertEquals(await leaving.stop("SIGTERM"), 0);
          assert(
            /1 released to the other engines/.test(leaving.stderr()),
            leaving.stderr(),
          );
          const done = await until("continued by the other engine", 15_000, async () => {
            const g = await staying.call("GET", `/api/v1/runs/${runId}`);
            return g.body.status === "completed" ? g.body : undefined;
          });
          assertEquals(done.result, { outcome: "success", result: 8 });
          assertEquals(done.owner.pid, staying.pid);
          const lines = (await journal(dir)).filter((l) => l[1] === runId && l[0] === "start");
          assertEquals(lines.filter((l) => l[2] === "a").length, 1, "a was committed: it ran once");
          // the engine that left is no longer registered
          const list = await staying.call("GET", "/api/v1/engines");
          assertEquals(list.body.engines.map((e: { pid: number }) => e.pid), [staying.pid]);
        } finally {
          await stopAll(es);
        }
      });
    });
  },
);

pgTest(
  "a map released at a graceful stop: the other engine resumes it, its finished items are not run again",
  async (server) => {
    await withPgDatabase(server, async (db) => {
      await withTempDir(async (dir) => {
        const es = await engines(dir, db, 2);
        try {
          const flowId = await storeFlow(es[0], {
            schema: SCHEMA,
            name: "fan",
            steps: [{
              id: "each",
              component: "/builtin/map",
              input: {
                items: { $from: { workflow: "input" }, path: "items" },
                max_concurrency: 2,
                workflow: {
                  $literal: {
                    schema: SCHEMA,
                    name: "item",
                    steps: [{
                      id: "s",
                      component: "/svc/step",
                      input: { value: { $from: { workflow: "input" } }, delay_ms: 1000 },
                    }],
                    output: { $from: { step: "s" }, path: "$.value" },
                  },
                },
              },
            }],
            output: { $from: { step: "each" }, path: "successful" },
          });
          const r = await es[0].call("POST", "/api/v1/runs", {
            flowId,
            input: { items: [1, 2, 3, 4, 5, 6] },
            wait: false,
          });
          const runId = r.body.runId;
          // the second pair of items is in flight
          await until(
            "items 3 and 4 in flight",
            20_000,
            async () =>
              (await journal(dir)).filter((l) => l[0] === "start").length >= 3 ? true : undefined,
          );
          const owner = (await es[0].call("GET", `/api/v1/runs/${runId}`)).body.owner;
          const leaving = es.find((e) => e.pid === owner.pid)!;
          const staying = es.find((e) => e !== leaving)!;
          assertEquals(await leaving.stop("SIGTERM"), 0);
          const done = await until("resumed by the other engine", 20_000, async () => {
            const g = await staying.call("GET", `/api/v1/runs/${runId}`);
            return g.body.status === "completed" ? g.body : undefined;
          });
          assertEquals(done.result, { outcome: "success", result: 6 });
          assertEquals(done.owner.pid, staying.pid);
          // each item ran once, but those in flight at the stop (twice at most: attempt 2)
          const starts = (await journal(dir)).filter((l) => l[0] === "start");
          const perItem = new Map<string, string[]>();
          for (const l of starts) perItem.set(l[1], [...(perItem.get(l[1]) ?? []), l[3]]);
          assertEquals(perItem.size, 6);
          const twice = [...perItem.values()].filter((a) => a.length > 1);
          assert(twice.length <= 2, JSON.stringify([...perItem]));
          for (const a of twice) assertEquals(a, ["1", "2"]);
        } finally {
          await stopAll(es);
        }
      });
    });
  },
);

pgTest(
  "debug mode in a cluster: the run stays on the engine holding its gate, debug requests to another engine are forwarded to it, and after it dies the run is taken over under a gate",
  async (server) => {
    await withPgDatabase(server, async (db) => {
      await withTempDir(async (dir) => {
        const es = await engines(dir, db, 2, [], false);
        try {
          const flowId = await storeFlow(es[0], {
            schema: SCHEMA,
            name: "diamond",
            steps: [
              { id: "a", component: "/builtin/create_messages", input: { user_prompt: "a" } },
              { id: "b", component: "/builtin/create_messages", input: { user_prompt: "b" } },
              {
                id: "c",
                component: "/builtin/put_blob",
                input: {
                  data: { a: { $from: { step: "a" } }, b: { $from: { step: "b" } } },
                  blob_type: "data",
                },
              },
            ],
            output: { $from: { step: "c" }, path: "$.blob_id" },
          });
          const created = await es[0].call("POST", "/api/v1/runs", {
            flowId,
            input: {},
            debug: true,
          });
          assertEquals(created.body.status, "paused");
          const runId = created.body.runId;
          const path = `/api/v1/runs/${runId}`;
          // pinned to the engine that holds its gate, and stored in debug mode
          const details = await until("paused", 10_000, async () => {
            const d = (await es[1].call("GET", path)).body;
            return d.status === "paused" ? d : undefined;
          });
          assertEquals([details.debugMode, details.owner.pid], [true, es[0].pid]);
          // the other engine forwards the debug requests to it
          assertEquals((await es[1].call("GET", `${path}/debug/runnable`)).body, {
            runnableSteps: ["a", "b"],
          });
          const a = await es[1].call("POST", `${path}/debug/step`, { stepIds: ["a"] });
          assertEquals([a.status, a.body.results.a.outcome], [200, "success"], JSON.stringify(a));
          assertEquals((await es[1].call("GET", `${path}/debug/runnable`)).body, {
            runnableSteps: ["b"],
          });
          // its engine dies: the other takes the run over when the lease expires, held again
          await es[0].stop("SIGKILL");
          await until("taken over", 20_000, async () => {
            const d = (await es[1].call("GET", path)).body;
            return d.owner?.pid === es[1].pid ? true : undefined;
          });
          // a's committed result is kept; b is held at the new engine's gate
          const held = await until("b held", 10_000, async () => {
            const r = await es[1].call("GET", `${path}/debug/runnable`);
            return r.status === 200 && r.body.runnableSteps.length > 0 ? r.body : undefined;
          });
          assertEquals(held, { runnableSteps: ["b"] });
          await until(
            "paused",
            10_000,
            async () => (await es[1].call("GET", path)).body.status === "paused" ? true : undefined,
          );
          const done = await es[1].call("POST", `${path}/debug/continue`);
          assertEquals(
            [done.status, done.body.status, done.body.result?.outcome, done.body.debug],
            [200, "completed", "success", true],
            JSON.stringify(done.body),
          );
        } finally {
          await stopAll(es);
        }
      });
    });
  },
);
