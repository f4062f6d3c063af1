/**
 * `/metrics` stays bounded whatever methods clients send. Before: any token is a valid HTTP
 * method, and each new one (`M1`, `M2`, ...) added its own series to the request counters and
 * histograms for the life of the process (1,000 such requests: 1.7 MB more /metrics).
 * @module
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { configFromValue, Engine, listen } from "../../mod.ts";

Deno.test("metrics: requests with methods that are not standard count as OTHER (no series per method)", async () => {
  const engine = await Engine.create(configFromValue({
    plugins: { builtin: { type: "builtin" } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
  }));
  const service = listen(engine, { port: 0 });
  try {
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${service.url}/api/v1/runs`, { method: `M${i}` });
      await res.body?.cancel();
      assertEquals(res.status >= 400, true);
    }
    const text = await (await fetch(`${service.url}/metrics`)).text();
    assertEquals(/method="M\d+"/.test(text), false);
    assertStringIncludes(text, 'stepflow_http_requests_total{method="OTHER",route="unmatched"');
    assertStringIncludes(text, "} 50\n");
  } finally {
    await service.shutdown();
    await engine.close();
  }
});
