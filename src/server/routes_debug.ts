/**
 * stepflow 0.8's debug routes (§8): `GET /runs/{id}/debug/runnable`, `POST /runs/{id}/debug/step`,
 * `POST /runs/{id}/debug/continue`, for runs started with `debug: true` (src/server/debug.ts).
 * @module
 */
import { createRoute } from "@hono/zod-openapi";
import { ApiError, runNotFound } from "./api_error.ts";
import { type ApiApp, createRunBody, runIdParam, type Service } from "./context.ts";
import type { DebugSession } from "./debug.ts";
import type { ForwardedAnswer } from "./cluster.ts";
import { errors, json } from "./openapi.ts";
import * as S from "./schemas.ts";
import { waitFor } from "./run_model.ts";

const TAG = "Debug";

/** Adds the debug routes. */
export function addDebugRoutes(app: ApiApp, s: Service): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/runs/{runId}/debug/runnable",
      tags: [TAG],
      summary: "Debug: the steps ready to run",
      description:
        "The steps of a debug run (started with `debug: true`) whose inputs are ready and that wait for `/debug/step` or `/debug/continue`, in flow order. 409 for a run not in debug mode or finished.",
      request: { params: S.RunIdParams },
      responses: {
        200: { description: "Ready steps", content: json(S.DebugRunnableResponse) },
        ...errors(400, 404, 409),
      },
    }),
    async (c) => {
      const runId = runIdParam(c.req.valid("param").runId);
      const forwarded = await forwardDebug(
        s,
        runId,
        "GET",
        "debug/runnable",
        undefined,
        c.req.header("authorization"),
      );
      if (forwarded) return c.json(forwarded.body as never, forwarded.status as 200);
      const session = await sessionOf(s, runId);
      return c.json({ runnableSteps: session.runnable() }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/runs/{runId}/debug/step",
      tags: [TAG],
      summary: "Debug: run the given steps",
      description:
        "Runs the named steps of a debug run (each must be ready: see `/debug/runnable`) and answers with their results once they are stored. The steps that become ready afterwards wait again. 400 for a step the flow does not have, 409 for one that is not ready.",
      request: {
        params: S.RunIdParams,
        body: { content: json(S.DebugStepRequest), required: true },
      },
      responses: {
        200: { description: "The steps' results", content: json(S.DebugStepResponse) },
        ...errors(400, 404, 409),
      },
    }),
    async (c) => {
      const runId = runIdParam(c.req.valid("param").runId);
      const { stepIds } = c.req.valid("json");
      const forwarded = await forwardDebug(
        s,
        runId,
        "POST",
        "debug/step",
        { stepIds },
        c.req.header("authorization"),
      );
      if (forwarded) return c.json(forwarded.body as never, forwarded.status as 200);
      const session = await sessionOf(s, runId);
      if (stepIds.length === 0) {
        throw new ApiError(400, "Invalid request body: $.stepIds: name at least one step");
      }
      return c.json({ results: await session.step(stepIds) } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/runs/{runId}/debug/continue",
      tags: [TAG],
      summary: "Debug: run to the end",
      description:
        "Lets a debug run go on without stopping before its steps, waits for it to finish and answers like `POST /runs` (`{runId, result, status, debug: true}`).",
      request: { params: S.RunIdParams },
      responses: {
        200: { description: "The run finished", content: json(S.CreateRunResponse) },
        ...errors(400, 404, 409),
      },
    }),
    async (c) => {
      const runId = runIdParam(c.req.valid("param").runId);
      const forwarded = await forwardDebug(
        s,
        runId,
        "POST",
        "debug/continue",
        undefined,
        c.req.header("authorization"),
      );
      if (forwarded) return c.json(forwarded.body as never, forwarded.status as 200);
      const session = await sessionOf(s, runId);
      const run = s.runs.get(runId);
      session.continue();
      // (until the client goes: the answer is then read by nobody)
      const outcome = await waitFor(run!, undefined, c.req.raw.signal);
      if (outcome === undefined) {
        return c.json(createRunBody(runId, "running", undefined, true), 200);
      }
      return c.json(createRunBody(runId, outcome.status, outcome.result, true), 200);
    },
  );
}

/**
 * In a cluster, a debug request for a run whose debug session is on another engine (a debug run
 * executes on the engine holding its gate): that engine's answer, forwarded (or 503 naming it).
 */
async function forwardDebug(
  s: Service,
  runId: string,
  method: string,
  route: string,
  body: unknown,
  authorization: string | undefined,
): Promise<ForwardedAnswer | undefined> {
  if (s.cluster === undefined || s.debug.get(runId) !== undefined) return undefined;
  return await s.cluster.forwardDebug(
    runId,
    method,
    `/api/v1/runs/${runId}/${route}`,
    body,
    authorization,
  );
}

/**
 * The debug session of the run a `{runId}` parameter names.
 * @throws {ApiError} 400 (not a UUID), 404 (unknown run), 409 (not a debug run in progress).
 */
async function sessionOf(s: Service, param: string): Promise<DebugSession> {
  const runId = runIdParam(param);
  const session = s.debug.get(runId);
  if (session && s.runs.get(runId)) return session;
  const r = await s.store.getRun(runId);
  if (!r) throw runNotFound(runId);
  throw new ApiError(
    409,
    s.debug.isDebug(runId)
      ? `Run '${runId}' is ${r.status}: a finished debug run has no steps to run`
      : `Run '${runId}' is not in debug mode: start it with POST /api/v1/runs {"debug": true, ...}`,
  );
}
