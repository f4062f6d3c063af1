/**
 * Pictures of flows (extension): `GET /flows/{flowId}/graph` draws a stored flow as SVG, Mermaid
 * or DOT (what `stepflow visualize` draws, src/visualize), and `GET /runs/{runId}/graph` draws a
 * run's flow as SVG with each step's node carrying its status class (`status-completed`, ...), so
 * a page can show it and recolour nodes as the run's events arrive (the web UI does).
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Flow } from "../flow/model.ts";
import { Router } from "../config/router.ts";
import { buildFlowGraph, type FlowGraph } from "../visualize/graph.ts";
import { type GraphLayout, layoutGraph, LayoutTooLargeError } from "../visualize/layout.ts";
import { renderLayoutSvg } from "../visualize/svg.ts";
import { renderMermaid } from "../visualize/mermaid.ts";
import { renderDot } from "../visualize/dot.ts";
import { ApiError, runNotFound } from "./api_error.ts";
import { type ApiApp, flowById, runIdParam, type Service } from "./context.ts";
import { runSteps } from "./step_details.ts";
import { errors } from "./openapi.ts";
import * as S from "./schemas.ts";

/** Drawn graphs kept per service (flows are content-addressed: a flow id always draws the same). */
const MAX_CACHED = 64;

/**
 * Most nodes the service lays out as SVG. The layout runs on the event loop that every run of the
 * service shares, about 0.3 ms a node on a loaded 2-core machine: a 20,000-step flow held up
 * every run, `/health` and every other request for 6 s (a 60,000-step flow fits the body limit).
 * Mermaid and DOT text are not laid out: they are drawn for any flow.
 */
export const MAX_SVG_NODES = 2_000;

/**
 * Most layout points (boxes, edge crossings of layers, edge points) the service lays out as SVG:
 * 2,000 steps in a chain take about 8,000, 60 steps each reading every earlier one 144,000 (0.5 s);
 * 300 such steps took 46 s and made a 97 MB picture.
 */
export const MAX_SVG_POINTS = 200_000;

/**
 * 422 for an SVG of `graph` when it has more than {@linkcode MAX_SVG_NODES} nodes, naming what to
 * do instead; undefined when it may be drawn.
 */
function tooLargeToLayOut(graph: FlowGraph, instead: string): ApiError | undefined {
  if (graph.nodes.length <= MAX_SVG_NODES) return undefined;
  return new ApiError(
    422,
    `The flow has ${graph.nodes.length} nodes to draw, more than the ${MAX_SVG_NODES} the service ` +
      `lays out as SVG (the layout would hold up every run of the service): ${instead}, or draw ` +
      "it with `stepflow visualize --flow FILE -o flow.svg`",
  );
}

const CONTENT_TYPES = {
  svg: "image/svg+xml; charset=utf-8",
  mermaid: "text/vnd.mermaid; charset=utf-8",
  dot: "text/vnd.graphviz; charset=utf-8",
} as const;

const Bool = z.enum(["true", "false"]).optional();

const FlowGraphQuery = z.object({
  format: z.enum(["svg", "mermaid", "dot"]).optional().openapi({
    description: "svg (default), mermaid or dot",
  }),
  expandNested: Bool.openapi({
    description: "Draw nested flows with their steps instead of one node (default false)",
  }),
  details: Bool.openapi({
    description: "Components, markers and edge paths in the labels (default true)",
  }),
});

const RunGraphQuery = FlowGraphQuery.omit({ format: true });

interface Drawn {
  graph: FlowGraph;
  layout?: GraphLayout;
  text: Partial<Record<keyof typeof CONTENT_TYPES, { body: string; etag: string }>>;
}

/** Adds the graph routes. */
export function addGraphRoutes(app: ApiApp, s: Service): void {
  const cache = new Map<string, Drawn>();
  let router: Router | undefined;
  const resolvePlugin = (component: string) => {
    try {
      router ??= new Router(s.engine.config.config);
      return router.resolveStatic(component)?.plugin;
    } catch {
      return undefined;
    }
  };
  const drawn = (flowId: string, flow: Flow, expandNested: boolean, details: boolean): Drawn => {
    const key = `${flowId}|${expandNested}|${details}`;
    let d = cache.get(key);
    if (d) {
      cache.delete(key); // most recently used last
    } else {
      d = { graph: buildFlowGraph(flow, { expandNested, resolvePlugin }), text: {} };
      if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    }
    cache.set(key, d);
    return d;
  };
  const layoutOf = (d: Drawn, details: boolean, instead: string) => {
    if (d.layout !== undefined) return d.layout;
    try {
      return d.layout = layoutGraph(d.graph, { details, maxPoints: MAX_SVG_POINTS });
    } catch (e) {
      if (!(e instanceof LayoutTooLargeError)) throw e;
      throw new ApiError(
        422,
        `The flow is too large to lay out as SVG here: ${e.message}, over the service's limit ` +
          `(the layout would hold up every run of the service): ${instead}, or draw it with ` +
          "`stepflow visualize --flow FILE -o flow.svg`",
      );
    }
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/flows/{flowId}/graph",
      tags: ["Flow"],
      summary: "Draw a stored flow (SVG, Mermaid or DOT)",
      description:
        'Extension. What `stepflow visualize` draws: nodes for the flow input, each step (id, component, plugin), the output, variables and nested flows; edges for the data references. In the SVG each step is a `<g class="node step step-<id>" data-step-id="<id>">`. The same flow id always gives the same picture (ETag).',
      request: { params: S.FlowIdParams, query: FlowGraphQuery },
      responses: {
        200: {
          description: "The picture",
          content: {
            "image/svg+xml": { schema: z.string() },
            "text/vnd.mermaid": { schema: z.string() },
            "text/vnd.graphviz": { schema: z.string() },
          },
        },
        304: { description: "Not modified (If-None-Match)" },
        ...errors(400, 404, 422),
      },
    }),
    async (c) => {
      const flowId = c.req.valid("param").flowId.toLowerCase();
      const q = c.req.valid("query");
      const format = q.format ?? "svg";
      const details = q.details !== "false";
      const flow = await flowById(s, flowId);
      const d = drawn(flowId, flow, q.expandNested === "true", details);
      let t = d.text[format];
      if (!t) {
        const instead = "get it as text with ?format=mermaid or ?format=dot";
        if (format === "svg") {
          const e = tooLargeToLayOut(d.graph, instead);
          if (e) throw e;
        }
        const body = format === "svg"
          ? renderLayoutSvg(layoutOf(d, details, instead), { details })
          : format === "mermaid"
          ? renderMermaid(d.graph, { details })
          : renderDot(d.graph, { details });
        t = d.text[format] = { body, etag: `"${await digest(body)}"` };
      }
      return answer(c, t.body, CONTENT_TYPES[format], t.etag);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/runs/{runId}/graph",
      tags: ["Run"],
      summary: "Draw a run's flow as SVG, each step with its status",
      description:
        "Extension. The SVG of `GET /flows/{flowId}/graph` for the run's flow, where each step's node also has the class `status-<status>` (completed, failed, skipped, running, runnable, blocked) as `GET /runs/{runId}/steps` reports it.",
      request: { params: S.RunIdParams, query: RunGraphQuery },
      responses: {
        200: {
          description: "The picture",
          content: { "image/svg+xml": { schema: z.string() } },
        },
        ...errors(400, 404, 422),
      },
    }),
    async (c) => {
      const runId = runIdParam(c.req.valid("param").runId);
      const q = c.req.valid("query");
      const details = q.details !== "false";
      const r = await s.store.getRun(runId);
      if (!r) throw runNotFound(runId);
      const flow = await flowById(s, r.flowId);
      const steps = await runSteps(s, r, flow, { statusOnly: true });
      const stepStatus: Record<string, string> = {};
      for (const st of Object.values(steps)) stepStatus[st.stepId] = st.status;
      const d = drawn(r.flowId, flow, q.expandNested === "true", details);
      const instead = `the steps' statuses are in GET /api/v1/runs/${runId}/steps, the flow as ` +
        `text in GET /api/v1/flows/${r.flowId}/graph?format=mermaid`;
      const e = tooLargeToLayOut(d.graph, instead);
      if (e) throw e;
      const body = renderLayoutSvg(layoutOf(d, details, instead), { details, stepStatus });
      return c.body(body, 200, {
        "Content-Type": CONTENT_TYPES.svg,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
      });
    },
  );
}

/** 200 with `body`, or 304 when the client has it (`If-None-Match`). */
function answer(c: Context, body: string, type: string, etag: string): Response {
  const headers = {
    "Content-Type": type,
    "Cache-Control": "no-cache",
    "ETag": etag,
    "X-Content-Type-Options": "nosniff",
  };
  const match = c.req.header("if-none-match");
  if (match !== undefined && match.split(",").some((m) => m.trim() === etag || m.trim() === "*")) {
    return c.body(null, 304, headers);
  }
  return c.body(body, 200, headers);
}

/** A short content hash for an ETag (SHA-256, 24 hex digits). */
export async function digest(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d).subarray(0, 12), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}
