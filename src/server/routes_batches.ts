/**
 * Batches: `POST /batches`, `GET /batches`, `GET /batches/{id}`, `/runs`, `/outputs`,
 * `/cancel` (stepflow 0.8 §8). Unlike 0.8: overrides are applied to the runs, and cancel cancels
 * the batch's runs (0.8 only changed the batch's status).
 * @module
 */
import { createRoute } from "@hono/zod-openapi";
import { ApiError, batchNotFound } from "./api_error.ts";
import { type ApiApp, flowById, runIdParam, runSummary, type Service } from "./context.ts";
import { errors, json } from "./openapi.ts";
import * as S from "./schemas.ts";

const TAG = "Batch";

/**
 * Most inputs one batch may have. Each run waiting in the service holds about 5 KB of memory
 * (its record, its queue entry, its promise): a 10 MiB body of `0`s (5 million inputs) took
 * gigabytes and could end the service out of memory.
 */
export const MAX_BATCH_INPUTS = 100_000;

/**
 * Refuses a batch of `n` inputs that is too large (413), or that would make the runs waiting in
 * the service (queued, and the batches' runs not started) more than `MAX_BATCH_INPUTS` and
 * `--max-queued-runs` (429 with `Retry-After`, as POST /runs when the queue is full).
 */
function checkBatchSize(s: Service, n: number): void {
  if (n > MAX_BATCH_INPUTS) {
    throw new ApiError(
      413,
      `A batch of ${n} inputs is larger than a batch may be (${MAX_BATCH_INPUTS} inputs): ` +
        "split the inputs into several batches",
    );
  }
  const waiting = s.runs.waiting;
  const most = Math.max(MAX_BATCH_INPUTS, s.runs.maxQueued);
  if (waiting > 0 && waiting + n > most) {
    throw new ApiError(
      429,
      `Too many runs waiting: ${waiting} runs of earlier requests and batches wait to start, and ` +
        `this batch's ${n} would make more than ${most}; retry once some have run`,
      undefined,
      { "Retry-After": "5" },
    );
  }
}

/** Adds the batch routes. */
export function addBatchRoutes(app: ApiApp, s: Service): void {
  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/batches",
      tags: [TAG],
      summary: "Run a stored flow on many inputs",
      description:
        "One run per input, at most `maxConcurrency` at once (default all; the service's limit on concurrent runs still applies). Answers at once; follow with GET /batches/{batchId}.",
      request: { body: { content: json(S.CreateBatchRequest), required: true } },
      responses: {
        200: { description: "Started", content: json(S.CreateBatchResponse) },
        ...errors(400, 404, 413, 415, 429, 503, 507),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const flowId = body.flowId.toLowerCase();
      const flow = await flowById(s, flowId);
      if (!s.runs.accepting) {
        throw new ApiError(503, "The service is shutting down and accepts no new batches");
      }
      checkBatchSize(s, body.inputs.length);
      const { batchId, totalInputs, stored } = s.batches.submit(flow, flowId, body.inputs, {
        maxConcurrency: body.maxConcurrency,
        overrides: body.overrides,
        variables: body.variables,
      });
      // stored before answered (507 when it cannot be): the batch is found by its id after a
      // restart, and by any engine on the same database
      await stored;
      return c.json({ batchId, totalInputs, status: "running" as const }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/batches",
      tags: [TAG],
      summary: "List batches, newest first",
      request: { query: S.ListBatchesQuery },
      responses: {
        200: { description: "Batches", content: json(S.ListBatchesResponse) },
        ...errors(400),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const list = await s.store.listBatches(q);
      return c.json({
        batches: list.map((b) => ({
          batchId: b.batchId,
          flowId: b.flowId,
          flowName: b.flowName ?? null,
          totalInputs: b.totalInputs,
          createdAt: b.createdAt,
          status: b.status,
        })),
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/batches/{batchId}",
      tags: [TAG],
      summary: "A batch and its run counts",
      description:
        "`runningRuns` counts runs running or waiting to start. `completedAt` is set once no run is left to finish. `status` stays `running` for a finished batch (as 0.8).",
      request: { params: S.BatchIdParams },
      responses: {
        200: { description: "The batch", content: json(S.BatchDetailsSchema) },
        ...errors(400, 404),
      },
    }),
    async (c) => {
      const batchId = runIdParam(c.req.valid("param").batchId, "batch");
      const d = await s.batches.details(batchId);
      if (!d) throw batchNotFound(batchId);
      return c.json(d, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/batches/{batchId}/runs",
      tags: [TAG],
      summary: "The runs of a batch, in input order",
      request: { params: S.BatchIdParams },
      responses: {
        200: { description: "Runs", content: json(S.BatchRunsResponse) },
        ...errors(400, 404),
      },
    }),
    async (c) => {
      const batchId = runIdParam(c.req.valid("param").batchId, "batch");
      if (!(await s.batches.record(batchId))) throw batchNotFound(batchId);
      const runs = [];
      for (const { runId, index } of await s.store.getBatchRuns(batchId)) {
        const r = await s.store.getRun(runId);
        if (r) runs.push({ ...runSummary(r), batchInputIndex: index });
      }
      runs.sort((a, b) => a.batchInputIndex - b.batchInputIndex);
      return c.json({ runs }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/batches/{batchId}/outputs",
      tags: [TAG],
      summary: "The result of each run of a batch, in input order",
      description:
        "`result` is null until the run finishes; failed runs have their failed result (0.8 had none).",
      request: { params: S.BatchIdParams },
      responses: {
        200: { description: "Outputs", content: json(S.BatchOutputsResponse) },
        ...errors(400, 404),
      },
    }),
    async (c) => {
      const batchId = runIdParam(c.req.valid("param").batchId, "batch");
      if (!(await s.batches.record(batchId))) throw batchNotFound(batchId);
      const outputs = [];
      for (const { runId, index } of await s.store.getBatchRuns(batchId)) {
        const r = await s.store.getRun(runId);
        outputs.push({
          batchInputIndex: index,
          status: r?.status ?? "cancelled",
          result: r?.result ?? null,
        });
      }
      outputs.sort((a, b) => a.batchInputIndex - b.batchInputIndex);
      return c.json({ outputs } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/batches/{batchId}/cancel",
      tags: [TAG],
      summary: "Cancel a batch and its runs",
      description:
        "Runs not started never start; running runs are cancelled. 409 when the batch was already cancelled or every run had finished.",
      request: { params: S.BatchIdParams },
      responses: {
        200: { description: "Cancelled", content: json(S.CancelBatchResponse) },
        ...errors(400, 404, 409),
      },
    }),
    async (c) => {
      const batchId = runIdParam(c.req.valid("param").batchId, "batch");
      const r = await s.batches.cancel(batchId);
      if (r === "unknown") throw batchNotFound(batchId);
      if (r === "already") throw new ApiError(409, `Batch '${batchId}' is already cancelled`);
      if (r === "finished") {
        throw new ApiError(409, `Batch '${batchId}' cannot be cancelled: every run has finished`);
      }
      return c.json({ batchId, status: "cancelled" as const }, 200);
    },
  );
}
