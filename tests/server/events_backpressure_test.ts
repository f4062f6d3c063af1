/**
 * `GET /runs/{id}/events` follows the client's pace: a client that connects and never reads makes
 * the service hold a bounded number of bytes (the stream stops reading the journal), instead of
 * queueing the whole journal in memory (the failing input: a `/builtin/map` of 250 items whose
 * journal is 16 MB, all of it queued for a client that never read). A client that reads gets
 * every event, in order, and resumes with `Last-Event-ID`.
 *
 * The service runs in this process (on 127.0.0.1, port 0) so the test reads the streams'
 * counters ({@linkcode eventStreamStats}); the client is a raw TCP connection.
 * @module
 */
import { assert, assertEquals, assertStrictEquals } from "../_assert.ts";
import { Engine } from "../../src/execution/engine.ts";
import { MemoryStateStore } from "../../src/state/memory.ts";
import { createServer } from "../../src/server/server.ts";
import {
  EVENT_STREAM_HIGH_WATER_BYTES,
  eventStreamStats,
  MAX_PENDING_LIVE_EVENTS,
} from "../../src/server/routes_events.ts";
import { parseConfigValue } from "../../src/config/load.ts";
import { startFakeOpenAI } from "../plugins/builtin/_openai_server.ts";
import { mockComponent, testConfig } from "../execution/_engine_helpers.ts";
import { parseSseBlock, SCHEMA, type SseEvent, withServer } from "./_server.ts";

const ITEMS = 250;
/** Each item's step fails with this message: its `step_failed` event is 64 KiB. */
const MESSAGE = "x".repeat(64 * 1024);

/** Polls `cond` every 20 ms until it holds (generous deadline for a loaded machine). */
async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The events (blocks with data) of a whole stream, and its size in bytes. */
async function readAll(res: Response): Promise<{ events: SseEvent[]; bytes: number }> {
  const text = await res.text();
  const events = text.split("\n\n").map(parseSseBlock).filter((b) => b.hasData).map((b) => b.event);
  return { events, bytes: new TextEncoder().encode(text).length };
}

/** Everything `conn` sends until it closes. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(1 << 16);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The body of an HTTP/1.1 answer with `Transfer-Encoding: chunked`, as text. */
function decodeChunked(bytes: Uint8Array): string {
  const text = new TextDecoder().decode(bytes);
  let at = text.indexOf("\r\n\r\n") + 4;
  assert(/transfer-encoding: chunked/i.test(text.slice(0, at)), text.slice(0, at));
  let body = "";
  for (;;) {
    const eol = text.indexOf("\r\n", at);
    const size = parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return body;
    // sizes count bytes: the events are ASCII
    body += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

async function textOf(url: string): Promise<string> {
  return await (await fetch(url)).text();
}

Deno.test("GET /runs/{id}/events: a client that never reads holds the service to a bounded buffer; readers get every event in order and resume", async () => {
  const engine = await Engine.create(
    testConfig({
      "/fail": mockComponent([[{}, { outcome: "failed", error: { code: 500, message: MESSAGE } }]]),
    }),
    { store: new MemoryStateStore({ journal: true }) },
  );
  const server = createServer(engine);
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, server.fetch);
  const url = `http://127.0.0.1:${(http.addr as Deno.NetAddr).port}`;
  let conn: Deno.TcpConn | undefined;
  try {
    // ITEMS independent steps, each failing with MESSAGE (a step_failed event each)
    const outer = {
      schema: SCHEMA,
      name: "many-events",
      steps: Array.from({ length: ITEMS }, (_, i) => ({
        id: `s${i}`,
        component: "/mock/fail",
        input: {},
      })),
      output: Object.fromEntries(
        Array.from({ length: ITEMS }, (_, i) => [`s${i}`, { $from: { step: `s${i}` } }]),
      ),
    };
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return await res.json();
    };
    const { flowId } = await post("/api/v1/flows", { flow: outer });
    const items = Array.from({ length: ITEMS }, (_, i) => i);
    const run = await post("/api/v1/runs", { flowId, input: { items } });
    assertStrictEquals(run.status, "failed", JSON.stringify(run).slice(0, 500));
    const runId: string = run.runId;

    // a reader gets every journal event once, in id order, then end
    const whole = await readAll(await fetch(`${url}/api/v1/runs/${runId}/events`));
    const withIds = whole.events.filter((e) => e.id !== undefined);
    const ids = withIds.map((e) => Number(e.id));
    assertEquals(ids, [...ids].sort((a, b) => a - b));
    assertStrictEquals(new Set(ids).size, ids.length);
    assertStrictEquals(withIds.filter((e) => e.event === "step_failed").length, ITEMS);
    assertEquals(whole.events.at(-1)?.event, "end");
    assert(whole.bytes > 15_000_000, `${whole.bytes} bytes`);

    // a client that sends the request and never reads
    const before = eventStreamStats.enqueuedBytes;
    eventStreamStats.maxQueuedBytes = 0;
    conn = await Deno.connect({ hostname: "127.0.0.1", port: (http.addr as Deno.NetAddr).port });
    await conn.write(
      new TextEncoder().encode(
        `GET /api/v1/runs/${runId}/events HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`,
      ),
    );
    // the stream fills what the connection buffers, then waits for the client (before the fix
    // it queued the whole journal: the counter reached the journal's size)
    await until(
      "the stream waits for its client (or sent everything)",
      () =>
        eventStreamStats.waitingForClient === 1 ||
        eventStreamStats.enqueuedBytes - before >= whole.bytes,
    );
    // the connection's buffers may grow for a while: wait until nothing moves for a second
    let sent = eventStreamStats.enqueuedBytes - before;
    for (const end = Date.now() + 60_000;;) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = eventStreamStats.enqueuedBytes - before;
      if (now === sent || Date.now() > end) break;
      sent = now;
    }
    // the journal is not read on while the client does not read: the stream stopped before its
    // end and waits (before: all of it was queued at once)
    assertStrictEquals(eventStreamStats.waitingForClient, 1, `${sent} bytes queued`);
    assert(sent < whole.bytes, `${sent} of ${whole.bytes} bytes sent`);
    // what it holds is the high-water mark and one event at most
    assert(
      eventStreamStats.maxQueuedBytes <= EVENT_STREAM_HIGH_WATER_BYTES + 2 * MESSAGE.length,
      `${eventStreamStats.maxQueuedBytes} bytes held`,
    );

    // the client reads now: it gets the whole stream, every event once and in order
    const rest = decodeChunked(await readToEnd(conn));
    conn.close();
    conn = undefined;
    assertStrictEquals(rest, await textOf(`${url}/api/v1/runs/${runId}/events`));
    await until("the stream ends", () => eventStreamStats.waitingForClient === 0);

    // a client that goes away while the stream waits for it: the stream ends
    conn = await Deno.connect({ hostname: "127.0.0.1", port: (http.addr as Deno.NetAddr).port });
    await conn.write(
      new TextEncoder().encode(
        `GET /api/v1/runs/${runId}/events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`,
      ),
    );
    await until("the stream waits for its client", () => eventStreamStats.waitingForClient === 1);
    conn.close();
    conn = undefined;
    await until("the stream ends with its client", () => eventStreamStats.waitingForClient === 0);

    // Last-Event-ID resumes after any event with exactly the rest
    for (const k of [0, Math.floor(withIds.length / 2), withIds.length - 1]) {
      const rest = await readAll(
        await fetch(`${url}/api/v1/runs/${runId}/events`, {
          headers: { "Last-Event-ID": withIds[k].id! },
        }),
      );
      assertEquals(
        rest.events.filter((e) => e.id !== undefined).map((e) => e.id),
        withIds.slice(k + 1).map((e) => e.id),
      );
      assertEquals(rest.events.at(-1)?.event, "end");
    }
  } finally {
    conn?.close();
    await http.shutdown();
    await server.shutdown(1000);
    await engine.close();
  }
});

Deno.test("GET /runs/{id}/events of a running run: live-only events waiting for a client that never reads are capped (dropped past the cap)", async () => {
  const openai = startFakeOpenAI();
  const engine = await Engine.create(
    parseConfigValue({
      plugins: { builtin: { type: "builtin", openai: { baseUrl: openai.baseUrl, model: "m" } } },
      routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
    }, { workingDirectory: Deno.cwd() }),
    { store: new MemoryStateStore({ journal: true }) },
  );
  const server = createServer(engine);
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, server.fetch);
  const port = (http.addr as Deno.NetAddr).port;
  const url = `http://127.0.0.1:${port}`;
  let conn: Deno.TcpConn | undefined;
  try {
    // 4000 pieces of 2 KiB: 4000 step_progress events (8 MB), more than the connection buffers
    const PIECES = 4000;
    openai.replies.push({ kind: "stream", pieces: Array(PIECES).fill("p".repeat(2048)) });
    const flow = {
      schema: SCHEMA,
      name: "chatty",
      steps: [
        { id: "w", component: "/builtin/wait_for", input: { name: "go" } },
        {
          id: "c",
          component: "/builtin/chat",
          input: {
            messages: [{ role: "user", content: { $from: { step: "w" } } }],
            stream: true,
          },
        },
      ],
      output: { $from: { step: "c" }, path: "$.finish_reason" },
    };
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return await res.json();
    };
    const { flowId } = await post("/api/v1/flows", { flow });
    const { runId } = await post("/api/v1/runs", { flowId, input: {}, wait: false });
    // the run waits for its signal while a client that never reads opens its stream
    const before = eventStreamStats.enqueuedBytes;
    const dropped = eventStreamStats.droppedLiveEvents;
    eventStreamStats.maxQueuedBytes = 0;
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      new TextEncoder().encode(
        `GET /api/v1/runs/${runId}/events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`,
      ),
    );
    // the stream listens once it has sent its first line
    await until("the stream starts", () => eventStreamStats.enqueuedBytes > before);
    await post(`/api/v1/runs/${runId}/signals/go`, "hello");
    await until("the run finishes", () => server.service.runs.get(runId) === undefined);
    await until(
      "live events are dropped for the client that does not read",
      () => eventStreamStats.droppedLiveEvents > dropped,
    );
    const lost = eventStreamStats.droppedLiveEvents - dropped;
    assert(lost >= MAX_PENDING_LIVE_EVENTS && lost < PIECES, `${lost} dropped`);
    assert(
      eventStreamStats.maxQueuedBytes <= EVENT_STREAM_HIGH_WATER_BYTES + 4096,
      `${eventStreamStats.maxQueuedBytes} bytes held`,
    );
    assertStrictEquals(eventStreamStats.waitingForClient, 1);
    conn.close();
    conn = undefined;
    await until("the stream ends with its client", () => eventStreamStats.waitingForClient === 0);
    // the journal has the run's events: a reader gets them, then end
    const replay = await readAll(await fetch(`${url}/api/v1/runs/${runId}/events`));
    assertEquals(replay.events.at(-1)?.event, "end");
    assertEquals(JSON.parse(replay.events.at(-1)!.data).status, "completed");
  } finally {
    conn?.close();
    await http.shutdown();
    await server.shutdown(1000);
    await engine.close();
    await openai.close();
  }
});

Deno.test("stepflow serve --max-event-streams: streams past the limit get 429 with Retry-After; a closed one frees its place", async () => {
  await withServer({ args: ["--store", "memory", "--max-event-streams", "2"] }, async (s) => {
    const flow = {
      schema: SCHEMA,
      name: "waits",
      steps: [{ id: "w", component: "/builtin/wait_for", input: { name: "go" } }],
      output: { $from: { step: "w" } },
    };
    const stored = await s.call("POST", "/api/v1/flows", { flow });
    const started = await s.call("POST", "/api/v1/runs", {
      flowId: stored.body.flowId,
      input: {},
      wait: false,
    });
    const url = `${s.url}/api/v1/runs/${started.body.runId}/events`;
    // before: no limit: 300 clients that never read held 150 MB of a busy run's events
    const open = [await fetch(url), await fetch(url)];
    for (const r of open) assertStrictEquals(r.status, 200);
    const refused = await fetch(url);
    assertStrictEquals(refused.status, 429);
    assertStrictEquals(refused.headers.get("retry-after"), "5");
    const body = await refused.json();
    assert(String(body.message).includes("maxEventStreams 2"), body.message);
    // a client that goes away frees its place (its stream ends when the service notices)
    await open[0].body!.cancel();
    let again: Response | undefined;
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      again = await fetch(url);
      if (again.status === 200) break;
      await again.body?.cancel();
      await new Promise((r) => setTimeout(r, 100));
    }
    assertStrictEquals(again?.status, 200);
    await again!.body!.cancel();
    await open[1].body!.cancel();
  });
});
