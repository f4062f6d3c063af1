/**
 * Resuming at start: the unfinished runs of engines that stopped are continued by a starting
 * service (`stepflow serve`, issue 12).
 * @module
 */
import { wasInterrupted } from "../execution/resume.ts";
import { describeError } from "../errors.ts";
import type { RunService } from "./runs.ts";
import type { ServiceStore } from "./store_adapter.ts";
import type { RunRecord, RunStatus } from "../state/store.ts";

/** Runs read at a time by {@linkcode resumeInterruptedRuns}. */
const RESUME_PAGE = 1000;

/**
 * Every top-level run of `status`, oldest first (created at, then id: the ids are UUID v7, so a
 * batch's runs, created in the same millisecond, keep their input order). Read page by page: a
 * restart after a kill with more than one page of runs left takes them all (it took the newest
 * 1000, and the others stayed queued for ever).
 */
async function allRuns(
  store: ServiceStore,
  status: RunStatus,
  pages = Infinity,
): Promise<RunRecord[]> {
  const byId = new Map<string, RunRecord>();
  for (let offset = 0; offset < pages * RESUME_PAGE; offset += RESUME_PAGE) {
    const page = await store.listRuns({ status, rootOnly: true, limit: RESUME_PAGE, offset });
    for (const r of page) byId.set(r.runId, r);
    if (page.length < RESUME_PAGE) break;
  }
  return [...byId.values()].sort(byAge);
}

/** Oldest first: created at, then id. */
function byAge(a: RunRecord, b: RunRecord): number {
  return a.createdAt < b.createdAt
    ? -1
    : a.createdAt > b.createdAt
    ? 1
    : a.runId < b.runId
    ? -1
    : 1;
}

/**
 * Resumes the unfinished top-level runs of engines that stopped (issue 12: in-flight runs survive
 * a restart of the service): `running` and `paused` runs, and runs marked interrupted (code 503)
 * when the store was opened. Each is claimed first (`engine.resume`), so a run another live
 * engine executes is left to it, and two services starting at once never both resume one. Then
 * the `queued` runs no live engine owns (queued by one that stopped before starting them) are
 * queued here (`RunService.takeQueued`), each claimed first.
 * @returns the runs resumed, the queued runs taken, and those that could not be (with why).
 */
export async function resumeInterruptedRuns(
  runs: RunService,
  store: ServiceStore,
): Promise<{ resumed: string[]; queued: string[]; skipped: { runId: string; reason: string }[] }> {
  const candidates: RunRecord[] = [];
  for (const status of ["running", "paused", "failed"] as const) {
    // (failed runs: the newest page only — a database keeps every failed run, and the runs
    // interrupted by a stop are among the newest)
    for (const r of await allRuns(store, status, status === "failed" ? 1 : Infinity)) {
      if (status !== "failed" || wasInterrupted(r)) candidates.push(r);
    }
  }
  const resumed: string[] = [];
  const skipped: { runId: string; reason: string }[] = [];
  candidates.sort(byAge);
  for (const { runId } of candidates) { // oldest first
    try {
      await runs.resume(runId);
      resumed.push(runId);
    } catch (e) {
      skipped.push({ runId, reason: describeError(e) });
    }
  }
  // runs queued and never started by an engine that stopped (a kill -9, a reboot): queued here,
  // within --max-concurrent-runs; those of a live engine (SQLite: their owner) are left to it
  const queued: string[] = [];
  for (const r of await allRuns(store, "queued")) { // oldest first
    try {
      if (await runs.takeQueued(r.runId)) queued.push(r.runId);
    } catch (e) {
      skipped.push({ runId: r.runId, reason: describeError(e) });
    }
  }
  return { resumed, queued, skipped };
}
