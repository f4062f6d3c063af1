/**
 * Graceful shutdown of a service's runs (`RunService.drain`, src/server/runs.ts): active runs get
 * a grace period, then are cancelled — or, with several engines on one PostgreSQL store, released
 * to the other engines. Runs paused for a signal stay paused.
 * @module
 */
import { failed } from "../core/flow_result.ts";
import { describeError } from "../errors.ts";
import { logger } from "../log.ts";
import type { Run, RunDistribution, RunOutcome } from "./run_model.ts";
import type { ServiceStore } from "./store_adapter.ts";

const log = logger("serve");

/** What draining needs of the service. */
export interface DrainHost {
  readonly store: ServiceStore;
  activeRuns(): Run[];
  reservedIds(): string[];
  cancel(runId: string, reason: string): Promise<RunOutcome | undefined>;
  abandon(runId: string): void;
  settle(runId: string, outcome: RunOutcome): void;
}

/**
 * Lets active runs finish for up to `graceMs`, then cancels the rest (reason: the service
 * stopped). Resolves when every run has ended.
 */
export async function drainLocal(
  host: DrainHost,
  graceMs: number,
): Promise<{ finished: number; cancelled: number }> {
  // A run paused for a signal (/builtin/wait_for) is neither waited for nor cancelled: it stays
  // `paused` in the store and continues when the service starts again (issue 12).
  const isPaused = async (r: Run) =>
    r.state === "running" &&
    (await host.store.getRun(r.runId).catch(() => undefined))?.status === "paused";
  const runs: Run[] = [];
  let paused = 0;
  for (const r of host.activeRuns()) {
    if (await isPaused(r)) paused++;
    else runs.push(r);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const all = Promise.all(runs.map((r) => r.done));
  await Promise.race([all, new Promise((r) => timer = setTimeout(r, graceMs))]);
  clearTimeout(timer);
  const left: Run[] = [];
  let finished = 0;
  for (const r of runs) {
    if (r.state === "ended") finished++;
    else if (await isPaused(r)) paused++;
    else left.push(r);
  }
  if (paused > 0) {
    log.warn(
      `shutdown: ${paused} run(s) paused for a signal are left paused; they continue when the service starts again on this store`,
    );
  }
  for (const id of host.reservedIds()) {
    await host.cancel(id, "the service stopped before the run started");
  }
  if (left.length > 0) {
    log.warn(
      `shutdown: ${left.length} run(s) still active after ${graceMs} ms; cancelling them`,
    );
    await Promise.all(
      left.map((r) => host.cancel(r.runId, `the service stopped (grace period ${graceMs} ms)`)),
    );
  }
  return { finished, cancelled: left.length };
}

/**
 * Distributed drain: runs executing here get `graceMs` to finish; the rest are released to the
 * database (another engine continues them) and stopped here; waiters of runs executing
 * elsewhere get their run's current status.
 */
export async function drainShared(
  host: DrainHost,
  graceMs: number,
  d: RunDistribution,
): Promise<{ finished: number; cancelled: number; released: number }> {
  const running = host.activeRuns().filter((r) => r.state === "running");
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.all(running.map((r) => r.done)),
    new Promise((r) => timer = setTimeout(r, graceMs)),
  ]);
  clearTimeout(timer);
  const left = host.activeRuns().filter((r) => r.state === "running");
  if (left.length > 0) {
    log.warn(
      `shutdown: ${left.length} run(s) still running after ${graceMs} ms; releasing them to the other engines`,
    );
    try {
      await d.release(left.map((r) => r.runId));
    } catch (e) {
      log.error(`shutdown: cannot release runs: ${describeError(e)}`);
    }
    for (const r of left) host.abandon(r.runId);
    await Promise.allSettled(left.map((r) => r.handle?.result));
  }
  for (const r of host.activeRuns()) {
    if (r.state !== "queued") continue;
    host.settle(r.runId, {
      status: "queued",
      result: failed(
        503,
        `This service stopped while the run was waiting or running on another engine; it goes on: GET /api/v1/runs/${r.runId}`,
      ),
    });
  }
  return { finished: running.length - left.length, cancelled: 0, released: left.length };
}
