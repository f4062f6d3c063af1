/**
 * HTTP step services that send too much or too slowly (issue 10, item 7), against real servers
 * on 127.0.0.1: answer bodies are read up to the output size limit, and a body is cancelled as
 * soon as its call is abandoned.
 */
import { assert, assertEquals, assertStringIncludes, runCli, withTempDir } from "../../_assert.ts";
import { execCtx, FakeEngine, memLog, WORKERS } from "./_helpers.ts";
import { StepflowPlugin } from "../../../src/plugins/stepflow/plugin.ts";
import type { StepflowPluginConfig } from "../../../src/config/model.ts";
import type { FlowFailed } from "../../../src/core/flow_result.ts";
import { parseJson } from "../../../src/json/exact_json.ts";

const enc = new TextEncoder();

/**
 * A step service whose `components/execute` answer depends on the component:
 * `/endless_json` an answer body that never ends, `/endless_sse` an event stream whose answer
 * event never ends, `/stall` a JSON body that starts and then stalls, `/late` headers that come
 * after 300 ms and then an endless body, `/deep` an answer nested 8,000 levels, `/ok` {ok: true}.
 * `cancelled(component)` resolves when the engine cancels that component's body.
 */
function server() {
  const cancels = new Map<string, () => void>();
  const cancelled = new Map<string, Promise<number>>();
  const sent = new Map<string, number>();
  for (
    const c of ["/endless_json", "/endless_sse", "/stall", "/late", "/sse_put", "/sse_id_last"]
  ) {
    cancelled.set(c, new Promise((r) => cancels.set(c, () => r(sent.get(c) ?? 0))));
  }
  const chunk = enc.encode("x".repeat(65_536));
  const wide = enc.encode("\u00e9".repeat(32_768)); // 64 KiB of two-byte characters
  /** An endless body; `upTo` bytes: it ends there (so that a reader without a limit ends). */
  const endless = (component: string, start: string, body = chunk, upTo = Infinity) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode(start));
      },
      pull(c) {
        if ((sent.get(component) ?? 0) >= upTo) return c.close();
        c.enqueue(body);
        sent.set(component, (sent.get(component) ?? 0) + chunk.length);
      },
      cancel() {
        cancels.get(component)!();
      },
    });
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const msg = await req.json();
    if (msg.method === "initialized") return new Response(null, { status: 202 });
    if (msg.method === "initialize") {
      return Response.json({ jsonrpc: "2.0", id: msg.id, result: { server_protocol_version: 1 } });
    }
    const component = msg.params.component as string;
    const head = `{"jsonrpc":"2.0","id":"${msg.id}","result":{"output":"`;
    const json = { "content-type": "application/json" };
    switch (component) {
      case "/endless_json":
        return new Response(endless(component, head), { headers: json });
      case "/endless_sse":
        return new Response(endless(component, `data: ${head}`), {
          headers: { "content-type": "text/event-stream" },
        });
      // an event stream carrying a blobs/put request that never ends (text of two-byte
      // characters), or our answer with its id after its result: not recognisable by its head
      case "/sse_put":
        return new Response(
          endless(
            component,
            `data: {"jsonrpc":"2.0","id":"p1","method":"blobs/put","params":{"data":"`,
            wide,
            48 << 20,
          ),
          { headers: { "content-type": "text/event-stream" } },
        );
      case "/sse_id_last":
        return new Response(
          endless(component, `data: {"jsonrpc":"2.0","result":{"output":"`, wide, 48 << 20),
          { headers: { "content-type": "text/event-stream" } },
        );
      case "/stall":
        return new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(enc.encode(head));
            },
            cancel() {
              cancels.get(component)!();
            },
          }),
          { headers: json },
        );
      case "/late":
        await new Promise((r) => setTimeout(r, 300));
        return new Response(endless(component, head), { headers: json });
      case "/big_json":
        return Response.json({ jsonrpc: "2.0", id: msg.id, result: { output: "y".repeat(5e6) } });
      case "/deep":
        return new Response(
          `{"jsonrpc":"2.0","id":"${msg.id}","result":{"output":${"[".repeat(8000)}${
            "]".repeat(8000)
          }}}`,
          { headers: json },
        );
      default:
        return Response.json({ jsonrpc: "2.0", id: msg.id, result: { output: { ok: true } } });
    }
  });
  return {
    url: `http://127.0.0.1:${s.addr.port}/`,
    cancelled: (c: string) => cancelled.get(c)!,
    stop: () => s.shutdown(),
  };
}

async function plugin(url: string, maxOutputBytes?: number) {
  const p = new StepflowPlugin("h", {
    type: "stepflow",
    transport: "http",
    url,
    args: [],
    env: {},
  } as StepflowPluginConfig);
  const engine = new FakeEngine();
  await p.init({ name: "h", workingDirectory: WORKERS, engine, log: memLog(), maxOutputBytes });
  return { p, engine };
}

Deno.test("stepflow run: an endless HTTP answer body fails its step with 413 at the output size limit", async () => {
  const s = server();
  try {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/stepflow-config.yml`,
        `maxOutputSize: 100000\nplugins:\n  h: { type: stepflow, transport: http, url: "${s.url}" }\n` +
          `routes:\n  "/h/{*component}": [{ plugin: h }]\n`,
      );
      await Deno.writeTextFile(
        `${dir}/flow.yaml`,
        `schema: https://stepflow.org/schemas/v1/flow.json\nname: endless\ndescription: d\n` +
          `steps:\n  - id: a\n    component: /h/endless_json\n` +
          `output: { $from: { step: a } }\n`,
      );
      const r = await runCli(["run", "--flow", `${dir}/flow.yaml`, "--input-json", "{}"]);
      assertEquals(r.code, 1, r.stderr);
      const result = parseJson(r.stdout) as { error: { code: number; message: string } };
      assertEquals(result.error.code, 413);
      assertStringIncludes(
        result.error.message,
        `over the limit of 100000 bytes (step service 'h' at ${s.url} answered 'components/execute' with a body of more than `,
      );
    });
    // the body was cancelled soon after the limit (the server may buffer a few MB ahead)
    const bytes = await s.cancelled("/endless_json");
    assert(bytes < 32 << 20, `sent ${bytes} bytes`);
  } finally {
    await s.stop();
  }
});

Deno.test("HTTP plugin: an endless SSE answer event, a 5 MB answer and a deep answer fail with 413", async () => {
  const s = server();
  const { p, engine } = await plugin(s.url, 100_000);
  try {
    const r = await p.execute("/endless_sse", {}, execCtx(engine)) as FlowFailed;
    assertEquals(r.error.code, 413);
    assertStringIncludes(r.error.message, "with an event of more than ");
    await s.cancelled("/endless_sse");
    const big = await p.execute("/big_json", {}, execCtx(engine)) as FlowFailed;
    assertEquals(big.error.code, 413);
    assertStringIncludes(big.error.message, "over the limit of 100000 bytes");
    const d = await p.execute("/deep", {}, execCtx(engine)) as FlowFailed;
    assertEquals(d.error.code, 413);
    assertEquals((d.error.data as { limitDepth: number }).limitDepth, 512);
    assertEquals(await p.execute("/ok", {}, execCtx(engine)), {
      outcome: "success",
      result: { ok: true },
    });
  } finally {
    await p.close();
    await s.stop();
  }
});

Deno.test("HTTP plugin: an abandoned call's body is cancelled at once, also when its headers come late", async () => {
  const s = server();
  const { p, engine } = await plugin(s.url);
  try {
    for (const component of ["/stall", "/late"]) {
      const ac = new AbortController();
      const ctx = { ...execCtx(engine), signal: ac.signal };
      const call = p.execute(component, {}, ctx).catch((e) => e);
      setTimeout(() => ac.abort(new Error("step timed out")), 100);
      assertEquals((await call).message, "step timed out");
      // the plugin is still open: the body is cancelled because the call was abandoned
      await s.cancelled(component);
    }
  } finally {
    await p.close();
    await s.stop();
  }
});

Deno.test("stepflow run: an SSE event that is not the answer (an endless blobs/put, an answer with its id last) stops at the output size limit, in bytes", async () => {
  // Before: only an event whose first 4 KiB named the call's id was held to maxOutputSize; any
  // other event was read up to 512 Mi characters (1 GiB of two-byte text per call) before failing.
  const s = server();
  try {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/stepflow-config.yml`,
        `maxOutputSize: 100000\nplugins:\n  h: { type: stepflow, transport: http, url: "${s.url}" }\n` +
          `routes:\n  "/h/{*component}": [{ plugin: h }]\n`,
      );
      for (const component of ["/sse_put", "/sse_id_last"]) {
        await Deno.writeTextFile(
          `${dir}/flow.yaml`,
          `schema: https://stepflow.org/schemas/v1/flow.json\nname: endless\ndescription: d\n` +
            `steps:\n  - id: big_event\n    component: /h${component}\n` +
            `output: { $from: { step: big_event } }\n`,
        );
        const r = await runCli(["run", "--flow", `${dir}/flow.yaml`, "--input-json", "{}"]);
        assertEquals(r.code, 1, r.stderr);
        const result = parseJson(r.stdout) as { error: { message: string } };
        const message = result.error.message;
        assertStringIncludes(r.stderr, "failed step 'big_event' (", component);
        assertStringIncludes(
          message,
          `step service 'h' at ${s.url} sent an event of more than `,
          component,
        );
        assertStringIncludes(
          message,
          "in the stream of 'components/execute', over the limit of 165536 bytes for one " +
            "message (maxOutputSize 100000 + 65536): raise maxOutputSize",
          component,
        );
        // the body was cancelled soon after the limit, not read to its 48 MiB end (the server
        // may buffer a few MB ahead)
        const bytes = await s.cancelled(component);
        assert(bytes < 16 << 20, `${component}: sent ${bytes} bytes`);
      }
    });
  } finally {
    await s.stop();
  }
});
