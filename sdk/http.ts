/**
 * Serving a step service (a `StepflowServer`, sdk/server.ts) over HTTP (stepflow 0.8 §3.5, as the Python SDK does):
 * `POST /` takes one JSON-RPC message; a request is answered with a JSON body, except
 * `components/execute` of a component that uses its context, which is answered with an SSE
 * stream carrying the component's requests to the engine and, last, the response. The engine
 * posts its answers to those requests to `/` (answered 202). `GET /health` reports
 * `{status: "healthy", instanceId, timestamp, service}`. Every response carries
 * `Stepflow-Instance-Id`.
 * @module
 */
import {
  classifyMessage,
  errorText,
  requestText,
  resultText,
  toRpcError,
} from "../src/protocol/envelope.ts";
import { sseEvent } from "../src/protocol/sse.ts";
import { INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR } from "../src/core/rpc_error_codes.ts";
import type { JsonValue } from "../src/json/exact_json.ts";
import { EngineError, type MessageHandler } from "./context.ts";

/** Options of {@linkcode serveHttp}. */
export interface HttpServeOptions {
  /** @default 8080 (0 picks a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  hostname?: string;
  /** @default 16 random hex characters */
  instanceId?: string;
  /** Called once listening (default: prints `listening on http://H:P` to stderr). */
  onListen?: (addr: { hostname: string; port: number }) => void;
}

/** A running HTTP step service. */
export interface HttpWorkerServer {
  /** Where it listens. */
  addr: { hostname: string; port: number };
  /** Its instance id (the `Stepflow-Instance-Id` header). */
  instanceId: string;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
  /** Stops the server. */
  shutdown(): Promise<void>;
}

/** Starts the HTTP server. Resolves once it listens. */
export function serveHttp(
  server: MessageHandler,
  options: HttpServeOptions = {},
): Promise<HttpWorkerServer> {
  const instanceId = options.instanceId ??
    [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, "0"))
      .join("");
  const base = { "Stepflow-Instance-Id": instanceId };
  const jsonHeaders = { "Stepflow-Instance-Id": instanceId, "content-type": "application/json" };
  /** The engine's answers to our SSE-carried requests, by request id. */
  const waiting = new Map<string, (msg: { result?: unknown; error?: unknown }) => void>();

  const handleExecuteWithStream = (id: unknown, method: string, params: unknown): Response => {
    const enc = new TextEncoder();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let open = true;
    /** Ids of this stream's requests to the engine still waiting for an answer. */
    const mine = new Set<string>();
    const body = new ReadableStream<Uint8Array>({
      start: (c) => void (controller = c),
      cancel: () => {
        // the engine went away: fail the component's open engine calls instead of hanging
        open = false;
        for (const rid of mine) {
          waiting.get(rid)?.({
            error: { code: INTERNAL_ERROR, message: "the engine closed the event stream" },
          });
        }
      },
    });
    const push = (text: string): boolean => {
      if (!open) return false;
      try {
        controller.enqueue(enc.encode(sseEvent(text)));
        return true;
      } catch {
        open = false;
        return false;
      }
    };
    const call = (m: string, p: Record<string, unknown>) =>
      new Promise<unknown>((resolve, reject) => {
        const rid = crypto.randomUUID();
        mine.add(rid);
        waiting.set(rid, (msg) => {
          waiting.delete(rid);
          mine.delete(rid);
          if (msg.error) {
            const e = msg.error as { code: number; message: string; data?: unknown };
            reject(new EngineError(e.code, e.message, e.data));
          } else resolve(msg.result);
        });
        if (!push(requestText(rid, m, p))) {
          waiting.get(rid)?.({
            error: { code: INTERNAL_ERROR, message: "the engine closed the event stream" },
          });
        }
      });
    (async () => await server.handle(method, params, call))().then(
      (result) => push(resultText(id as string, result)),
      (err) => push(errorText(id as string, toRpcError(err))),
    ).finally(() => {
      if (open) {
        open = false;
        controller.close();
      }
    });
    return new Response(body, {
      headers: { ...base, "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  };

  const handler = async (req: Request): Promise<Response> => {
    const path = pathOf(req.url);
    if (req.method === "GET" && path === "/health") {
      return Response.json({
        status: "healthy",
        instanceId,
        timestamp: new Date().toISOString(),
        service: server.name,
      }, { headers: base });
    }
    if (req.method !== "POST" || path !== "/") {
      return new Response("not found: POST / or GET /health\n", { status: 404, headers: base });
    }
    const type = req.headers.get("content-type") ?? "";
    if (!type.includes("application/json")) {
      return new Response("Content-Type must be application/json\n", {
        status: 415,
        headers: base,
      });
    }
    let value: JsonValue;
    try {
      value = JSON.parse(await req.text());
    } catch {
      return new Response(
        errorText(null, { code: PARSE_ERROR, message: "Parse error: the body is not JSON" }),
        { status: 400, headers: jsonHeaders },
      );
    }
    const msg = classifyMessage(value);
    switch (msg.kind) {
      case "request": {
        if (
          server.usesContext(msg.method, msg.params) &&
          (req.headers.get("accept") ?? "").includes("text/event-stream")
        ) {
          return handleExecuteWithStream(msg.id, msg.method, msg.params);
        }
        const noCall = () =>
          Promise.reject(
            new Error("this component cannot call the engine: its caller does not accept SSE"),
          );
        let text: string;
        try {
          text = resultText(msg.id, await server.handle(msg.method, msg.params, noCall));
        } catch (err) {
          text = errorText(msg.id, toRpcError(err));
        }
        return new Response(text, { headers: jsonHeaders });
      }
      case "response": {
        waiting.get(String(msg.id))?.(msg);
        return new Response(null, { status: 202, headers: base });
      }
      case "notification":
        server.notify(msg.method);
        return new Response(null, { status: 202, headers: base });
      default:
        return new Response(
          errorText(null, { code: INVALID_REQUEST, message: `Invalid request: ${msg.reason}` }),
          { status: 400, headers: jsonHeaders },
        );
    }
  };

  const httpServer = Deno.serve({
    port: options.port ?? 8080,
    hostname: options.hostname ?? "127.0.0.1",
    onListen: () => {},
  }, handler);
  const addr = { hostname: httpServer.addr.hostname, port: httpServer.addr.port };
  if (options.onListen) options.onListen(addr);
  else console.error(`listening on http://${addr.hostname}:${addr.port}`);
  return Promise.resolve({
    addr,
    instanceId,
    finished: httpServer.finished,
    shutdown: () => httpServer.shutdown(),
  });
}

/** The path of an absolute URL (`http://h:p/x?y` → `/x`), without a full URL parse. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  let end = url.length;
  const q = url.indexOf("?", start);
  if (q >= 0) end = q;
  const h = url.indexOf("#", start);
  if (h >= 0 && h < end) end = h;
  return url.slice(start, end);
}
