/**
 * A query parameter given twice is refused naming it. Before, `?limit=1&limit=2` was read as a
 * list and answered "expected number, received NaN" (found by a fresh user).
 * @module
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { configFromValue, Engine, listen } from "../../mod.ts";

Deno.test("API: a query parameter given twice is a 400 naming it; once is fine", async () => {
  const engine = await Engine.create(configFromValue({
    plugins: { builtin: { type: "builtin" } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
  }));
  const service = listen(engine, { port: 0 });
  try {
    const twice = await fetch(`${service.url}/api/v1/runs?limit=1&offset=0&limit=2`);
    assertEquals(twice.status, 400);
    const body = await twice.json();
    assertStringIncludes(body.message, "Query parameter 'limit' is given more than once");
    const once = await fetch(`${service.url}/api/v1/runs?limit=1&offset=0`);
    assertEquals(once.status, 200);
    await once.body?.cancel();
  } finally {
    await service.shutdown();
    await engine.close();
  }
});
