/**
 * The PostgreSQL store's write queue (src/state/postgres.ts): writes are pushed as flat entries
 * (`[tag, lease, ...fields]`, a fixed length per tag: no object per write on the hot path), and
 * one commit's entries are sorted into per-table rows ({@linkcode buildBatch}), rows of the same
 * key merged as the database would merge them. src/state/postgres_commit.ts sends them.
 * @module
 */
import type { BatchRecord } from "./store.ts";

// Tags of the flat write queue; each entry is [tag, lease, ...] with a fixed length per tag.
export const BLOB = 0; // [BLOB, null, id, text, type, at]
export const CREATE = 1; // [CREATE, lease, row]
export const START = 2; // [START, lease, runId, index, stepId, component, attempt, at]
export const RESULT = 3; // [RESULT, lease, runId, index, stepId, json, status, event, data, component, attempt, ms, at]
export const COMPLETE = 4; // [COMPLETE, lease, runId, status, resultText, at, data]
export const STATUS = 5; // [STATUS, lease, runId, status, event, data, at]
export const BATCH = 6; // [BATCH, null, batch]
export const BATCH_RUN = 7; // [BATCH_RUN, null, batchId, runId, index]
export const ENGINE = 8; // [ENGINE, null, url]
export const LENGTH = [6, 3, 8, 13, 7, 7, 3, 5, 3];

/** Entries in the queue before a commit is asked for within the turn. */
export const MAX_QUEUE_LENGTH = 16_000;

/** A run row waiting to be inserted. */
export interface CreateRow {
  id: string;
  flowId: string;
  flowName: string | null;
  status: string;
  input: string;
  result: string | null;
  createdAt: string;
  completedAt: string | null;
  overrides: string | null;
  parent: string | null;
  root: string | null;
  runKey: string | null;
  variables: string | null;
  owner: string | null;
  epoch: number;
  /** Whether the run gets a lease (`lease_expires_at`): a started top-level run. */
  leased: boolean;
  startedAt: string | null;
  updatedAt: string;
  /** `runs.debug_mode` (stepflow 0.8). */
  debug: boolean;
  /** `runs.options_json` (`StoredRunOptions`). */
  options: string | null;
  /**
   * `runs.limited_batch_id`: the batch whose `maxConcurrency` the run counts against (set by
   * {@linkcode buildBatch} when the batch's record and the run's link are in the same commit).
   */
  limitedBatch?: string;
}

/** One commit's rows, per table, as columns (sent as JSON documents). */
export class Batch {
  fenceIds: string[] = [];
  fenceEpochs: (number | null)[] = [];
  blobIds: string[] = [];
  blobData: string[] = [];
  blobTypes: string[] = [];
  blobAt: string[] = [];
  creates: CreateRow[] = [];
  createById = new Map<string, CreateRow>();
  updates = new Map<
    string,
    { status: string; result: string | null; completedAt: string | null; at: string }
  >();
  res: [string[], number[], string[], string[], string[]] = [[], [], [], [], []];
  resAt = new Map<string, number>();
  info: [
    string[],
    number[],
    string[],
    string[],
    string[],
    string[],
    string[],
    number[],
    (number | null)[],
  ] = [[], [], [], [], [], [], [], [], []];
  infoAt = new Map<string, number>();
  ev: [
    string[],
    (string | null)[],
    string[],
    (number | null)[],
    (string | null)[],
    (number | null)[],
    (string | null)[],
    string[],
  ] = [[], [], [], [], [], [], [], []];
  batches: BatchRecord[] = [];
  batchRuns: [string[], string[], number[]] = [[], [], []];
  engine = false;
  engineUrl: string | null = null;
  notify = false;
}

/**
 * Sorts the queue's entries into per-table rows (coalescing rows of the same key). `newLeases`:
 * leases whose run rows this commit creates (not fenced); `held`: the epochs of the leases this
 * engine holds; `open`: the roots of the runs this engine writes.
 */
export function buildBatch(
  q: unknown[],
  newLeases: Set<string>,
  held: ReadonlyMap<string, number>,
  open: ReadonlyMap<string, { root: string | null }>,
): Batch {
  const b = new Batch();
  const fenced = new Set<string>();
  const event = (
    runId: string,
    type: string,
    index: number | null,
    stepId: string | null,
    attempt: number | null,
    data: string | null,
    at: string,
  ) => {
    const ev = b.ev;
    ev[0].push(runId);
    ev[1].push(open.get(runId)?.root ?? null);
    ev[2].push(type);
    ev[3].push(index);
    ev[4].push(stepId);
    ev[5].push(attempt);
    ev[6].push(data);
    ev[7].push(at);
  };
  const info = (
    runId: string,
    index: number,
    stepId: string,
    component: string,
    status: string,
    at: string,
    attempt: number,
    ms: number | null,
  ) => {
    const key = `${runId}\u0000${index}`;
    const f = b.info;
    const i = b.infoAt.get(key);
    if (i === undefined) {
      b.infoAt.set(key, f[0].length);
      f[0].push(runId);
      f[1].push(index);
      f[2].push(stepId);
      f[3].push(component);
      f[4].push(status);
      f[5].push(at);
      f[6].push(at);
      f[7].push(attempt);
      f[8].push(ms);
      return;
    }
    // the same step twice in one commit: merged as the database would merge them
    f[2][i] = stepId;
    if (component !== "") f[3][i] = component;
    f[4][i] = status;
    f[6][i] = at;
    f[7][i] = status === "running" ? attempt : Math.max(f[7][i], attempt);
    f[8][i] = ms;
  };
  for (let i = 0; i < q.length; i += LENGTH[q[i] as number]) {
    const tag = q[i] as number;
    const lease = q[i + 1] as string | null;
    if (lease !== null && !newLeases.has(lease) && !fenced.has(lease)) {
      fenced.add(lease);
      b.fenceIds.push(lease);
      b.fenceEpochs.push(held.get(lease) ?? null);
    }
    switch (tag) {
      case BLOB: {
        b.blobIds.push(q[i + 2] as string);
        b.blobData.push(q[i + 3] as string);
        b.blobTypes.push(q[i + 4] as string);
        b.blobAt.push(q[i + 5] as string);
        break;
      }
      case CREATE: {
        const row = q[i + 2] as CreateRow;
        const prev = b.createById.get(row.id);
        if (prev) b.creates[b.creates.indexOf(prev)] = row;
        else b.creates.push(row);
        b.createById.set(row.id, row);
        b.updates.delete(row.id);
        if (row.status === "queued") b.notify = true;
        event(
          row.id,
          row.status === "queued" ? "run_queued" : "run_started",
          null,
          null,
          null,
          null,
          row.updatedAt,
        );
        break;
      }
      case START: {
        const runId = q[i + 2] as string;
        const index = q[i + 3] as number;
        const stepId = q[i + 4] as string;
        const attempt = q[i + 6] as number;
        const at = q[i + 7] as string;
        info(runId, index, stepId, q[i + 5] as string, "running", at, attempt, null);
        event(runId, "step_started", index, stepId, attempt, null, at);
        break;
      }
      case RESULT: {
        const runId = q[i + 2] as string;
        const index = q[i + 3] as number;
        const stepId = q[i + 4] as string;
        const attempt = q[i + 10] as number | null;
        const at = q[i + 12] as string;
        const key = `${runId}\u0000${index}`;
        const r = b.res;
        const k = b.resAt.get(key);
        if (k === undefined) {
          b.resAt.set(key, r[0].length);
          r[0].push(runId);
          r[1].push(index);
          r[2].push(stepId);
          r[3].push(q[i + 5] as string);
          r[4].push(at);
        } else {
          r[2][k] = stepId;
          r[3][k] = q[i + 5] as string;
          r[4][k] = at;
        }
        info(
          runId,
          index,
          stepId,
          (q[i + 9] as string | null) ?? "",
          q[i + 6] as string,
          at,
          attempt ?? 1,
          q[i + 11] as number | null,
        );
        event(runId, q[i + 7] as string, index, stepId, attempt, q[i + 8] as string | null, at);
        break;
      }
      case COMPLETE: {
        const runId = q[i + 2] as string;
        const status = q[i + 3] as string;
        const result = q[i + 4] as string | null;
        const at = q[i + 5] as string;
        const c = b.createById.get(runId);
        if (c) {
          c.status = status;
          if (result !== null) c.result = result;
          c.completedAt = at;
          c.updatedAt = at;
        } else {
          const u = b.updates.get(runId);
          b.updates.set(runId, {
            status,
            result: result ?? u?.result ?? null,
            completedAt: at,
            at,
          });
        }
        event(runId, "run_completed", null, null, null, q[i + 6] as string, at);
        break;
      }
      case STATUS: {
        const runId = q[i + 2] as string;
        const status = q[i + 3] as string;
        const at = q[i + 6] as string;
        const c = b.createById.get(runId);
        if (c) {
          c.status = status;
          c.updatedAt = at;
        } else {
          const u = b.updates.get(runId);
          b.updates.set(runId, {
            status,
            result: u?.result ?? null,
            completedAt: u?.completedAt ?? null,
            at,
          });
        }
        const type = q[i + 4] as string | null;
        if (type !== null) event(runId, type, null, null, null, q[i + 5] as string | null, at);
        break;
      }
      case BATCH:
        b.batches.push(q[i + 2] as BatchRecord);
        break;
      case BATCH_RUN: {
        // a run queued in its batch's commit counts against the batch's maxConcurrency (claims)
        const row = b.createById.get(q[i + 3] as string);
        if (row !== undefined && row.status === "queued") {
          const batchId = q[i + 2] as string;
          const rec = b.batches.findLast((x) => x.batchId === batchId);
          if (rec?.maxConcurrency !== undefined) row.limitedBatch = batchId;
        }
        b.batchRuns[0].push(q[i + 2] as string);
        b.batchRuns[1].push(q[i + 3] as string);
        b.batchRuns[2].push(q[i + 4] as number);
        break;
      }
      case ENGINE:
        b.engine = true;
        b.engineUrl = (q[i + 2] as string | null) ?? b.engineUrl;
        break;
    }
  }
  return b;
}

/** The queue without the entries written under the leases `lost`. */
export function dropLeases(q: unknown[], lost: Set<string>): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < q.length;) {
    const n = LENGTH[q[i] as number];
    const lease = q[i + 1] as string | null;
    if (lease === null || !lost.has(lease)) { for (let k = 0; k < n; k++) out.push(q[i + k]); }
    i += n;
  }
  return out;
}
