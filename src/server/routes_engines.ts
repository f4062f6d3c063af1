/**
 * `GET /api/v1/engines` (extension, issue 14): the engines sharing this service's store — with a
 * PostgreSQL store, every `stepflow serve` process on it (id, URL, host, pid, start, heartbeat,
 * alive); otherwise this engine alone.
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { ApiApp, Service } from "./context.ts";
import { json } from "./openapi.ts";

const EngineSchema = z.object({
  engineId: z.string(),
  url: z.string().optional().openapi({ description: "Where its service answers" }),
  host: z.string().optional(),
  pid: z.number().int().optional(),
  startedAt: z.string().openapi({ description: "RFC 3339" }),
  heartbeatAt: z.string().openapi({ description: "RFC 3339: its last heartbeat" }),
  alive: z.boolean().openapi({ description: "Its heartbeat is within the lease TTL" }),
  self: z.boolean().openapi({ description: "The engine answering this request" }),
  runningRuns: z.number().int().optional().openapi({
    description: "Runs executing on it (the answering engine only)",
  }),
}).openapi("Engine");

const EnginesResponse = z.object({
  engines: z.array(EngineSchema),
  leaseTtlMs: z.number().int().optional().openapi({
    description: "How long a run's lease lasts without renewal (PostgreSQL store)",
  }),
}).openapi("EnginesResponse");

/** Adds `GET /api/v1/engines`. */
export function addEngineRoutes(app: ApiApp, s: Service): void {
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/engines",
      tags: ["Engine"],
      summary: "The engines sharing this service's store",
      description:
        "Extension. With a PostgreSQL store, every engine registered in its `engines` table (each `stepflow serve` on the database renews its row with its heartbeat; rows silent for ten lease lengths are removed), oldest first. With another store, this engine alone.",
      responses: { 200: { description: "Engines", content: json(EnginesResponse) } },
    }),
    async (c) => {
      const running = s.runs.running;
      if (s.cluster === undefined) {
        const now = new Date().toISOString();
        return c.json({
          engines: [{
            engineId: s.engine.store.engineId,
            pid: Deno.pid,
            startedAt: STARTED_AT,
            heartbeatAt: now,
            alive: true,
            self: true,
            runningRuns: running,
          }],
        }, 200);
      }
      const engines = (await s.cluster.engines()).map((e) =>
        e.self ? { ...e, runningRuns: running } : e
      );
      return c.json({ engines, leaseTtlMs: s.cluster.leaseTtlMs }, 200);
    },
  );
}

const STARTED_AT = new Date().toISOString();
