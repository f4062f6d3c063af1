/**
 * A request body that stops arriving. Before: the request stayed open for ever, and `stepflow
 * serve` did not exit on SIGTERM until the client went away (the shutdown waited for every open
 * request). Now a stalled body is answered 408 after `idleTimeoutMs` without bytes, 503 at once
 * when the service stops (with `Connection: close`), and a shutdown waits at most
 * CONNECTION_GRACE_MS for requests still open once its runs are done.
 * @module
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { Hono } from "hono";
import { configFromValue, Engine, listen } from "../../mod.ts";
import { jsonBody } from "../../src/server/body.ts";
import { ApiError } from "../../src/server/api_error.ts";

/** A body that sends `{"flow":` and then nothing. */
function stalledBody(): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (!sent) {
        sent = true;
        c.enqueue(new TextEncoder().encode('{"flow":'));
      }
      return new Promise(() => {}); // never more
    },
  });
}

Deno.test("jsonBody: a body with no bytes for idleTimeoutMs is answered 408 with Connection: close", async () => {
  const app = new Hono();
  app.onError((e, c) =>
    e instanceof ApiError
      ? c.json({ code: e.status, message: e.message }, e.status as 408, e.headers)
      : c.text(String(e), 500)
  );
  app.use("*", jsonBody(1 << 20, { idleTimeoutMs: 200 }));
  app.post("/x", (c) => c.text("read"));
  const res = await app.fetch(
    new Request("http://127.0.0.1/x", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stalledBody(),
    }),
  );
  assertEquals(res.status, 408);
  assertEquals(res.headers.get("connection"), "close");
  assertStringIncludes(await res.text(), "no bytes for 200 ms after 8 bytes");
});

Deno.test("serve: a shutdown ends while a client holds a request whose body stopped arriving", async () => {
  const engine = await Engine.create(configFromValue({
    plugins: { builtin: { type: "builtin" } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
  }));
  const service = listen(engine, { port: 0 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: service.port });
  try {
    await conn.write(new TextEncoder().encode(
      "POST /api/v1/flows HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
        'Content-Length: 1000\r\n\r\n{"flow":',
    ));
    // the request is in the service (its body is being read) before the shutdown starts
    await new Promise((r) => setTimeout(r, 300));
    let ended = false;
    const stopped = service.shutdown(1_000).then(() => ended = true);
    const deadline = Date.now() + 60_000;
    while (!ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assertEquals(ended, true, "the shutdown did not end while the client held its request");
    await stopped;
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    const answer = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    assertStringIncludes(answer, "HTTP/1.1 503");
    assertStringIncludes(answer, "The service is stopping");
  } finally {
    conn.close();
    await engine.close();
  }
});
