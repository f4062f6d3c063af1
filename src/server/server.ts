/**
 * The REST service as a fetch handler made from an engine: stepflow 0.8's 21 operations under
 * `/api/v1` (camelCase, error body `{code, message, stack?}`) without 0.8's quirks, plus
 * `wait`/`timeoutSecs`, idempotency keys, `/metrics`, `/health`, the OpenAPI 3.1 document at
 * `/api/v1/openapi.json` (generated from the zod schemas the handlers validate with) and an API
 * reference page at `/swagger-ui`. See docs/server.md.
 *
 * ```ts ignore
 * import { createServer, Engine, defaultConfig } from "./mod.ts";
 *
 * const engine = await Engine.create(defaultConfig());
 * const server = createServer(engine);
 * Deno.serve({ hostname: "127.0.0.1", port: 7840 }, server.fetch);
 * // ... later: await server.shutdown(); await engine.close();
 * ```
 * @module
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { cors } from "hono/cors";
import type { Context } from "hono";
import { timingSafeEqual } from "node:crypto";
import type { Engine } from "../execution/engine.ts";
import { describeError } from "../errors.ts";
import { logger } from "../log.ts";
import { headAnswer } from "./head.ts";
import { allowedMethods } from "./allowed_methods.ts";
import { ApiError } from "./api_error.ts";
import { DEFAULT_MAX_BODY_BYTES, jsonBody } from "./body.ts";
import type { Service } from "./context.ts";
import { ServiceMetrics } from "./metrics.ts";
import { referencePage } from "./reference_page.ts";
import { addBatchRoutes } from "./routes_batches.ts";
import { addEventRoutes } from "./routes_events.ts";
import { addFlowRoutes } from "./routes_flows.ts";
import { addGraphRoutes } from "./routes_graph.ts";
import { addRunRoutes } from "./routes_runs.ts";
import { addDebugRoutes } from "./routes_debug.ts";
import { addUiRoutes } from "./routes_ui.ts";
import { BatchService } from "./batches.ts";
import { RunService } from "./runs.ts";
import { ServiceStore } from "./store_adapter.ts";
import { Cluster, type ClusterOptions } from "./cluster.ts";
import { addEngineRoutes } from "./routes_engines.ts";
import { LiveEvents } from "./live_events.ts";
import { DebugSessions } from "./debug.ts";
import { type DeadEngineRecovery, type OrphanOptions, OrphanWatch } from "./orphans.ts";

const log = logger("serve");

/** The version the service reports (`/health`, `/metrics`, the OpenAPI document). */
export const SERVICE_VERSION = "0.1.0";

/** Options of {@linkcode createServer}. */
export interface ServerOptions {
  /**
   * Require `Authorization: Bearer <token>` on every route but `/health` and
   * `/api/v1/health` (401 otherwise).
   */
  token?: string;
  /** Largest request body in bytes; larger ones get 413. @default 10 MiB */
  maxBodyBytes?: number;
  /** Runs executing at once; more are queued. @default 100 */
  maxConcurrentRuns?: number;
  /** Runs waiting in the queue; more get 429. @default 10000 */
  maxQueuedRuns?: number;
  /**
   * Run event streams (`GET /runs/{id}/events`) open at once; more get 429 with `Retry-After`.
   * Each holds up to 64 KiB and 1000 live events for a client that does not read.
   * @default 1000 (`DEFAULT_MAX_EVENT_STREAMS` of src/server/routes_events.ts)
   */
  maxEventStreams?: number;
  /**
   * Origins allowed to call the API from a browser (CORS), e.g. `["http://localhost:7837"]`, or
   * `["*"]`. Default: none (0.8 allowed every origin).
   */
  corsOrigins?: string[];
  /**
   * Host header values accepted (lowercase `host` or `host:port`): a guard against DNS rebinding
   * for a service on a loopback address without a token. Default: any.
   */
  allowedHosts?: string[];
  /**
   * With a PostgreSQL store (issue 14): run as one of the engines sharing it — runs are queued in
   * the database and claimed by any engine (src/server/cluster.ts); `false` executes the runs
   * submitted here only. Claiming starts with `server.service.cluster.start(url)` (`listen`
   * does it). @default true for a PostgreSQL store
   */
  cluster?: boolean | ClusterOptions;
  /**
   * Where an SQLite store commits: `worker` (a worker thread with its own connection:
   * src/state/sqlite_commit.ts) or `loop` (on the event loop, as `stepflow run` does).
   * @default "worker"
   */
  sqliteCommits?: "worker" | "loop";
  /**
   * With a store shared by processes (SQLite): how this service deals with the runs of services
   * that died (`kill -9`, a crash) while it runs — checked every `everyMs`, marked interrupted,
   * and resumed here unless `resume: false` (src/server/orphans.ts); `false`: not checked (they
   * are found when a service next starts). @default { resume: true, everyMs: 2000 }
   */
  orphans?: OrphanOptions | false;
}

/** A service: the fetch handler and what runs behind it. */
export interface StepflowServer {
  /** The fetch handler (`Deno.serve(options, server.fetch)`, or mount it in another app). */
  fetch: (request: Request, info?: unknown) => Response | Promise<Response>;
  /** The Hono app (routes under `/api/v1`, `/health`, `/metrics`, `/swagger-ui`). */
  app: OpenAPIHono;
  /** The runs, batches and metrics behind the routes. */
  service: Service;
  /** The OpenAPI 3.1 document. */
  openapi(): Record<string, unknown>;
  /**
   * Stops accepting runs (503), lets active runs finish for up to `graceMs` (default 30 s), then
   * cancels the rest. Does not close the engine (its owner does).
   */
  shutdown(
    graceMs?: number,
  ): Promise<{ finished: number; cancelled: number; released?: number }>;
}

/**
 * Builds the REST service on `engine` (its plugins, config and state store).
 * @throws {RangeError} for invalid limits.
 */
export function createServer(engine: Engine, options: ServerOptions = {}): StepflowServer {
  // an SQLite store commits in a worker thread: its statements and COMMITs leave the event loop
  // that answers the requests (src/state/sqlite_commit.ts)
  const sqlite = engine.store as { useCommitWorker?: () => Promise<void> };
  if (options.sqliteCommits !== "loop") sqlite.useCommitWorker?.();
  const metrics = new ServiceMetrics();
  const store = new ServiceStore(engine.store);
  const runs = new RunService(engine, store, metrics, options);
  const batches = new BatchService(runs, store, metrics);
  const live = new LiveEvents();
  const unobserve = engine.observe(live);
  const service: Service = {
    engine,
    store,
    runs,
    batches,
    metrics,
    live,
    debug: new DebugSessions(store, live),
    version: SERVICE_VERSION,
  };
  // a debug run resumed (at start, POST /resume, or taken over in a cluster) is held again
  runs.resumeGate = service.debug.resumeGate(async (flowId) =>
    (await engine.getFlow(flowId)).steps.map((st) => st.id)
  );
  if (engine.store.kind === "postgres" && options.cluster !== false) {
    service.cluster = new Cluster(
      engine,
      runs,
      { token: options.token, ...(typeof options.cluster === "object" ? options.cluster : {}) },
    );
    const cluster = service.cluster;
    batches.distributedCancel = async (runId, reason) => {
      if ((await cluster.cancel(runId, reason)) === undefined) await runs.cancel(runId, reason);
    };
  }
  const recovery = engine.store as Partial<DeadEngineRecovery>;
  if (
    service.cluster === undefined && options.orphans !== false &&
    typeof recovery.recoverDeadEngines === "function"
  ) {
    service.orphans = new OrphanWatch(recovery as DeadEngineRecovery, runs, options.orphans);
    service.orphans.start();
  }
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBody) || maxBody < 1) {
    throw new RangeError(`maxBodyBytes must be a positive integer, got ${maxBody}`);
  }

  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (result.success) return;
      return c.json(
        { code: 400, message: validationMessage(result.target, result.error) },
        400,
      );
    },
  });

  /** GET requests made from HEAD requests ({@linkcode headAnswer}): counted as HEAD. */
  const heads = new WeakSet<Request>();
  const methodOf = (c: Context): string => heads.has(c.req.raw) ? "HEAD" : c.req.method;
  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    metrics.request(methodOf(c), routeOf(c.req.routePath), c.res.status, performance.now() - t0);
  });
  if (options.allowedHosts) {
    const allowed = new Set(options.allowedHosts.map((h) => h.toLowerCase()));
    app.use("*", async (c, next) => {
      const host = (c.req.header("host") ?? "").toLowerCase();
      if (!allowed.has(host) && !allowed.has(host.replace(/:\d+$/, ""))) {
        throw new ApiError(
          403,
          `Host '${host}' is not allowed: this service answers requests to ${
            [...allowed].join(", ")
          } (start it with --token to accept other names)`,
        );
      }
      await next();
    });
  }
  if (options.corsOrigins && options.corsOrigins.length > 0) {
    const origins = options.corsOrigins;
    app.use(
      "*",
      cors({
        origin: origins.includes("*") ? "*" : origins,
        allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
        allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
      }),
    );
  }
  if (options.token !== undefined) {
    const want = new TextEncoder().encode(`Bearer ${options.token}`);
    app.use("*", async (c, next) => {
      const path = c.req.path;
      if (path === "/health" || path === "/api/v1/health" || c.req.method === "OPTIONS") {
        return await next();
      }
      // the web UI's static files hold no data; the page sends the token on its API calls
      if ((path === "/ui" || path.startsWith("/ui/")) && c.req.method === "GET") {
        return await next();
      }
      const got = c.req.header("authorization");
      if (got === undefined) {
        throw new ApiError(
          401,
          "This service needs a token: send the header 'Authorization: Bearer <token>' (the token given to stepflow serve with --token or STEPFLOW_TOKEN)",
          undefined,
          { "WWW-Authenticate": 'Bearer realm="stepflow"' },
        );
      }
      const bytes = new TextEncoder().encode(got);
      if (bytes.length !== want.length || !timingSafeEqual(bytes, want)) {
        throw new ApiError(401, "Wrong token in the Authorization header", undefined, {
          "WWW-Authenticate": 'Bearer realm="stepflow", error="invalid_token"',
        });
      }
      await next();
    });
  }
  // every query parameter of the API is one value: one given twice (`?limit=1&limit=2`) was read
  // as a list and refused as "expected number, received NaN"
  app.use("/api/*", async (c, next) => {
    if (c.req.url.includes("?")) {
      const seen = new Set<string>();
      for (const k of new URL(c.req.url).searchParams.keys()) {
        if (seen.has(k)) {
          throw new ApiError(400, `Query parameter '${k}' is given more than once: give it once`);
        }
        seen.add(k);
      }
    }
    await next();
  });
  // aborted at shutdown: a body still arriving is answered 503 instead of holding the drain
  const stopping = new AbortController();
  app.use("/api/*", jsonBody(maxBody, { stopping: stopping.signal }));

  addFlowRoutes(app, service);
  addRunRoutes(app, service);
  addDebugRoutes(app, service);
  addBatchRoutes(app, service);
  addEventRoutes(app, service, options.maxEventStreams);
  addGraphRoutes(app, service);
  addEngineRoutes(app, service);
  addUiRoutes(app);

  let doc: Record<string, unknown> | undefined;
  const openapi = () =>
    doc ??= app.getOpenAPI31Document({
      openapi: "3.1.0",
      info: {
        title: "Stepflow API",
        version: SERVICE_VERSION,
        description:
          "Stepflow's REST service: stepflow 0.8's API (flows, runs, batches, components) without its quirks, plus async runs, idempotency keys and metrics. Errors are {code, message, stack?}.",
      },
      tags: [
        { name: "Health" },
        { name: "Component" },
        { name: "Flow" },
        { name: "Run" },
        { name: "Batch" },
        { name: "Debug" },
        { name: "Engine" },
      ],
    }) as unknown as Record<string, unknown>;
  app.get("/api/v1/openapi.json", (c) => c.json(openapi()));
  let page: string | undefined;
  const reference = (c: Context) => c.html(page ??= referencePage(openapi()));
  app.get("/swagger-ui", reference);
  app.get("/swagger-ui/", reference);
  app.get("/docs", reference);
  app.get("/", (c) => c.redirect("/ui"));
  app.get("/metrics", (c) =>
    c.body(metrics.text(SERVICE_VERSION), 200, {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
    }));

  let allowed: ((path: string) => string[]) | undefined;
  app.notFound((c) => {
    // a real route asked with another method: 405 with the methods it takes
    const allow = (allowed ??= allowedMethods(app.routes))(c.req.path);
    if (allow.length > 0) {
      return c.json(
        {
          code: 405,
          message: `Method ${methodOf(c)} is not allowed on ${c.req.path}: use ${
            allow.filter((m) => m !== "HEAD").join(" or ")
          }`,
        },
        405,
        { Allow: allow.join(", ") },
      );
    }
    return c.json({
      code: 404,
      message: `No route for ${
        methodOf(c)
      } ${c.req.path}: the API is under /api/v1 (see /api/v1/openapi.json or /swagger-ui)`,
    }, 404);
  });
  app.onError((err, c) => {
    if (err instanceof ApiError) {
      return c.json(err.body(), err.status as 400, err.headers);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const message = status === 415
        ? "Unsupported Media Type: send the body as JSON with 'Content-Type: application/json'"
        : err.message || `HTTP ${status}`;
      return c.json({ code: status, message }, status);
    }
    log.error(`${methodOf(c)} ${c.req.path}: ${describeError(err)}`);
    return c.json({
      code: 500,
      message: `Internal error: ${describeError(err)}`,
      stack: [{ error: describeError(err) }],
    }, 500);
  });

  return {
    fetch: (request: Request, info?: unknown) =>
      request.method === "HEAD"
        ? headAnswer(request, (get) => app.fetch(get, info as never), heads)
        : app.fetch(request, info as never),
    app,
    service,
    openapi,
    shutdown: async (graceMs = 30_000) => {
      stopping.abort();
      service.cluster?.stop();
      service.orphans?.stop();
      try {
        return await runs.drain(graceMs);
      } finally {
        service.cluster?.close();
        unobserve();
      }
    },
  };
}

function routeOf(path: string | undefined): string {
  return !path || path === "*" || path === "/*" || path === "/api/*" ? "unmatched" : path;
}

/** `Invalid request body: $.flowId: expected string, received undefined; ...`. */
function validationMessage(target: string, error: unknown): string {
  const issues = (error as { issues?: { path: PropertyKey[]; message: string }[] }).issues ?? [];
  const where = target === "json"
    ? "request body"
    : target === "query"
    ? "query"
    : target === "param"
    ? "path"
    : target === "header"
    ? "header"
    : target;
  const parts = issues.slice(0, 5).map((i) => {
    let p = target === "json" ? "$" : "";
    for (const seg of i.path) {
      if (typeof seg === "number") p += `[${seg}]`;
      else p += p === "" ? String(seg) : `.${String(seg)}`;
    }
    return `${p || "(root)"}: ${i.message}`;
  });
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : "";
  return `Invalid ${where}: ${parts.join("; ")}${more}`;
}
