/**
 * Health, components and flows: `GET /health`, `GET /components`, `POST /flows`,
 * `GET /flows/{id}`, `DELETE /flows/{id}` (stepflow 0.8 §8).
 * @module
 */
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type StoreCondition, StoreError } from "../state/store.ts";
import { describeError } from "../errors.ts";
import { flowToJson } from "../execution/flow_id.ts";
import type { ComponentInfo } from "../plugins/plugin.ts";
import { ApiError, flowNotFound } from "./api_error.ts";
import { type ApiApp, flowById, type Service } from "./context.ts";
import { allExamples, analyzeFlow, storeFlow } from "./flows.ts";
import { errors, json } from "./openapi.ts";
import * as S from "./schemas.ts";

/** Adds health, component and flow routes. */
export function addFlowRoutes(app: ApiApp, s: Service): void {
  const health = (path: string) =>
    createRoute({
      method: "get",
      path,
      tags: ["Health"],
      summary: "Is the service up, and can it store runs",
      description:
        "Needs no token. 200 with 0.8's body while the state store can commit; 503 (extension) while its commits fail (disk full, database deleted or unreachable): the body says what is wrong and what to do. An unhealthy service tries a commit on each request and is healthy again once one succeeds. `?error=` answers test errors (0.8): bad_request, not_found, stack, other.",
      request: { query: S.HealthQuery },
      responses: {
        200: { description: "Healthy", content: json(S.HealthResponse) },
        503: {
          description: "The state store cannot commit: runs fail with 507",
          content: json(S.UnhealthyResponse),
        },
        ...errors(400, 404, 500),
      },
    });
  const testErrors = (c: { req: { query(k: string): string | undefined } }) => {
    const e = c.req.query("error");
    if (e === "bad_request") {
      throw new ApiError(400, "Bad request triggered for testing", [
        { error: "Bad request triggered for testing" },
        {
          error: "Test error requested with ?error=bad_request",
          attachments: ["This is a test error with multiple layers"],
        },
      ]);
    }
    if (e === "not_found") throw new ApiError(404, "Test execution not found");
    if (e === "stack") {
      throw new ApiError(500, "Complex error stack for testing", [
        { error: "Execution not found", attachments: ["Top layer: Execution not found"] },
        { error: "State store unavailable", attachments: ["Middle layer: Connection refused"] },
        { error: "Database connection failed", attachments: ["Bottom layer: permission denied"] },
      ]);
    }
    if (e !== undefined) throw new ApiError(500, `Generic test error (requested: ${e})`);
  };
  const healthHandler = async (c: Context) => {
    testErrors(c);
    const timestamp = new Date().toISOString();
    const store = await s.store.condition(true);
    if (store.healthy) {
      return c.json({ status: "healthy" as const, timestamp, version: s.version }, 200);
    }
    return c.json({
      code: 503 as const,
      message: unhealthyMessage(store),
      status: "unhealthy" as const,
      timestamp,
      version: s.version,
      store,
    }, 503);
  };
  app.openapi(health("/api/v1/health"), healthHandler);
  app.openapi(health("/health"), healthHandler);

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/components",
      tags: ["Component"],
      summary: "Every component of every plugin, sorted",
      description:
        "`errors` (extension) names the plugins that could not list their components; their components are missing (0.8 answered 500 instead).",
      request: { query: S.ComponentsQuery },
      responses: {
        200: { description: "Components", content: json(S.ComponentsResponse) },
        ...errors(500),
      },
    }),
    async (c) => {
      const withSchemas = c.req.valid("query").includeSchemas !== "false";
      const plugins = [...s.engine.plugins.values()];
      const answers = await Promise.allSettled(plugins.map((p) => p.listComponents()));
      const all: ComponentInfo[] = [];
      const failures: string[] = [];
      answers.forEach((a, i) => {
        if (a.status === "rejected") {
          failures.push(`plugin '${plugins[i].name}': ${describeError(a.reason)}`);
          return;
        }
        for (const info of a.value) {
          const x: ComponentInfo = { component: info.component };
          if (info.description != null) x.description = info.description;
          if (withSchemas) {
            if (info.input_schema !== undefined) x.input_schema = info.input_schema;
            if (info.output_schema !== undefined) x.output_schema = info.output_schema;
          }
          all.push(x);
        }
      });
      all.sort((a, b) => (a.component < b.component ? -1 : a.component > b.component ? 1 : 0));
      // 0.8 failed the whole answer when one plugin could not list; here the others are listed
      // and `errors` names the plugins that could not
      if (failures.length === plugins.length && plugins.length > 0) {
        throw new ApiError(500, `Could not list components: ${failures.join("; ")}`);
      }
      const body: Record<string, unknown> = { components: all };
      if (failures.length > 0) body.errors = failures;
      return c.json(body as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/flows",
      tags: ["Flow"],
      summary: "Validate and store a flow",
      description:
        "Validates the flow against the service's config (routes, plugins) and stores it. The answer has the diagnostics; `flowId` (and `analysis`) only when no diagnostic is fatal (as 0.8: errors are reported, the flow is still stored).",
      request: { body: { content: json(S.StoreFlowRequest), required: true } },
      responses: {
        200: { description: "Diagnostics, and the flow id", content: json(S.StoreFlowResponse) },
        ...errors(400, 413, 415, 507),
      },
    }),
    async (c) => {
      const { flow } = c.req.valid("json");
      const answer = storeFlow(s.engine, flow);
      // stored before answered: another engine on the same database may be asked for it next
      await s.store.committed().catch((e) => {
        throw new ApiError(
          507,
          `The flow could not be stored: ${describeError(plainCause(e))}. Store it again once ` +
            "the database can be written (GET /health says when)",
        );
      });
      return c.json(answer as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/flows/{flowId}",
      tags: ["Flow"],
      summary: "A stored flow, its examples and analysis",
      request: { params: S.FlowIdParams },
      responses: {
        200: { description: "The flow", content: json(S.FlowResponse) },
        ...errors(400, 404),
      },
    }),
    async (c) => {
      const flowId = c.req.valid("param").flowId.toLowerCase();
      const flow = await flowById(s, flowId);
      const body: Record<string, unknown> = { flow: flowToJson(flow), flowId };
      const examples = allExamples(flow);
      if (examples.length > 0) body.allExamples = examples;
      body.analysis = analyzeFlow(flow, flowId);
      return c.json(body as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/v1/flows/{flowId}",
      tags: ["Flow"],
      summary: "Delete a flow (kept: stored runs refer to it)",
      description:
        "Flows are content-addressed and stored runs name them, so the flow is kept (as in 0.8, which answers 200 and deletes nothing); 404 for an id that is not a stored flow.",
      request: { params: S.FlowIdParams },
      responses: {
        200: { description: "Nothing to do" },
        ...errors(404),
      },
    }),
    async (c) => {
      const flowId = c.req.valid("param").flowId.toLowerCase();
      const blob = await s.store.getBlob(flowId);
      if (!blob || blob.blobType !== "flow") {
        throw flowNotFound(flowId, s.store.flowEvicted(flowId));
      }
      return c.body(null, 200);
    },
  );
}

/** What `/health` says of a store that cannot commit: what is wrong, what follows, what to do. */
function unhealthyMessage(c: StoreCondition): string {
  const ends = c.unstoredRunEnds
    ? ` ${c.unstoredRunEnds} run(s) that failed with 507 wait to be recorded failed.`
    : "";
  return `The state store cannot store runs: ${c.error} (failing since ${c.since}, ` +
    `${c.failedCommits} failed commit(s)). Until it can, runs fail with 507 and are not stored ` +
    `as they finish.${ends} Fix the cause named above; this service is healthy again once a ` +
    "commit succeeds (each /health request tries one), without a restart " +
    "unless the cause says to restart.";
}

/** The store's own failure inside an error that also says what becomes of a run. */
function plainCause(e: unknown): unknown {
  return e instanceof StoreError && e.cause instanceof StoreError ? e.cause : e;
}
