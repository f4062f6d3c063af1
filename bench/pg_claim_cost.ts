/**
 * What one `claimRuns` costs on the PostgreSQL store (issue 14; wave 10: batches' maxConcurrency
 * counted in the claim). Not a test: a measurement to compare before and after a change.
 *
 *   deno run -A bench/pg_claim_cost.ts [--pg postgres://...] [--queued 5000] [--reps 400]
 *
 * The server is `--pg` or `STEPFLOW_TEST_PG_URL` (a role that may create databases; a fresh
 * database, dropped afterwards). Cases, each timed as the mean of `--reps` calls after 50 warm-up
 * calls (one store, one engine):
 * - `empty`: nothing to claim (an idle engine's poll: the most frequent claim);
 * - `plain`: claim 32 of `--queued` queued runs of no batch (the claimed runs are finished in
 *   bulk, outside the timing, so the queue stays as long);
 * - `plain+full batch`: as `plain`, with a batch of 2,000 queued runs (`maxConcurrency` 3) at its
 *   limit queued before them: the claim skips the batch's runs;
 * - `batch`: claim up to 32 from a batch of `--queued` runs with `maxConcurrency` 32 (its runs
 *   finished outside the timing, as in `plain`).
 * @module
 */
import postgres from "postgres";
import type { PostgresStateStore } from "../src/state/postgres.ts";
import type { ClaimedRun } from "../src/state/store.ts";

const args = Deno.args;
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const queued = Number(opt("--queued") ?? 5000);
const reps = Number(opt("--reps") ?? 400);
const server = opt("--pg") ?? Deno.env.get("STEPFLOW_TEST_PG_URL");
if (server === undefined) {
  console.error("set STEPFLOW_TEST_PG_URL or give --pg postgres://...");
  Deno.exit(2);
}
const FLOW = "f".repeat(64);
const hasBatchLimits = await import("../src/state/postgres_schema.ts").then((m) =>
  m.PG_MIGRATIONS.some((x) => x.name === "0005_batch_claims")
);

const name = `stepflow_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
const admin = postgres(server, { max: 1, onnotice: () => {} });
await admin.unsafe(`CREATE DATABASE ${name}`);
const u = new URL(server);
u.pathname = `/${name}`;
const url = u.toString();
const { PostgresStateStore: Store } = await import("../src/state/postgres.ts");
const store: PostgresStateStore = await Store.open(url, {});
const sql = postgres(url, { max: 2, onnotice: () => {} });

let seq = 0;
function queue(n: number, batch?: { id: string; max: number }): void {
  if (batch) {
    store.createBatch({
      batchId: batch.id,
      flowId: FLOW,
      totalInputs: n,
      status: "running",
      createdAt: new Date().toISOString(),
      maxConcurrency: batch.max,
    });
  }
  const at = new Date().toISOString();
  for (let i = 0; i < n; i++) {
    const id = `r${String(seq++).padStart(8, "0")}`;
    const input = batch ? batch.id : i;
    store.createRun({ runId: id, flowId: FLOW, status: "queued", input, createdAt: at });
    if (batch) store.addBatchRun(batch.id, id, i);
  }
}

async function time(
  what: string,
  limit: number,
  refill: (claimed: ClaimedRun[]) => Promise<void>,
): Promise<void> {
  const ms: number[] = [];
  let got = 0;
  for (let i = 0; i < 50 + reps; i++) {
    const t = performance.now();
    const c = await store.claimRuns({ limit });
    const d = performance.now() - t;
    if (i >= 50) {
      ms.push(d);
      got += c.length;
    }
    if (c.length > 0) await refill(c);
  }
  ms.sort((a, b) => a - b);
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  console.log(
    `${what.padEnd(18)} mean ${mean.toFixed(3)} ms  p50 ${ms[ms.length >> 1].toFixed(3)} ms  ` +
      `p90 ${ms[Math.floor(ms.length * 0.9)].toFixed(3)} ms  runs/claim ${(got / reps).toFixed(1)}`,
  );
}

/** Finishes the runs claimed (outside the timing) and queues as many again. */
async function finishAndRequeue(claimed: ClaimedRun[], batch?: { id: string }): Promise<void> {
  const ok = { outcome: "success" as const, result: null };
  for (const c of claimed) store.completeRun(c.run.runId, "completed", ok);
  const at = new Date().toISOString();
  for (let i = 0; i < claimed.length; i++) {
    const id = `r${String(seq++).padStart(8, "0")}`;
    store.createRun({ runId: id, flowId: FLOW, status: "queued", input: i, createdAt: at });
    if (batch) store.addBatchRun(batch.id, id, i);
  }
  await store.flush();
}

try {
  console.log(
    `claim cost (${hasBatchLimits ? "batch limits counted" : "before: no batch limits"}), ` +
      `${queued} queued, ${reps} claims per case`,
  );
  await time("empty", 32, () => Promise.resolve());
  queue(queued);
  await store.flush();
  await sql`ANALYZE runs`;
  await time("plain", 32, (c) => finishAndRequeue(c));
  // a batch at its limit, queued first (older than the plain runs)
  await sql`DELETE FROM runs`;
  await sql`DELETE FROM run_events`;
  const full = { id: "full-batch", max: 3 };
  queue(2000, full);
  queue(queued);
  await store.flush();
  await sql`ANALYZE runs`;
  // the batch's runs claimed are left running (the batch stays at its limit)
  await time(
    "plain+full batch",
    32,
    (c) => finishAndRequeue(c.filter((x) => x.run.input !== full.id)),
  );
  await sql`DELETE FROM runs`;
  await sql`DELETE FROM batch_runs`;
  const big = { id: "big-batch", max: 32 };
  queue(queued, big);
  await store.flush();
  await sql`ANALYZE runs`;
  await time("batch", 32, (c) => finishAndRequeue(c, big));
} finally {
  await store.close();
  await sql.end({ timeout: 1 });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end({ timeout: 1 });
}
