/**
 * Beyond 0.8, on the durable store's journal: `GET /runs/{id}/events` (server-sent events of the
 * run and its nested runs, pushed live from the engine's run observers for runs of this service,
 * resumable with `Last-Event-ID`), `POST /runs/{id}/signals/{name}` (human in the loop), and
 * `POST /runs/{id}/resume` (continue a run after a crash or a failure).
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { RunEventRecord } from "../state/store.ts";
import type { RunEvent } from "../execution/engine.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { stringifyJson } from "../json/exact_json.ts";
import { ApiError, runNotFound } from "./api_error.ts";
import { type ApiApp, runIdParam, type Service } from "./context.ts";
import { TERMINAL_STATUSES } from "./store_adapter.ts";
import { errors, json } from "./openapi.ts";
import * as S from "./schemas.ts";
import { waitFor } from "./run_model.ts";

const TAG = "Run";

/** How often an event stream looks for new events in the journal, ms. */
export const EVENT_POLL_MS = 100;
/** A comment line is sent this often so proxies keep an idle stream open, ms. */
export const KEEPALIVE_MS = 15_000;
/** Most events read from the journal at once. */
const PAGE = 500;
/**
 * Bytes of SSE text a stream holds for a client that reads slowly (or not at all) before it stops
 * reading the journal; it reads on when the HTTP layer takes more (the stream's `pull`).
 */
export const EVENT_STREAM_HIGH_WATER_BYTES = 64 * 1024;
/**
 * Live-only events (`step_progress`, unjournaled `step_started`) a stream keeps while its client
 * does not take them: past this many they are dropped (journal events are still read from the
 * journal, so none of them is lost).
 */
export const MAX_PENDING_LIVE_EVENTS = 1000;
/**
 * Event streams open at once by default (`ServerOptions.maxEventStreams`). A stream whose client
 * does not read holds up to {@linkcode EVENT_STREAM_HIGH_WATER_BYTES} and
 * {@linkcode MAX_PENDING_LIVE_EVENTS} live events (about 0.5 MB on a busy run): 300 clients that
 * never read held 150 MB, and nothing bounded their number.
 */
export const DEFAULT_MAX_EVENT_STREAMS = 1000;

/**
 * Counters of the event streams of this process (read by tests): bytes handed to the HTTP layer,
 * the most bytes one stream held queued (not yet taken by the HTTP layer: at most
 * {@linkcode EVENT_STREAM_HIGH_WATER_BYTES} + one event), streams waiting now for their client to
 * take what they hold, and live-only events dropped for slow clients.
 */
export const eventStreamStats = {
  enqueuedBytes: 0,
  maxQueuedBytes: 0,
  waitingForClient: 0,
  droppedLiveEvents: 0,
};

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

/**
 * Adds the events, signals and resume routes; at most `maxStreams` event streams are open at once
 * (429 with `Retry-After: 5` beyond).
 */
export function addEventRoutes(
  app: ApiApp,
  s: Service,
  maxStreams = DEFAULT_MAX_EVENT_STREAMS,
): void {
  if (!Number.isSafeInteger(maxStreams) || maxStreams < 1) {
    throw new RangeError(`maxEventStreams must be a positive integer, got ${maxStreams}`);
  }
  let open = 0;
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/runs/{runId}/events",
      tags: [TAG],
      summary: "Follow a run: its journal as server-sent events",
      description:
        "Extension. A `text/event-stream` of the run's journal (and its nested runs'): each event has `id` (the journal's, increasing; send it back as `Last-Event-ID`, or `?after=`, to resume after a disconnect), `event` (run_queued, run_started, step_started, step_completed, step_failed, step_skipped, signal_received, run_paused, run_resumed, run_interrupted, run_completed, ...) and `data` (the journal entry as JSON: {id, runId, rootRunId, type, stepIndex?, stepId?, attempt?, data?, at}). Events already journaled come first; for a run executing in this service new events are pushed as they are committed (woken by the engine's run observers), for others the journal is read every 100 ms. Live-only events (`step_progress`, and `step_started` of steps whose start is not journaled) come without an id and are not replayed; for a client that does not keep up they may be dropped. The stream follows the client's pace: while it has not taken what was sent (64 KiB held at most, beyond what the connection buffers), the journal is not read on; a slow client gets every journal event, later. The stream ends with an `end` event ({runId, status}) once the run has finished. With the in-memory store the journal is kept by `stepflow serve` (not by other library uses).",
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
      if (open >= maxStreams) {
        throw new ApiError(
          429,
          `${open} run event streams are open, the most this service keeps at once ` +
            `(maxEventStreams ${maxStreams}): close one (a client that does not read its stream ` +
            `still holds it), or retry later`,
          undefined,
          { "Retry-After": "5" },
        );
      }
      open++;
      let counted = true;
      const release = () => {
        if (counted) open--;
        counted = false;
      };
      return new Response(eventStream(s, runId, filter, after, release), {
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
        "Extension (issue 12). Continues a stored run (as `stepflow resume` does): steps whose result was committed are not executed again, steps started but not finished run again with `attempt` + 1; a failed or cancelled run is re-driven from its failed steps, keeping its successful results (`from`). The run is claimed first, so two engines never both resume it. 202 with status `running` (200 with the result with `wait=true`); 404 for an unknown run; 409 for a completed or nested run, or one running here or in another live engine; 429 (with Retry-After) while the service runs its `--max-concurrent-runs`; 503 while the service shuts down. The service also resumes the unfinished runs of engines that stopped when it starts (`stepflow serve`).",
      request: { params: S.RunIdParams, query: ResumeQuery },
      responses: {
        200: { description: "The resumed run finished", content: json(S.CreateRunResponse) },
        202: { description: "The run goes on", content: json(S.CreateRunResponse) },
        ...errors(400, 404, 409, 429, 503),
      },
    }),
    async (c) => {
      const runId = runIdParam(c.req.valid("param").runId);
      const q = c.req.valid("query");
      if (!(await s.store.getRun(runId))) throw runNotFound(runId);
      const run = await s.runs.resume(runId, {
        withinLimit: true,
        ...(q.from === undefined ? {} : { from: q.from }),
      });
      if (q.wait === "true") {
        // (until the client goes: the answer is then read by nobody)
        const outcome = await waitFor(run, undefined, c.req.raw.signal);
        if (outcome === undefined) {
          return c.json({ runId, status: "running", debug: false } as never, 202);
        }
        return c.json(
          { runId, status: outcome.status, result: outcome.result, debug: false } as never,
          200,
        );
      }
      return c.json({ runId, status: "running", debug: false } as never, 202);
    },
  );
}

/** One SSE block of a journal event (its id is the journal's: `Last-Event-ID` resumes after it). */
function journalBlock(e: RunEventRecord): string {
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${stringifyJson(e)}\n\n`;
}

/** A live-only event (not in the journal): no id, so it does not move `Last-Event-ID`. */
interface LiveRecord {
  runId: string;
  rootRunId: string;
  type: "step_started" | "step_progress";
  stepIndex?: number;
  stepId: string;
  attempt?: number;
  data?: JsonValue;
  at: string;
  /** ms since the epoch (ordering against journal events). */
  ms: number;
}

function liveRecord(e: RunEvent, root: string): LiveRecord | undefined {
  if (e.type === "step_started") {
    return {
      runId: e.runId,
      rootRunId: root,
      type: "step_started",
      stepIndex: e.stepIndex,
      stepId: e.stepId,
      attempt: e.attempt,
      data: { component: e.component },
      at: new Date(e.at).toISOString(),
      ms: e.at,
    };
  }
  if (e.type === "step_progress") {
    return {
      runId: e.runId,
      rootRunId: root,
      type: "step_progress",
      stepId: e.stepId,
      data: e.data,
      at: new Date(e.at).toISOString(),
      ms: e.at,
    };
  }
  return undefined;
}

function liveBlock(r: LiveRecord): string {
  const { ms: _, ...body } = r;
  return `event: ${r.type}\ndata: ${stringifyJson(body as JsonValue)}\n\n`;
}

/** `r` is a live start of the step whose event `e` is (a step's start comes before its end). */
const sameStep = (r: LiveRecord, e: RunEventRecord) =>
  r.runId === e.runId && r.stepIndex !== undefined && r.stepIndex === e.stepIndex;

const startKey = (runId: string, stepIndex: number | undefined, attempt: number | undefined) =>
  `${runId}|${stepIndex}|${attempt ?? 1}`;

/**
 * The SSE body: journaled events after `after`, then new ones, then `end`.
 *
 * A run executing in this process is followed through the engine's run observers
 * ({@linkcode LiveEvents}): a step's start or result wakes the stream at once; the stream then
 * sends what the journal committed (with the journal's ids, so a reconnect with `Last-Event-ID`
 * neither loses nor repeats an event) and the live-only events (`step_started` of steps whose
 * start is not journaled, `step_progress`) without an id. Any other run (queued or running in
 * another process on the same database) is followed by reading the journal every
 * {@linkcode EVENT_POLL_MS}.
 *
 * Pull-based: the stream holds at most {@linkcode EVENT_STREAM_HIGH_WATER_BYTES} (+ one event)
 * that the HTTP layer has not taken; while it is full the journal is not read (a page stops at
 * the event that filled it; the rest is read again later, in smaller pages) and the loop waits
 * for `pull`. Live-only events waiting for the client are capped
 * ({@linkcode MAX_PENDING_LIVE_EVENTS}): past the cap they are dropped; the journal still has
 * every journaled event.
 */
function eventStream(
  s: Service,
  runId: string,
  filter: { runId?: string; rootRunId?: string },
  after: number,
  /** Called once when the stream ends (closed, cancelled by the client, or failed). */
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let closed = false;
  let wake: (() => void) | undefined;
  let woken = false;
  let unlisten: (() => void) | undefined;
  /** Wakes a loop waiting for the client to take what the stream holds (`pull`, `cancel`). */
  let room: (() => void) | undefined;
  const HWM = EVENT_STREAM_HIGH_WATER_BYTES;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      /** The client has not taken what the stream holds (the HTTP layer stopped pulling). */
      const full = () => !closed && (controller.desiredSize ?? 1) <= 0;
      const send = (text: string) => {
        if (closed) return;
        const bytes = enc.encode(text);
        controller.enqueue(bytes);
        eventStreamStats.enqueuedBytes += bytes.length;
        const queued = HWM - (controller.desiredSize ?? HWM);
        if (queued > eventStreamStats.maxQueuedBytes) eventStreamStats.maxQueuedBytes = queued;
      };
      const waitForRoom = async () => {
        if (!full()) return;
        eventStreamStats.waitingForClient++;
        try {
          while (full()) await new Promise<void>((resolve) => room = resolve);
        } finally {
          room = undefined;
          eventStreamStats.waitingForClient--;
        }
      };
      const poke = () => {
        woken = true;
        wake?.();
      };
      /** Live-only events not sent yet, in arrival order. */
      let pending: LiveRecord[] = [];
      /** step_started events sent live (their journal rows, if any, only move the id). */
      const startsSent = new Set<string>();
      /** The run has finished in this process: read the journal once more, then end. */
      let finished = false;
      const active = s.runs.get(runId);
      const owned = active !== undefined || s.live.running(runId);
      if (owned) {
        // listen before reading the journal: nothing falls between the two
        unlisten = s.live.listen(runId, (e, root) => {
          const r = liveRecord(e, root);
          if (r !== undefined) {
            if (pending.length >= MAX_PENDING_LIVE_EVENTS) {
              // the client does not keep up: live-only events go (the journal keeps the rest)
              eventStreamStats.droppedLiveEvents += pending.length;
              pending = [];
            }
            pending.push(r);
          } else if (e.type === "run_finished" && e.runId === runId && !active) {
            // a run of this service ends when the service stored its final status (a cancel
            // writes `cancelled` after the engine's `failed`): `done` below
            finished = true;
          }
          poke();
        });
        active?.done.then(() => {
          finished = true;
          poke();
        });
      } else {
        // woken at once when the run ends in this service (one hook per stream)
        s.runs.get(runId)?.done.then(poke);
      }
      /**
       * Sends `events` (journal events in id order) merged with the pending live events; stops
       * when the stream is full (the live events not sent stay pending). Returns how many of
       * `events` were sent.
       */
      const sendBatch = (events: RunEventRecord[]): number => {
        if (pending.length === 0) {
          for (let i = 0; i < events.length; i++) {
            if (full()) return i;
            send(block(events[i]));
          }
          return events.length;
        }
        const live = pending;
        pending = [];
        const journaled = new Set<string>();
        for (const e of events) {
          if (e.type === "step_started") journaled.add(startKey(e.runId, e.stepIndex, e.attempt));
        }
        let j = 0;
        let i = 0;
        const sendLive = (r: LiveRecord) => {
          if (r.type === "step_started") {
            const k = startKey(r.runId, r.stepIndex, r.attempt);
            if (journaled.has(k) || startsSent.has(k)) return;
            startsSent.add(k);
          }
          send(liveBlock(r));
        };
        const stop = () => {
          pending = live.slice(j);
          return i;
        };
        for (; i < events.length; i++) {
          const e = events[i];
          const t = Date.parse(e.at);
          // live events from before this one, and the start of the step this one finishes
          while (j < live.length && (live[j].ms < t || sameStep(live[j], e))) {
            if (full()) return stop();
            sendLive(live[j++]);
          }
          if (full()) return stop();
          send(block(e));
        }
        while (j < live.length) {
          if (full()) return stop();
          sendLive(live[j++]);
        }
        return events.length;
      };
      const block = (e: RunEventRecord) => {
        after = e.id;
        const k = startKey(e.runId, e.stepIndex, e.attempt);
        if (e.type === "step_started" && startsSent.delete(k)) {
          return `id: ${e.id}\n\n`; // sent live already: only the id moves on
        }
        // the step's end: its start (journaled or not) is behind
        if (e.type !== "step_started" && e.stepIndex !== undefined) startsSent.delete(k);
        return journalBlock(e);
      };
      (async () => {
        let lastSent = Date.now();
        /** The run has finished: the journal is read to its end, then `end` is sent. */
        let endStatus: string | undefined;
        /**
         * Events read at once: a page, or about twice what fitted in the stream last time it
         * filled up (the events that did not fit are read again: not kept for a slow client).
         */
        let limit = PAGE;
        send("retry: 1000\n\n");
        while (!closed) {
          // the client has not taken what was sent: read nothing more until it does
          await waitForRoom();
          if (closed) break;
          if (owned && woken) {
            woken = false;
            // the writes behind the events that woke us are committed in this turn's commit
            // (when it fails, the journal shows what was stored, and the run's end says 507)
            await s.store.committed().catch(() => {});
          }
          const read = limit;
          const events: RunEventRecord[] = await s.store.getEvents({
            ...filter,
            afterId: after,
            limit: read,
          });
          const hadLive = pending.length > 0;
          const sent = sendBatch(events);
          if (sent > 0 || hadLive) lastSent = Date.now();
          if (sent < events.length) {
            // the stream filled up: the rest is read again once the client takes what it holds
            limit = Math.min(PAGE, Math.max(16, 2 * sent));
            continue;
          }
          limit = Math.min(PAGE, 2 * limit);
          if (events.length === read) continue;
          if (endStatus !== undefined) {
            send(`event: end\ndata: ${stringifyJson({ runId, status: endStatus })}\n\n`);
            break;
          }
          if (!owned || finished) {
            const run = await s.store.getRun(runId);
            if (!run || TERMINAL_STATUSES.has(run.status)) {
              // the run's last events were committed with its final status: read the journal to
              // its end (page by page, at the client's pace), then `end`
              endStatus = run?.status ?? "deleted";
              continue;
            }
            if (!owned && !s.runs.accepting && !s.runs.get(runId)) {
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
          }
          if (Date.now() - lastSent >= KEEPALIVE_MS) {
            send(": keep-alive\n\n");
            lastSent = Date.now();
          }
          if (woken) continue;
          // owned: wait for the next event (a keep-alive at most); otherwise poll the journal
          const waitMs = owned && !finished ? KEEPALIVE_MS : EVENT_POLL_MS;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, waitMs);
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
        unlisten?.();
        onEnd();
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
    pull() {
      room?.();
    },
    cancel() {
      closed = true;
      unlisten?.();
      wake?.();
      room?.();
    },
  }, { highWaterMark: HWM, size: (chunk) => chunk.byteLength });
}
