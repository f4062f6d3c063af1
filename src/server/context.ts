/**
 * What the route handlers of one service share, and the record → response shapes they all use.
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Engine } from "../execution/engine.ts";
import type { Flow } from "../flow/model.ts";
import type { RunRecord, RunStatus } from "../state/store.ts";
import type { FlowResult } from "../core/flow_result.ts";
import type { ServiceStore } from "./store_adapter.ts";
import type { RunService } from "./runs.ts";
import type { BatchService } from "./batches.ts";
import type { ServiceMetrics } from "./metrics.ts";
import type { Cluster } from "./cluster.ts";
import type { LiveEvents } from "./live_events.ts";
import type { DebugSessions } from "./debug.ts";
import type { OrphanWatch } from "./orphans.ts";
import { ApiError, flowNotFound } from "./api_error.ts";
import { normalizeUuid } from "./ids.ts";

/** The service behind the routes. */
export interface Service {
  engine: Engine;
  store: ServiceStore;
  runs: RunService;
  batches: BatchService;
  metrics: ServiceMetrics;
  /** Run events of this process, live (the engine's observer of the event streams). */
  live: LiveEvents;
  /** Debug sessions of debug runs (0.8's debug mode). */
  debug: DebugSessions;
  /** The version reported by `/health` and `/metrics`. */
  version: string;
  /** This engine's part in a cluster sharing a PostgreSQL store (issue 14), when it is one. */
  cluster?: Cluster;
  /** Takes over the runs of dead services on a shared SQLite database (src/server/orphans.ts). */
  orphans?: OrphanWatch;
}

/** The Hono app the routes are added to. */
export type ApiApp = OpenAPIHono;

/** 0.8 `RunSummary` (absent values are `null`, as 0.8 sends them). */
export interface RunSummaryBody {
  runId: string;
  flowId: string;
  flowName: string | null;
  flowLabel: string | null;
  status: RunRecord["status"];
  debugMode: boolean;
  createdAt: string;
  completedAt: string | null;
}

/** The summary of a stored run. */
export function runSummary(r: RunRecord, debugMode = false): RunSummaryBody {
  return {
    runId: r.runId,
    flowId: r.flowId,
    flowName: r.flowName ?? null,
    flowLabel: null,
    status: r.status,
    debugMode: debugMode || r.debugMode === true,
    createdAt: r.createdAt,
    completedAt: r.completedAt ?? null,
  };
}

/** 0.8 `RunDetails`: the summary, `input`, `result` (null until finished), `overrides?`. */
export function runDetails(r: RunRecord, debugMode = false) {
  const d: RunSummaryBody & {
    input: unknown;
    result: unknown;
    overrides?: unknown;
    parentRunId?: string;
  } = { ...runSummary(r, debugMode), input: r.input, result: r.result ?? null };
  if (r.overrides !== undefined && r.overrides !== null) d.overrides = r.overrides;
  if (r.parentRunId !== undefined) d.parentRunId = r.parentRunId;
  return d;
}

/**
 * The stored run id for a path parameter.
 * @throws {ApiError} 400 when it is not a UUID (0.8: `Invalid run ID format`).
 */
export function runIdParam(text: string, what = "run"): string {
  const id = normalizeUuid(text);
  if (!id) {
    throw new ApiError(
      400,
      `Invalid ${what} ID '${text}': expected a UUID such as 0190f1a2-7c3e-7d10-8a4b-3f2e1d0c9b8a`,
    );
  }
  return id;
}

/**
 * The flow stored under `flowId`.
 * @throws {ApiError} 404 when there is none; 400 when that blob is data, not a flow.
 */
export async function flowById(s: Service, flowId: string): Promise<Flow> {
  try {
    return await s.engine.getFlow(flowId.toLowerCase());
  } catch {
    const blob = await s.store.getBlob(flowId.toLowerCase());
    if (blob && blob.blobType !== "flow") {
      throw new ApiError(400, `Blob '${flowId}' is not a flow (it holds data)`);
    }
    throw flowNotFound(flowId, s.store.flowEvicted(flowId));
  }
}

/** 0.8 `CreateRunResponse` (keys in 0.8's order; `result` only once the run finished). */
export function createRunBody(
  runId: string,
  status: RunStatus,
  result?: FlowResult,
  debug = false,
) {
  return result !== undefined ? { runId, result, status, debug } : { runId, status, debug };
}
