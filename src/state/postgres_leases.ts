/**
 * What one engine of a PostgreSQL store knows of its leases (src/state/postgres.ts): the runs it
 * writes and has not finished, the leases it holds (run id → epoch) and those it lost, and who
 * is told when one is lost. Writes to a run whose lease was lost are refused here, before they
 * reach the database; the database's fence (`stepflow_fence`) refuses the rest.
 * @module
 */
import { describeError } from "../errors.ts";
import { logger } from "../log.ts";
import { StoreError } from "./store.ts";

const log = logger("state");

/** A run this store writes and has not finished. */
export interface OpenRun {
  /** Its top-level run (null: looked up by the database). */
  root: string | null;
  /** The run whose lease fences its writes (itself, or its top-level run); null: none. */
  lease: string | null;
  /** The first failure of its writes. */
  error?: StoreError;
  /** The last commit promise handed to its writers, and the promise derived from it. */
  batch?: Promise<void>;
  derived?: Promise<void>;
}

/** This engine's runs and leases. */
export class LeaseBook {
  /** Runs this store writes and has not finished. */
  readonly open = new Map<string, OpenRun>();
  /** Leases this engine holds: run id → epoch. */
  readonly held = new Map<string, number>();
  /** Leases this engine lost: run id → the error its writes get. */
  readonly lost = new Map<string, StoreError>();
  /** Leases created by runs in the queue (their rows do not exist yet: not fenced). */
  newLeases = new Set<string>();
  /** Leases created by runs in the commit in flight. */
  inFlightLeases = new Set<string>();
  /** Told of the runs whose lease was lost. */
  readonly listeners = new Set<(runIds: string[]) => void>();

  constructor(readonly database: string) {}

  /** Marks leases lost: their runs' writes are refused from now on. */
  lose(ids: string[], why: string): void {
    const fresh: string[] = [];
    for (const id of ids) {
      if (this.lost.has(id)) continue;
      const epoch = this.held.get(id);
      this.markLost(
        id,
        new StoreError(
          `cannot store run state in PostgreSQL database '${this.database}': ${why} (run ${id}` +
            `${epoch === undefined ? "" : `, lease epoch ${epoch}`}); this engine's writes to it ` +
            "are refused",
          this.database,
        ),
      );
      fresh.push(id);
    }
    if (fresh.length === 0) return;
    log.warn(`lost the lease of ${fresh.length} run(s) to another engine: ${fresh.join(", ")}`);
    for (const fn of this.listeners) {
      try {
        fn(fresh);
      } catch (e) {
        log.error(`onLeaseLost failed: ${describeError(e)}`);
      }
    }
  }

  /** Refuses every later write to the runs of lease `id` (kept after they leave `open`). */
  markLost(id: string, err: StoreError): void {
    this.held.delete(id);
    this.lost.set(id, err);
    for (const [runId, r] of this.open) {
      if (r.lease !== id) continue;
      r.error ??= err;
      this.lost.set(runId, err);
    }
  }

  /** The refusal of a write to a run whose lease was lost, or undefined. */
  refused(runId: string, open: OpenRun | undefined): Promise<void> | undefined {
    if (this.lost.size === 0) return undefined;
    const err = this.lost.get(runId) ??
      (open?.lease == null ? undefined : this.lost.get(open.lease));
    if (err === undefined) return undefined;
    const p = Promise.reject(err);
    p.catch(() => {});
    return p;
  }

  /** A top-level run this engine claimed: it holds its lease at `epoch`. */
  claimed(runId: string, epoch: number, root: string): void {
    this.held.set(runId, epoch);
    this.lost.delete(runId);
    this.open.set(runId, { root, lease: runId });
  }

  /** This engine released run `id`: its writes to it (and its nested runs) are refused. */
  released(id: string): void {
    this.markLost(
      id,
      new StoreError(
        `cannot store run state in PostgreSQL database '${this.database}': this engine ` +
          `released run ${id}; its writes to it are refused`,
        this.database,
      ),
    );
    for (const [runId, r] of this.open) if (r.lease === id) this.open.delete(runId);
  }

  /** Runs deleted from the database. */
  deleted(ids: string[]): void {
    for (const id of ids) {
      this.open.delete(id);
      this.held.delete(id);
    }
  }
}
