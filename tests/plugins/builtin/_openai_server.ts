/**
 * A local OpenAI-compatible HTTP server for tests, on 127.0.0.1 port 0: `POST
 * /v1/chat/completions` answers from a queue of scripted replies (a completion, a stream of
 * chunks, an HTTP error with headers, a hang until the client goes away), else echoes the last
 * user message. Every request is recorded (method, path, headers, parsed body) so tests check
 * what a component sends.
 * @module
 */

/** A request as the server saw it. */
export interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** What the server answers to one request. */
export type Reply =
  | {
    kind: "completion";
    content?: string | null;
    toolCalls?: { id: string; name: string; arguments: string }[];
    refusal?: string;
    finishReason?: string;
    model?: string;
    usage?: Record<string, number> | null;
  }
  | {
    kind: "stream";
    /** Text pieces, one chunk each. */
    pieces: string[];
    toolCalls?: { id: string; name: string; arguments: string }[];
    finishReason?: string;
    model?: string;
    usage?: Record<string, number> | null;
  }
  | { kind: "status"; status: number; body?: unknown; headers?: Record<string, string> }
  /**
   * Any text or bytes with any status and content type (answers that are not what a client
   * expects); `pieces` > 0 sends the body in that many chunks without a Content-Length.
   */
  | {
    kind: "raw";
    status?: number;
    text: string | Uint8Array<ArrayBuffer>;
    contentType?: string;
    pieces?: number;
  }
  | { kind: "hang" };

/** A running fake server. */
export interface FakeOpenAI {
  /** `http://127.0.0.1:<port>/v1` */
  baseUrl: string;
  requests: Recorded[];
  /** Replies used in order, one per request; when empty the server echoes. */
  replies: Reply[];
  /** Resolves when a `hang` reply's request has arrived (for timeout/cancel tests). */
  hanging: () => Promise<void>;
  /** Resolves when a `hang` request's client went away (the component aborted the request). */
  hangAborted: () => Promise<void>;
  close(): Promise<void>;
}

const USAGE = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };

/** Starts the server. */
export function startFakeOpenAI(): FakeOpenAI {
  const requests: Recorded[] = [];
  const replies: Reply[] = [];
  let hangArrived!: () => void;
  let hangPromise = new Promise<void>((r) => hangArrived = r);
  let abortSeen!: () => void;
  let abortPromise = new Promise<void>((r) => abortSeen = r);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const url = new URL(req.url);
      const text = await req.text();
      let body: unknown = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      requests.push({
        method: req.method,
        path: url.pathname,
        headers: Object.fromEntries(req.headers),
        body,
      });
      if (url.pathname !== "/v1/chat/completions") {
        return Response.json({ error: { message: "not found" } }, { status: 404 });
      }
      // deno-lint-ignore no-explicit-any
      const b = body as any;
      const reply: Reply = replies.shift() ??
        (b?.stream
          ? { kind: "stream", pieces: echo(b).match(/.{1,4}/gs) ?? [""] }
          : { kind: "completion", content: echo(b) });
      switch (reply.kind) {
        case "status":
          return new Response(
            reply.body === undefined ? null : JSON.stringify(reply.body),
            {
              status: reply.status,
              headers: { "content-type": "application/json", ...reply.headers },
            },
          );
        case "raw":
          return new Response(reply.pieces ? inPieces(reply.text, reply.pieces) : reply.text, {
            status: reply.status ?? 200,
            headers: { "content-type": reply.contentType ?? "application/json" },
          });
        case "hang": {
          // Headers at once, then a space (JSON) or an SSE comment every 20 ms and never an
          // answer: the writes make a client that went away show up as a cancelled body (a
          // server that only waits does not notice a closed connection reliably).
          hangArrived();
          let timer: ReturnType<typeof setInterval> | undefined;
          const done = () => {
            clearInterval(timer);
            abortSeen();
            hangPromise = new Promise<void>((r) => hangArrived = r);
            abortPromise = new Promise<void>((r) => abortSeen = r);
          };
          const tick = new TextEncoder().encode(b?.stream ? ": waiting\n\n" : " ");
          const body = new ReadableStream<Uint8Array>({
            start(controller) {
              timer = setInterval(() => {
                try {
                  controller.enqueue(tick);
                } catch {
                  done();
                }
              }, 20);
            },
            cancel: done,
          });
          return new Response(body, {
            headers: { "content-type": b?.stream ? "text/event-stream" : "application/json" },
          });
        }
        case "completion":
          return Response.json(completion(reply, b?.model));
        case "stream":
          return streamResponse(reply, b?.model, b?.stream_options?.include_usage === true);
      }
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    replies,
    hanging: () => hangPromise,
    hangAborted: () => abortPromise,
    close: () => server.shutdown(),
  };
}

/** `body` as a stream of `n` chunks (cut at byte offsets, so a UTF-8 sequence may be split). */
function inPieces(body: string | Uint8Array, n: number): ReadableStream<Uint8Array> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const size = Math.max(1, Math.ceil(bytes.length / n));
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

// deno-lint-ignore no-explicit-any
function echo(body: any): string {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  // deno-lint-ignore no-explicit-any
  const last = [...msgs].reverse().find((m: any) => m.role === "user");
  return `echo: ${
    typeof last?.content === "string" ? last.content : JSON.stringify(last?.content)
  }`;
}

function toolCallsOf(calls: { id: string; name: string; arguments: string }[] | undefined) {
  return calls?.map((c) => ({
    id: c.id,
    type: "function",
    function: { name: c.name, arguments: c.arguments },
  }));
}

function completion(r: Extract<Reply, { kind: "completion" }>, model: string | undefined) {
  const message: Record<string, unknown> = {
    role: "assistant",
    content: r.content === undefined ? null : r.content,
    refusal: r.refusal ?? null,
  };
  if (r.toolCalls) message.tool_calls = toolCallsOf(r.toolCalls);
  return {
    id: "chatcmpl-test",
    object: "chat.completion",
    created: 1_700_000_000,
    model: r.model ?? `${model}-served`,
    choices: [{
      index: 0,
      message,
      finish_reason: r.finishReason ?? (r.toolCalls ? "tool_calls" : "stop"),
      logprobs: null,
    }],
    usage: r.usage === undefined ? USAGE : r.usage,
  };
}

function streamResponse(
  r: Extract<Reply, { kind: "stream" }>,
  model: string | undefined,
  includeUsage: boolean,
): Response {
  const base = {
    id: "chatcmpl-test",
    object: "chat.completion.chunk",
    created: 1_700_000_000,
    model: r.model ?? `${model}-served`,
  };
  const events: unknown[] = [];
  events.push({ ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" } }] });
  for (const p of r.pieces) {
    events.push({ ...base, choices: [{ index: 0, delta: { content: p }, finish_reason: null }] });
  }
  (r.toolCalls ?? []).forEach((c, i) => {
    // name first, then the arguments in two pieces, as OpenAI streams them
    events.push({
      ...base,
      choices: [{
        index: 0,
        delta: {
          tool_calls: [{
            index: i,
            id: c.id,
            type: "function",
            function: { name: c.name, arguments: "" },
          }],
        },
      }],
    });
    const half = Math.floor(c.arguments.length / 2);
    for (const part of [c.arguments.slice(0, half), c.arguments.slice(half)]) {
      events.push({
        ...base,
        choices: [{
          index: 0,
          delta: { tool_calls: [{ index: i, function: { arguments: part } }] },
        }],
      });
    }
  });
  events.push({
    ...base,
    choices: [{
      index: 0,
      delta: {},
      finish_reason: r.finishReason ?? (r.toolCalls ? "tool_calls" : "stop"),
    }],
  });
  if (includeUsage) {
    events.push({ ...base, choices: [], usage: r.usage === undefined ? USAGE : r.usage });
  }
  const body = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n";
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}
