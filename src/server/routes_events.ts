/**
 * Beyond 0.8, on the durable store's journal: `GET /runs/{id}/events` (server-sent events of the
 * run and its nested runs, resumable with `Last-Event-ID`), `POST /runs/{id}/signals/{name}`
 * (human in the loop), and `POST /runs/{id}/resume` (continue a run after a crash or a failure).
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { RunEventRecord } from "../state/store.ts";
import { stringifyJson } from "../json/exact_json.ts";
import { ApiError, runNotFound } from "./api_error.ts";
import { type ApiApp, runIdParam, type Service } from "./context.ts";
import { TERMINAL_STATUSES } from "./store_adapter.ts";
import { errors, json } from "./openapi.ts";
import * as S from "./schemas.ts";

const TAG = "Run";

/** How often an event stream looks for new events in the journal, ms. */
export const EVENT_POLL_MS = 100;
/** A comment line is sent this often so proxies keep an idle stream open, ms. */
export const KEEPALIVE_MS = 15_000;
/** Most events read from the journal at once. */
const PAGE = 500;

const ResumeQuery = z.object({
  from: z.enum(["interrupted", "failed"]).optional().openapi({
    description:
      "interrupted: run only the steps that did not finish; failed: run failed steps (and their dependents) again. Default: what the run's status needs.",
  }),
  wait: z.enum(["true", "false"]).optional().openapi({
    description:
      "true: answer once the run has finished (200 with its result); default false (202)",
  }),
});

const EventsQuery = z.object({
  after: z.coerce.number().int().nonnegative().optional().openapi({
    description: "Send only events with a larger id (as the Last-Event-ID header does)",
  }),
});

const SignalParams = z.object({
  runId: z.string().openapi({ param: { name: "runId", in: "path" } }),
  name: z.string().min(1).max(200).openapi({ param: { name: "name", in: "path" } }),
});

const SignalResponse = z.object({
  id: z.number().int(),
  runId: z.string(),
  name: z.string(),
  data: S.Json,
  createdAt: z.string(),
}).openapi("SignalRecord");

/** Adds the events, signals and resume routes. */
export function addEventRoutes(app: ApiApp, s: Service): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/runs/{runId}/events",
      tags: [TAG],
      summary: "Follow a run: its journal as server-sent events",
      description:
        "Extension. A `text/event-stream` of the run's journal (and its nested runs'): each event has `id` (increasing; send it back as `Last-Event-ID`, or `?after=`, to resume after a disconnect), `event` (run_queued, run_started, step_started, step_completed, step_failed, step_skipped, signal_received, run_interrupted, run_completed, ...) and `data` (the journal entry as JSON: {id, runId, rootRunId, type, stepIndex?, stepId?, attempt?, data?, at}). Events already journaled come first; the stream ends with an `end` event ({status}) once the run has finished. With the in-memory store the journal is kept by `stepflow serve` (not by other library uses).",
      request: { params: S.RunIdParams, query: EventsQuery },
      responses: {
        200: {
          description: "The event stream",
          content: { "text/event-stream": { schema: z.string() } },
        },
        ...errors(400, 404),
      },
    }),
    async (c) => {
      const runId = runIdParam(c.req.valid("param").runId);
      const run = await s.store.getRun(runId);
      if (!run) throw runNotFound(runId);
      const header = c.req.header("last-event-id");
      let after = c.req.valid("query").after ?? 0;
      if (header !== undefined && /^\d+$/.test(header.trim())) after = Number(header.trim());
      // a top-level run streams its nested runs' events too
      const filter = run.rootRunId === undefined || run.rootRunId === runId
        ? { rootRunId: runId }
        : { runId };
      return new Response(eventStream(s, runId, filter, after), {
        headers: {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          "x-accel-buffering": "no",
        },
      });
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/runs/{runId}/signals/{name}",
      tags: [TAG],
      summary: "Send a signal to a run (human in the loop)",
      description:
        "Extension. Stores the signal `name` with the request body (any JSON; empty: null) as its data, for the run's `/builtin/wait_for` step of that name (as `stepflow signal` does). 409 when the run has finished.",
      request: {
        params: SignalParams,
        body: { content: json(S.Json), required: false },
      },
      responses: {
        200: { description: "The stored signal", content: json(SignalResponse) },
        ...errors(400, 404, 409, 413),
      },
    }),
    async (c) => {
      const { runId: param, name } = c.req.valid("param");
      const runId = runIdParam(param);
      const run = await s.store.getRun(runId);
      if (!run) throw runNotFound(runId);
      if (TERMINAL_STATUSES.has(run.status)) {
        throw new ApiError(
          409,
          `Run '${runId}' is ${run.status}: a signal cannot change a finished run`,
        );
      }
      const text = c.req.header("content-type") ? await c.req.text() : "";
      const data = text.trim() === "" ? null : c.req.valid("json");
      const signal = await s.store.putSignal({ runId, name, data });
      s.runs.engine.notifySignal(runId); // a step of this service waiting for it looks at once
      return c.json(signal as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/runs/{runId}/resume",
      tags: [TAG],
      summary: "Continue a run after a crash, a stop or a failure",
      description:
        "Extension (issue 12). Continues a stored run (as `stepflow resume` does): steps whose result was committed are not executed again, steps started but not finished run again with `attempt` + 1; a failed or cancelled run is re-driven from its failed steps, keeping its successful results (`from`). The run is claimed first, so two engines never both resume it. 202 with status `running` (200 with the result with `wait=true`); 404 for an unknown run; 409 for a completed or nested run, or one running here or in another live engine; 503 while the service shuts down. The service also resumes the unfinished runs of engines that stopped when it starts (`stepflow serve`).",
      request: { params: S.RunIdParams, query: ResumeQuery },
      responses: {
        200: { description: "The resumed run finished", content: json(S.CreateRunResponse) },
        202: { description: "The run goes on", content: json(S.CreateRunResponse) },
        ...errors(400, 404, 409, 503),
      },
    }),
    async (c) => {
      const runId = runIdParam(c.req.valid("param").runId);
      const q = c.req.valid("query");
      if (!(await s.store.getRun(runId))) throw runNotFound(runId);
      const run = await s.runs.resume(runId, q.from === undefined ? {} : { from: q.from });
      if (q.wait === "true") {
        const outcome = await run.done;
        return c.json(
          { runId, status: outcome.status, result: outcome.result, debug: false } as never,
          200,
        );
      }
      return c.json({ runId, status: "running", debug: false } as never, 202);
    },
  );
}

/**
 * The SSE body: journaled events after `after`, then new ones as they are journaled (read every
 * {@linkcode EVENT_POLL_MS}, at once when the run ends in this service), then `end`.
 */
function eventStream(
  s: Service,
  runId: string,
  filter: { runId?: string; rootRunId?: string },
  after: number,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let closed = false;
  let wake: (() => void) | undefined;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => {
        if (!closed) controller.enqueue(enc.encode(text));
      };
      // woken at once when the run ends in this service (one hook per stream)
      s.runs.get(runId)?.done.then(() => wake?.());
      (async () => {
        let lastSent = Date.now();
        send("retry: 1000\n\n");
        while (!closed) {
          const events: RunEventRecord[] = await s.store.getEvents({
            ...filter,
            afterId: after,
            limit: PAGE,
          });
          for (const e of events) {
            send(`id: ${e.id}\nevent: ${e.type}\ndata: ${stringifyJson(e)}\n\n`);
            after = e.id;
          }
          if (events.length > 0) lastSent = Date.now();
          if (events.length === PAGE) continue;
          const run = await s.store.getRun(runId);
          if (!run || TERMINAL_STATUSES.has(run.status)) {
            // the run's last events were committed with its final status: read once more
            const rest = await s.store.getEvents({ ...filter, afterId: after });
            for (const e of rest) {
              send(`id: ${e.id}\nevent: ${e.type}\ndata: ${stringifyJson(e)}\n\n`);
              after = e.id;
            }
            send(
              `event: end\ndata: ${stringifyJson({ runId, status: run?.status ?? "deleted" })}\n\n`,
            );
            break;
          }
          if (!s.runs.accepting && !s.runs.get(runId)) {
            // the service stops: nothing here will add events; the client reconnects elsewhere
            send(
              `event: error\ndata: ${
                stringifyJson({
                  message: "the service is stopping; reconnect with Last-Event-ID to go on",
                })
              }\n\n`,
            );
            break;
          }
          if (Date.now() - lastSent >= KEEPALIVE_MS) {
            send(": keep-alive\n\n");
            lastSent = Date.now();
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, EVENT_POLL_MS);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      })().catch((e) => {
        send(`event: error\ndata: ${stringifyJson({ message: String(e?.message ?? e) })}\n\n`);
      }).finally(() => {
        if (!closed) {
          closed = true;
          try {
            controller.close();
          } catch {
            // the client went away
          }
        }
      });
    },
    cancel() {
      closed = true;
      wake?.();
    },
  });
}
