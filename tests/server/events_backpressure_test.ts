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
import { EVENT_STREAM_HIGH_WATER_BYTES, eventStreamStats } from "../../src/server/routes_events.ts";
import { mockComponent, testConfig } from "../execution/_engine_helpers.ts";
import { parseSseBlock, SCHEMA, type SseEvent } from "./_server.ts";

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
    const sent = eventStreamStats.enqueuedBytes - before;
    assertStrictEquals(eventStreamStats.waitingForClient, 1, `${sent} bytes queued`);
    // what it holds is the high-water mark and one event at most
    assert(
      eventStreamStats.maxQueuedBytes <= EVENT_STREAM_HIGH_WATER_BYTES + 2 * MESSAGE.length,
      `${eventStreamStats.maxQueuedBytes} bytes held`,
    );
    // and it stays so: the journal is not read on while the client does not read
    await new Promise((r) => setTimeout(r, 500));
    assertStrictEquals(eventStreamStats.enqueuedBytes - before, sent);
    assert(sent < whole.bytes / 2, `${sent} of ${whole.bytes} bytes sent`);

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
