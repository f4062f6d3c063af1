/**
 * Resuming at start: the unfinished runs of engines that stopped are continued by a starting
 * service (`stepflow serve`, issue 12).
 * @module
 */
import { wasInterrupted } from "../execution/resume.ts";
import { describeError } from "../errors.ts";
import type { RunService } from "./runs.ts";
import type { ServiceStore } from "./store_adapter.ts";

/** Most runs of each status looked at by {@linkcode resumeInterruptedRuns}. */
const RESUME_SCAN_LIMIT = 1000;

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
  const candidates: string[] = [];
  for (const status of ["running", "paused", "failed"] as const) {
    const found = await store.listRuns({ status, rootOnly: true, limit: RESUME_SCAN_LIMIT });
    for (const r of found) {
      if (status !== "failed" || wasInterrupted(r)) candidates.push(r.runId);
    }
  }
  const resumed: string[] = [];
  const skipped: { runId: string; reason: string }[] = [];
  for (const runId of candidates.reverse()) { // oldest first
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
  const waiting = await store.listRuns({
    status: "queued",
    rootOnly: true,
    limit: RESUME_SCAN_LIMIT,
  });
  for (const r of waiting.reverse()) { // oldest first
    try {
      if (await runs.takeQueued(r.runId)) queued.push(r.runId);
    } catch (e) {
      skipped.push({ runId: r.runId, reason: describeError(e) });
    }
  }
  return { resumed, queued, skipped };
}
