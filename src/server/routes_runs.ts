/**
 * Runs: `POST /runs`, `GET /runs`, `GET /runs/{id}`, `/flow`, `/steps`, `/cancel`,
 * `DELETE /runs/{id}`, and 0.8's debug routes (`/debug/step`, `/debug/continue`,
 * `/debug/runnable`).
 *
 * Differences from stepflow 0.8 (each covered by a test): one run id per run (0.8 stored the
 * returned id but executed under another, so `/steps` was empty); cancel stops the run (running
 * steps cancelled, step service calls abandoned, status `cancelled`); delete deletes the run,
 * its step results and nested runs; `GET /runs` filters (`status`, `flowName`, `since`, `limit`,
 * `offset`, `rootOnly`). Extensions: `wait`/`timeoutSecs` (202 with the run id and status), the
 * `Idempotency-Key` header, status `queued`.
 * @module
 */
import { createRoute, type z } from "@hono/zod-openapi";
import { flowToJson } from "../execution/flow_id.ts";
import { normalizeInstant, type RunRecord, type RunStatus } from "../state/store.ts";
import { ApiError, runNotFound } from "./api_error.ts";
import {
  type ApiApp,
  createRunBody,
  flowById,
  runDetails,
  runIdParam,
  runSummary,
  type Service,
} from "./context.ts";
import { TERMINAL_STATUSES } from "./store_adapter.ts";
import { ownerOf } from "./cluster.ts";
import { runSteps } from "./step_details.ts";
import { type ActiveRun, type RunRequest, waitFor } from "./run_model.ts";
import {
  fingerprintOf,
  fingerprintOfRun,
  idempotencyKeyOf,
  idempotencyRunKey,
  keyReused,
} from "./idempotency.ts";
import { uuidv7 } from "./ids.ts";
import { errors, json } from "./openapi.ts";
import * as S from "./schemas.ts";

const TAG = "Run";

/** Adds the run routes. */
export function addRunRoutes(app: ApiApp, s: Service): void {
  const createRunRoute = createRoute({
    method: "post",
    path: "/api/v1/runs",
    tags: [TAG],
    summary: "Run a stored flow",
    description:
      "Starts a run of the flow `flowId` on `input`. By default waits for it to finish and answers 200 with its result (as 0.8). With `wait: false`, or when `timeoutSecs` passes first, answers 202 with the run id and status; the run goes on. With an `Idempotency-Key` header, a repeated request answers with the run the first one started. 429 when the service's run queue is full, 503 while it shuts down.",
    request: {
      headers: S.IdempotencyHeader,
      body: { content: json(S.CreateRunRequest), required: true },
    },
    responses: {
      200: { description: "The run finished", content: json(S.CreateRunResponse) },
      202: {
        description: "The run goes on (wait: false, or timeoutSecs passed)",
        content: json(S.CreateRunResponse),
      },
      ...errors(400, 404, 413, 415, 422, 429, 503),
    },
  });
  // The document has the header; the handler reads it itself: the header validator builds an
  // object of every header of the request and parses it, ~7% of what a run allocates (issue 13).
  app.openAPIRegistry.registerPath(createRunRoute);
  app.openapi(
    { ...createRunRoute, hide: true, request: { body: createRunRoute.request.body } },
    async (c) => {
      const body = c.req.valid("json");
      const key = idempotencyHeader(c.req.header("idempotency-key"));
      const flowId = body.flowId.toLowerCase();
      const flow = await flowById(s, flowId);
      const debug = body.debug === true;
      const waitMs = debug || body.wait === false
        ? 0
        : body.timeoutSecs !== undefined
        ? Math.min(body.timeoutSecs * 1000, 2 ** 31 - 1)
        : undefined;
      const request: RunRequest = {
        flow,
        flowId,
        input: body.input,
        overrides: body.overrides,
        variables: body.variables,
      };
      let run: ActiveRun | undefined;
      if (key !== undefined) {
        const fingerprint = await fingerprintOf(flowId, body);
        let prior = s.runs.idempotent(key, fingerprint);
        if (prior === undefined) {
          // a key of an earlier service process (or another service on this database)
          const stored = await s.store.findRunByKey(idempotencyRunKey(key));
          if (stored) {
            if ((await fingerprintOfRun(stored)) !== fingerprint) {
              throw keyReused(key, stored.runId);
            }
            prior = stored.runId;
            s.runs.remember(key, fingerprint, prior);
          } else {
            prior = s.runs.idempotent(key, fingerprint); // a request that came meanwhile
          }
        }
        if (prior !== undefined) {
          run = s.runs.get(prior);
          if (run !== undefined && s.debug.isDebug(prior) !== debug) {
            throw debugDiffers(key, prior, !debug);
          }
          if (!run) {
            const record = await s.store.getRun(prior);
            if (!record) s.runs.forget(key);
            else {
              if (record.debugMode === true !== debug) throw debugDiffers(key, prior, !debug);
              // finished, or executed by another service on this database
              const a = await storedAnswer(s, prior, waitMs, c.req.raw.signal);
              return a.code === 200 ? c.json(a.body, 200, REPLAYED) : c.json(a.body, 202, REPLAYED);
            }
          }
        }
        if (!run) {
          run = submitRun(s, { ...request, runKey: idempotencyRunKey(key) }, debug);
          s.runs.remember(key, fingerprint, run.runId);
        }
        if (debug || waitMs === 0 || s.cluster !== undefined) {
          // answered before the run ends: another service (engine) on the same database may
          // have stored a run with this key first — then this run was not stored
          // (src/state/sqlite_commit.ts, postgres_commit.ts) and that run answers, for every
          // request with the key (this one, and those that found this run meanwhile)
          const holder = await s.runs.keyHolder(run, idempotencyRunKey(key));
          if (holder !== run.runId) {
            const a = await holderAnswer(
              s,
              key,
              fingerprint,
              debug,
              holder,
              waitMs,
              c.req.raw.signal,
            );
            return a.code === 200 ? c.json(a.body, 200, REPLAYED) : c.json(a.body, 202, REPLAYED);
          }
        }
      } else {
        run = submitRun(s, request, debug);
      }
      if (debug) {
        // 0.8: a debug run answers at once, paused before its first steps — once its record (or
        // its queued row) is stored: it was answered before, and a kill -9 or a full disk then
        // left an id that gave 404. When that commit fails, it is answered failed with 507.
        const unstored = await s.runs.recorded(run).then(() => undefined, (e) => ({ e }));
        if (unstored !== undefined) {
          s.debug.get(run.runId)?.fail(unstored.e); // (held before its first step)
          const o = await run.done;
          return c.json(createRunBody(run.runId, o.status, o.result, true), 200);
        }
        return c.json(createRunBody(run.runId, "paused", undefined, true), 200);
      }
      // distributed: the run is queued in the database before it is answered (any engine may be
      // asked for it next)
      if (waitMs === 0 && !(await s.runs.recorded(run).then(() => true, () => false))) {
        // a 202 names a run whose record is stored (its id would give 404 otherwise): its
        // commit failed (disk full, ...) — answered as with wait: true, failed with 507
        const o = await run.done;
        return c.json(createRunBody(run.runId, o.status, o.result), 200);
      }
      // (until the client goes: its answer, 202 below, is then read by nobody)
      const outcome = waitMs === 0 ? undefined : await waitFor(run, waitMs, c.req.raw.signal);
      let holder = run.supersededBy;
      if (holder === undefined && key !== undefined && outcome === undefined) {
        // timeoutSecs passed first: answered with the run that holds the key (as above)
        holder = await s.runs.keyHolder(run, idempotencyRunKey(key));
        if (holder === run.runId) holder = undefined;
      }
      if (holder !== undefined && key !== undefined) {
        // another service on this database stored a run with this key first: that run answers
        const fingerprint = await fingerprintOf(flowId, body);
        const a = await holderAnswer(s, key, fingerprint, debug, holder, waitMs, c.req.raw.signal);
        return a.code === 200 ? c.json(a.body, 200, REPLAYED) : c.json(a.body, 202, REPLAYED);
      }
      if (!outcome || !TERMINAL_STATUSES.has(outcome.status)) {
        // (a distributed service stopping while the run executes on another engine: 202 too)
        return c.json(createRunBody(run.runId, run.state === "queued" ? "queued" : "running"), 202);
      }
      return c.json(createRunBody(run.runId, outcome.status, outcome.result), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/runs",
      tags: [TAG],
      summary: "List runs, newest first",
      description:
        "Filters (extension; 0.8 listed every run): `status`, `flowName`, `since` (RFC 3339), `limit`, `offset`, `rootOnly`.",
      request: { query: S.ListRunsQuery },
      responses: {
        200: { description: "Runs", content: json(S.ListRunsResponse) },
        ...errors(400),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      let since: string | undefined;
      if (q.since !== undefined) {
        try {
          since = normalizeInstant(q.since);
        } catch {
          throw new ApiError(
            400,
            `Invalid 'since' '${q.since}': expected an RFC 3339 time such as 2025-01-01T00:00:00Z`,
          );
        }
      }
      const runs = await s.store.listRuns({
        status: q.status,
        flowName: q.flowName,
        since,
        limit: q.limit,
        offset: q.offset,
        rootOnly: q.rootOnly === "true",
      });
      return c.json({ runs: runs.map((r) => runSummary(r, s.debug.isDebug(r.runId))) }, 200);
    },
  );

  app.openapi(
    runRoute("get", "/api/v1/runs/{runId}", "A run: status, input, result", S.RunDetailsSchema),
    async (c) => {
      const r = await storedRun(s, c.req.valid("param").runId);
      const d: ReturnType<typeof runDetails> & { owner?: unknown } = runDetails(
        r,
        s.debug.isDebug(r.runId),
      );
      if (s.cluster !== undefined && r.ownerId !== undefined) {
        // which engine executes (or last executed) the run (issue 14)
        d.owner = ownerOf(r, await s.cluster.engine(r.ownerId));
      }
      return c.json(d as never, 200);
    },
  );

  app.openapi(
    runRoute("get", "/api/v1/runs/{runId}/flow", "The flow a run runs", S.RunFlowResponse),
    async (c) => {
      const r = await storedRun(s, c.req.valid("param").runId);
      const flow = await flowById(s, r.flowId);
      return c.json({ flow: flowToJson(flow), flowId: r.flowId }, 200);
    },
  );

  app.openapi(
    runRoute(
      "get",
      "/api/v1/runs/{runId}/steps",
      "The steps of a run: status and result of each",
      S.ListStepsResponse,
      "Keyed by step id, in flow order. Status: completed/failed/skipped (from the step's result), running, runnable (every dependency finished), blocked; a step that was running when its run was cancelled or failed reads failed, without a result (stepflow 0.8 has no cancelled step status). Extensions: `attempt`, `startedAt`, `completedAt`, `durationMs` (`durationEstimated` when the start was not journaled and is taken as the moment the step's inputs were ready), and `input`: the step's resolved input (secrets redacted), once it started.",
    ),
    async (c) => {
      const r = await storedRun(s, c.req.valid("param").runId);
      const flow = await flowById(s, r.flowId);
      return c.json({ steps: await runSteps(s, r, flow) } as never, 200);
    },
  );

  app.openapi(
    runRoute(
      "post",
      "/api/v1/runs/{runId}/cancel",
      "Cancel a run",
      S.RunSummarySchema,
      "Cancels a queued or running run: running steps are cancelled (their step service calls abandoned), nothing else starts, and the run ends with status `cancelled` and a failed result of code 410. Answers when the run has stopped. 409 when it had already finished. (0.8 only changed the stored status.)",
      [409],
    ),
    async (c) => {
      const runId = runIdParam(c.req.valid("param").runId);
      if (s.cluster !== undefined) {
        // queued in the database, or executing on another engine (issue 14)
        const answer = await s.cluster.cancel(
          runId,
          "cancelled with POST /runs/{runId}/cancel",
          c.req.header("authorization"),
        );
        if (answer !== undefined) {
          const body = answer.run !== undefined ? runSummary(answer.run) : answer.body;
          return c.json(body as never, answer.status as 200);
        }
      }
      const before = await s.store.getRun(runId);
      const outcome = await s.runs.cancel(runId, "cancelled with POST /runs/{runId}/cancel");
      let r = await s.store.getRun(runId);
      if (!r && outcome?.status === "cancelled" && before) {
        // deleted (DELETE /runs/{id}) between its end and this answer: the cancel did happen
        r = { ...before, status: "cancelled", result: outcome.result };
      }
      if (!r) throw runNotFound(runId);
      if (outcome === undefined) {
        if (TERMINAL_STATUSES.has(r.status)) throw notCancellable(runId, r.status);
        // recorded as active but not running in this process (an earlier service process, or
        // a paused run): nothing to stop; record the cancel
        s.store.finishRun(runId, "cancelled", {
          outcome: "failed",
          error: { code: 410, message: "Run was cancelled (it was not running in this service)" },
        });
        const after = await s.store.getRun(runId);
        return c.json(runSummary(after ?? r, s.debug.isDebug(runId)), 200);
      }
      if (outcome.status !== "cancelled") throw notCancellable(runId, outcome.status);
      return c.json(runSummary(r, s.debug.isDebug(runId)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/v1/runs/{runId}",
      tags: [TAG],
      summary: "Delete a finished run",
      description:
        "Deletes the run, its step results and its nested runs; GET /runs/{runId} answers 404 afterwards. 409 while the run is queued or running (cancel it first), and for a nested run while its top-level run is not finished. (0.8 answered 200 and deleted nothing.)",
      request: { params: S.RunIdParams },
      responses: {
        200: { description: "Deleted" },
        ...errors(400, 404, 409),
      },
    }),
    async (c) => {
      const r = await storedRun(s, c.req.valid("param").runId);
      const runId = r.runId;
      if (s.runs.get(runId) || !TERMINAL_STATUSES.has(r.status)) {
        throw new ApiError(
          409,
          `Run '${runId}' is ${r.status} and cannot be deleted: cancel it first (POST /api/v1/runs/${runId}/cancel)`,
        );
      }
      const rootId = r.rootRunId;
      if (rootId !== undefined && rootId !== runId) {
        // a finished nested run of a run still going: its top-level run finds its nested runs by
        // key when it is resumed (after a crash, a takeover): deleted, the item would run again
        const root = await s.store.getRun(rootId);
        if (root && (s.runs.get(rootId) || !TERMINAL_STATUSES.has(root.status))) {
          throw new ApiError(
            409,
            `Run '${runId}' is a nested run of run '${rootId}', which is ${root.status}: deleted ` +
              `now, a resume of '${rootId}' would run its step again. Delete '${rootId}' once it ` +
              "has finished (its nested runs go with it)",
          );
        }
      }
      await s.store.deleteRun(runId);
      const key = idempotencyKeyOf(r);
      if (key !== undefined) s.runs.forget(key); // a deleted run frees its key
      return c.body(null, 200);
    },
  );
}

/** The definition of a route on one run (`{runId}` in the path; 400 and 404 answers). */
function runRoute<P extends string, M extends "get" | "post" | "delete", R extends z.ZodType>(
  method: M,
  path: P,
  summary: string,
  response: R,
  description?: string,
  moreErrors: number[] = [],
) {
  return createRoute({
    method,
    path,
    tags: [TAG],
    summary,
    ...(description ? { description } : {}),
    request: { params: S.RunIdParams },
    responses: {
      200: { description: summary, content: json(response) },
      ...errors(400, 404, ...moreErrors),
    },
  });
}

/**
 * The stored run a `{runId}` path parameter names.
 * @throws {ApiError} 400 for a parameter that is not a UUID, 404 for an unknown run.
 */
async function storedRun(s: Service, param: string): Promise<RunRecord> {
  const runId = runIdParam(param);
  const r = await s.store.getRun(runId);
  if (!r) throw runNotFound(runId);
  return r;
}

function notCancellable(runId: string, status: RunStatus): ApiError {
  return new ApiError(409, `Run '${runId}' cannot be cancelled: it is already ${status}`);
}

/** Submits a run; a debug run gets a debug session whose gate holds its steps. */
function submitRun(s: Service, request: RunRequest, debug: boolean): ActiveRun {
  if (!debug) return s.runs.submit(request);
  const steps = request.flow.steps.map((st) => st.id);
  const runId = uuidv7();
  const session = s.debug.open(runId, steps);
  let run: ActiveRun;
  try {
    run = s.runs.submit({ ...request, gate: session.gate, debugMode: true }, { runId });
  } catch (e) {
    s.debug.close(runId);
    throw e;
  }
  session.attach(run);
  run.done.then(() => s.debug.close(runId));
  return run;
}

/** How often a request waiting for a run of another service reads the run: ms. */
const STORED_RUN_POLL_MS = 100;

/**
 * The `Idempotency-Key` header's value (1-255 characters, as `S.IdempotencyHeader` documents it),
 * undefined without one.
 * @throws {ApiError} 400 when it is empty or longer than 255 characters.
 */
function idempotencyHeader(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.length === 0 || value.length > 255) {
    throw new ApiError(
      400,
      `Invalid header: Idempotency-Key: must be 1 to 255 characters, got ${value.length}`,
    );
  }
  return value;
}

/** The header of an answer given from a run an earlier request with the same key started. */
const REPLAYED = { "Idempotent-Replayed": "true" };

/**
 * The answer to a repeated Idempotency-Key request with stored run `runId` that this service does
 * not execute (finished, or executed by another service on the same database): 200 with its
 * result once it finished — waiting for that as the request asked (`waitMs`: undefined waits
 * until it ends, 0 not at all; reading the store every 100 ms; not past a paused run) —, else 202 with its status.
 * @throws {ApiError} 404 when the run was deleted meanwhile.
 */
async function storedAnswer(
  s: Service,
  runId: string,
  waitMs: number | undefined,
  gone?: AbortSignal,
): Promise<{ code: 200 | 202; body: ReturnType<typeof createRunBody> }> {
  const deadline = waitMs === undefined ? Infinity : performance.now() + waitMs;
  for (;;) {
    const record = await s.store.getRun(runId);
    if (!record) throw runNotFound(runId);
    const debug = s.debug.isDebug(runId);
    if (TERMINAL_STATUSES.has(record.status)) {
      return { code: 200, body: createRunBody(runId, record.status, record.result, debug) };
    }
    const left = deadline - performance.now();
    // (a client that went away stops the polling: nobody reads the answer)
    if (left <= 0 || record.status === "paused" || gone?.aborted) {
      return { code: 202, body: createRunBody(runId, record.status, undefined, debug) };
    }
    await new Promise((r) => setTimeout(r, Math.min(STORED_RUN_POLL_MS, left)));
  }
}

/**
 * The answer to a request with Idempotency-Key `key` whose run was not stored because run
 * `holder` (of another service on the same database) stored the key first: that run's, as for a
 * repeated request ({@linkcode storedAnswer}).
 * @throws {ApiError} 422 when `holder` was started by a different request (or a debug one).
 */
async function holderAnswer(
  s: Service,
  key: string,
  fingerprint: string,
  debug: boolean,
  holder: string,
  waitMs: number | undefined,
  gone?: AbortSignal,
): Promise<{ code: 200 | 202; body: ReturnType<typeof createRunBody> }> {
  const record = await s.store.getRun(holder);
  if (!record) throw runNotFound(holder);
  if ((await fingerprintOfRun(record)) !== fingerprint) throw keyReused(key, holder);
  if (record.debugMode === true !== debug) throw debugDiffers(key, holder, !debug);
  s.runs.remember(key, fingerprint, holder);
  return await storedAnswer(s, holder, waitMs, gone);
}

/** 422: a key of a debug run given to a request that is not one, or the other way round. */
function debugDiffers(key: string, runId: string, priorDebug: boolean): ApiError {
  return new ApiError(
    422,
    `Idempotency-Key '${key}' was already used for a ${priorDebug ? "" : "non-"}debug run ` +
      `(run ${runId}); this request is ${priorDebug ? "not " : ""}a debug one: use a new key ` +
      `for a new request`,
  );
}
