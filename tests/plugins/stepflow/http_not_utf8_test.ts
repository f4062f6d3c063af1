/**
 * An HTTP step service whose answer is not UTF-8 (a Latin-1 `é`), against a real server on
 * 127.0.0.1 through `stepflow run`: the step fails naming the step service and the byte, instead
 * of its output reaching the flow with U+FFFD in place of the bytes — with a Content-Length body,
 * a chunked body and an event stream alike.
 */
import { assert, assertEquals, assertStringIncludes, runCli, withTempDir } from "../../_assert.ts";
import { parseJson } from "../../../src/json/exact_json.ts";

const enc = new TextEncoder();

function latin1Answer(id: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array([
    ...enc.encode(`{"jsonrpc":"2.0","id":"${id}","result":{"output":"caf`),
    0xe9,
    ...enc.encode(`"}}`),
  ]);
}

function server() {
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const msg = await req.json();
    if (msg.method === "initialized") return new Response(null, { status: 202 });
    if (msg.method === "initialize") {
      return Response.json({ jsonrpc: "2.0", id: msg.id, result: { server_protocol_version: 1 } });
    }
    const json = { "content-type": "application/json" };
    switch (msg.params.component as string) {
      case "/sized":
        return new Response(latin1Answer(msg.id), { headers: json });
      case "/chunked": {
        const body = latin1Answer(msg.id);
        return new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(body.subarray(0, 10));
              c.enqueue(body.subarray(10));
              c.close();
            },
          }),
          { headers: json },
        );
      }
      case "/sse":
        return new Response(
          new Uint8Array([...enc.encode("data: "), ...latin1Answer(msg.id), ...enc.encode("\n\n")]),
          { headers: { "content-type": "text/event-stream" } },
        );
      default:
        return Response.json({ jsonrpc: "2.0", id: msg.id, result: { output: "café" } });
    }
  });
  return { url: `http://127.0.0.1:${s.addr.port}/`, stop: () => s.shutdown() };
}

Deno.test("stepflow run: an HTTP answer that is not UTF-8 fails its step instead of changing its data", async () => {
  const s = server();
  try {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/stepflow-config.yml`,
        `plugins:\n  h: { type: stepflow, transport: http, url: "${s.url}" }\n` +
          `routes:\n  "/h/{*component}": [{ plugin: h }]\n`,
      );
      for (
        const [component, what] of [["sized", "a body"], ["chunked", "a body"], [
          "sse",
          "an event stream",
        ]]
      ) {
        await Deno.writeTextFile(
          `${dir}/flow.yaml`,
          `schema: https://stepflow.org/schemas/v1/flow.json\nname: latin1\ndescription: d\n` +
            `steps:\n  - id: a\n    component: /h/${component}\n` +
            `output: { $from: { step: a } }\n`,
        );
        const r = await runCli(["run", "--flow", `${dir}/flow.yaml`, "--input-json", "{}"]);
        assertEquals(r.code, 1, `${component}: ${r.stderr}`);
        const result = parseJson(r.stdout) as { error: { code: number; message: string } };
        assertEquals(result.error.code, -32603);
        assertStringIncludes(
          result.error.message,
          `step service 'h' at ${s.url} answered 'components/execute' with ${what} that is not UTF-8 text`,
        );
        assert(!r.stdout.includes("\uFFFD"), r.stdout);
      }
      // UTF-8 is fine
      await Deno.writeTextFile(
        `${dir}/flow.yaml`,
        `schema: https://stepflow.org/schemas/v1/flow.json\nname: ok\ndescription: d\n` +
          `steps:\n  - id: a\n    component: /h/ok\noutput: { $from: { step: a } }\n`,
      );
      const ok = await runCli(["run", "--flow", `${dir}/flow.yaml`, "--input-json", "{}"]);
      assertEquals(ok.code, 0, ok.stderr);
      assertEquals(parseJson(ok.stdout), { outcome: "success", result: "café" });
    });
  } finally {
    await s.stop();
  }
});
