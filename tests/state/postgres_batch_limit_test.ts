/**
 * A batch's `maxConcurrency` across the engines of a PostgreSQL cluster (wave 10): every engine
 * claims queued runs (`claimRuns`), and the runs of one batch in flight — claimed and not finished,
 * counted in the database — never exceed the batch's limit, whichever engines claim them and
 * however their claims interleave. Before, each engine claimed the batch's runs on its own (a
 * batch with maxConcurrency 3 had all 20 of its runs running on three engines at once). A batch at
 * its limit does not hold back other batches or runs of no batch; runs taken over after their
 * engine's lease expired count once.
 *
 * Each test has a database of its own (tests/_postgres.ts); without STEPFLOW_TEST_PG_URL they are
 * skipped, and this file says so in one line.
 * @module
 */
import { assert, assertEquals, assertStrictEquals } from "../_assert.ts";
import {
  PG_REQUIRED,
  PG_SKIPPED,
  PG_URL,
  pgTest,
  withClient,
  withPgDatabase,
} from "../_postgres.ts";
import type { PostgresOpenOptions, PostgresStateStore } from "../../src/state/postgres.ts";
import type { BatchRecord, ClaimedRun, RunRecord } from "../../src/state/store.ts";

if (PG_URL === undefined && !PG_REQUIRED) {
  Deno.test({ name: PG_SKIPPED.replace("store", "batch limit"), ignore: true, fn() {} });
}

async function open(url: string, options?: PostgresOpenOptions): Promise<PostgresStateStore> {
  const { PostgresStateStore } = await import("../../src/state/postgres.ts");
  return await PostgresStateStore.open(url, options);
}

/** Opens `n` stores (engines, each its own engine id) on `url`, runs `fn`, closes them. */
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

const FLOW = "f".repeat(64);
const ok = { outcome: "success" as const, result: null };
let clock = Date.parse("2024-01-01T00:00:00.000Z");

/** A queued run, created after every run made before it. */
function queued(id: string): RunRecord {
  return {
    runId: id,
    flowId: FLOW,
    status: "queued",
    input: id,
    createdAt: new Date(clock++).toISOString(),
  };
}

/** Queues batch `batchId` of `n` runs (`<batchId>-<i>`) in one commit, as POST /batches does. */
function queueBatch(
  s: PostgresStateStore,
  batchId: string,
  n: number,
  maxConcurrency?: number,
): string[] {
  const record: BatchRecord = {
    batchId,
    flowId: FLOW,
    totalInputs: n,
    status: "running",
    createdAt: new Date(clock).toISOString(),
  };
  if (maxConcurrency !== undefined) record.maxConcurrency = maxConcurrency;
  const ids: string[] = [];
  s.atomic!(() => {
    s.createBatch(record);
    for (let i = 0; i < n; i++) {
      const id = `${batchId}-${String(i).padStart(3, "0")}`;
      s.createRun(queued(id));
      s.addBatchRun(batchId, id, i);
      ids.push(id);
    }
  });
  return ids;
}

/** The batch's runs running or paused now, counted in the database (through `batch_runs`). */
async function inFlight(url: string, batchId: string): Promise<number> {
  return await withClient(url, async (sql) => {
    const [r] = await sql`
      SELECT count(*)::int AS n FROM runs r JOIN batch_runs b ON b.run_id = r.id
      WHERE b.batch_id = ${batchId} AND r.status IN ('running', 'paused')`;
    return r.n as number;
  });
}

const ids = (cs: ClaimedRun[]) => cs.map((c) => c.run.runId).sort();

pgTest(
  "a batch of 20 runs with maxConcurrency 3, three engines claiming at once: never more than 3 in flight (sampled from the database), all 20 finish, each claimed once",
  (server) =>
    withPgDatabase(server, async (url) => {
      await withStores(url, 3, { maxConnections: 3 }, async (stores) => {
        const all = queueBatch(stores[0], "b", 20, 3);
        await stores[0].flush();
        const claimedBy = new Map<string, string>();
        /** Runs claimed and not finished yet (their "steps" block until the test releases them). */
        const held: { store: PostgresStateStore; runId: string }[] = [];
        let finished = 0;
        let most = 0;
        let samples = 0;
        let stop = false;
        const deadline = Date.now() + 60_000;
        const errors: unknown[] = [];
        // the database's count, sampled over and over while engines claim and runs finish
        const sampler = withClient(url, async (sql) => {
          while (!stop) {
            const [r] = await sql`
              SELECT count(*)::int AS n FROM runs r JOIN batch_runs b ON b.run_id = r.id
              WHERE b.batch_id = 'b' AND r.status IN ('running', 'paused')`;
            samples++;
            most = Math.max(most, r.n);
            if (r.n > 3) errors.push(new Error(`${r.n} runs of the batch in flight (limit 3)`));
          }
        });
        // each engine claims in a loop (several claims of one engine in flight at once too)
        const claimer = async (s: PostgresStateStore) => {
          while (!stop && Date.now() < deadline) {
            const got = await Promise.all([s.claimRuns({ limit: 5 }), s.claimRuns({ limit: 2 })]);
            for (const c of got.flat()) {
              if (claimedBy.has(c.run.runId)) {
                errors.push(new Error(`run ${c.run.runId} claimed twice`));
              }
              claimedBy.set(c.run.runId, s.engineId);
              held.push({ store: s, runId: c.run.runId });
            }
            await new Promise((r) => setTimeout(r, 2));
          }
        };
        // the "steps": a held run is released (finished by its engine) now and then
        const releaser = async () => {
          while (finished < all.length && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 15));
            const k = held.length === 0 ? -1 : Math.floor(Math.random() * held.length);
            if (k < 0) continue;
            const [h] = held.splice(k, 1);
            await h.store.completeRun(h.runId, "completed", ok);
            finished++;
          }
          stop = true;
        };
        await Promise.all([releaser(), ...stores.map(claimer)]);
        stop = true;
        await sampler;
        if (errors.length > 0) throw errors[0];
        assertStrictEquals(finished, 20, "all 20 runs finished");
        assertEquals([...claimedBy.keys()].sort(), all);
        assert(samples > 20, `sampled the database ${samples} times`);
        assertStrictEquals(most, 3, "the limit was used, not exceeded");
        const runs = await stores[1].getRuns!(all);
        assert(runs.every((r) => r.status === "completed"));
        // spread over the engines (each claimed a share: the limit is the batch's, not one engine's)
        assert(new Set(claimedBy.values()).size >= 2, "claimed by more than one engine");
      });
    }),
);

pgTest(
  "a batch at its limit does not hold back the others: another batch's runs and runs of no batch are claimed, oldest first within each limit",
  (server) =>
    withPgDatabase(server, async (url) => {
      await withStores(url, 2, {}, async ([a, b]) => {
        const full = queueBatch(a, "b1-full", 10, 2); // oldest: queued first
        const other = queueBatch(a, "b2-other", 5, 1);
        const free = queueBatch(a, "b3-free", 3); // no maxConcurrency: as runs of no batch
        const plain = ["p1", "p2", "p3", "p4"];
        for (const id of plain) a.createRun(queued(id));
        await a.flush();
        // one claim: two of the first batch, one of the second, every other queued run
        const first = await a.claimRuns({ limit: 32 });
        assertEquals(ids(first), [...full.slice(0, 2), other[0], ...free, ...plain].sort());
        assertEquals(first.map((c) => c.resumed), first.map(() => false));
        // both batches are at their limit: another engine claims nothing
        assertEquals(await b.claimRuns({ limit: 32 }), []);
        // a run of no batch queued now is claimed at once, past the batches' queued runs
        b.createRun(queued("p5"));
        await b.flush();
        assertEquals(ids(await b.claimRuns({ limit: 32 })), ["p5"]);
        // one run of the first batch finishes: one slot, taken by the oldest queued run (by b)
        await a.completeRun(full[0], "completed", ok);
        assertEquals(ids(await b.claimRuns({ limit: 32 })), [full[2]]);
        assertEquals(await a.claimRuns({ limit: 32 }), []);
        assertStrictEquals(await inFlight(url, "b1-full"), 2);
        assertStrictEquals(await inFlight(url, "b2-other"), 1);
        // a limit smaller than the free slots: oldest first, the rest on the next claim
        await b.completeRun(full[2], "completed", ok);
        await a.completeRun(full[1], "completed", ok);
        assertEquals(ids(await a.claimRuns({ limit: 1 })), [full[3]]);
        assertEquals(ids(await b.claimRuns({ limit: 1 })), [full[4]]);
        assertEquals(await b.claimRuns({ limit: 1 }), []);
        // a paused run keeps its slot (it is not finished)
        a.setRunStatus(other[0], "paused");
        await a.flush();
        assertEquals(await b.claimRuns({ limit: 32 }), []);
        await a.completeRun(other[0], "completed", ok);
        assertEquals(ids(await b.claimRuns({ limit: 32 })), [other[1]]);
      });
    }),
);

pgTest(
  "runs taken over after their engine's lease expired count once: the engine taking them over claims no new run of the batch beyond its limit",
  (server) =>
    withPgDatabase(server, async (url) => {
      const slow = { leaseTtlMs: 60_000, heartbeatMs: 3_600_000 };
      await withStores(url, 2, slow, async ([a, b]) => {
        const runs = queueBatch(a, "b", 6, 2);
        await a.flush();
        assertEquals(ids(await a.claimRuns({ limit: 10 })), runs.slice(0, 2));
        // a stops beating: its leases run out (moved back on the database clock)
        await withClient(
          url,
          (sql) =>
            sql`UPDATE runs SET lease_expires_at = now() - interval '1 second'
                WHERE owner_id = ${a.engineId}`,
        );
        // b takes both over (resumed), and starts no queued run of the batch: 2 are in flight
        const taken = await b.claimRuns({ limit: 10 });
        assertEquals(taken.map((c) => [c.run.runId, c.resumed]), [
          [runs[0], true],
          [runs[1], true],
        ]);
        assertEquals(await b.claimRuns({ limit: 10 }), []);
        assertStrictEquals(await inFlight(url, "b"), 2);
        // one of them finishes on b: one slot
        await b.completeRun(runs[0], "completed", ok);
        assertEquals(ids(await b.claimRuns({ limit: 10 })), [runs[2]]);
        assertEquals(await b.claimRuns({ limit: 10 }), []);
      });
    }),
);

pgTest(
  "an engine closing frees the slots of the batch's runs it fails (interrupted); a released run keeps its slot until taken over and finished",
  (server) =>
    withPgDatabase(server, async (url) => {
      const a = await open(url, {});
      await withStores(url, 1, {}, async ([b]) => {
        try {
          const runs = queueBatch(b, "b", 5, 2);
          await b.flush();
          assertEquals(ids(await a.claimRuns({ limit: 1 })), [runs[0]]);
          assertEquals(ids(await b.claimRuns({ limit: 10 })), [runs[1]]);
          // b releases its run (a graceful stop): still in flight, taken over by a
          assertEquals(await b.releaseRuns([runs[1]]), [runs[1]]);
          const taken = await a.claimRuns({ limit: 10 });
          assertEquals(taken.map((c) => [c.run.runId, c.resumed]), [[runs[1], true]]);
          assertStrictEquals(await inFlight(url, "b"), 2);
        } finally {
          // a closes with both runs unfinished: they end failed (interrupted), freeing both slots
          await a.close();
        }
        assertStrictEquals(await inFlight(url, "b"), 0);
        assertEquals(ids(await b.claimRuns({ limit: 10 })), batchRuns(2, 4));
      });
    }),
);

/** Run ids `b-<from>` .. `b-<to - 1>` of batch `b`. */
function batchRuns(from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`b-${String(i).padStart(3, "0")}`);
  return out;
}
