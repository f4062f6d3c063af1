/**
 * `stepflow submit` / `submit-batch` when no service answers: 0.8's default URL
 * (`http://localhost:7837`) is kept, but `stepflow serve` listens on `http://127.0.0.1:7840`, so a
 * refused connection says so and suggests `--url http://127.0.0.1:7840`. Deno's fetch only says
 * "fetch failed" (the reason is in its cause), which is what the command used to print.
 * @module
 */
import { assertStrictEquals, assertStringIncludes, runCli, withTempDir } from "../_assert.ts";
import { unreachable } from "../../src/cli/service_client.ts";

const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: a
    component: /builtin/create_messages
    input: { user_prompt: hi }
output: { $from: { step: a } }
`;

/** A 127.0.0.1 port nothing listens on (bound, then closed). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The error Deno's fetch throws for a refused connection to `url`. */
async function refusedError(url: string): Promise<unknown> {
  try {
    await fetch(url);
  } catch (e) {
    return e;
  }
  throw new Error(`${url} answered`);
}

Deno.test("submit to an address nobody listens on: 'connection refused' and the serve default to pass with --url", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
    const url = `http://127.0.0.1:${freePort()}`;
    for (const cmd of ["submit", "submit-batch"]) {
      const input = cmd === "submit" ? ["--input-json", "{}"] : ["--inputs", "in.jsonl"];
      await Deno.writeTextFile(`${dir}/in.jsonl`, "{}\n");
      const r = await runCli([cmd, "--url", url, "--flow", "flow.yaml", ...input], { cwd: dir });
      assertStrictEquals(r.code, 1, r.stderr);
      assertStrictEquals(r.stdout, "");
      // was: "cannot reach the Stepflow service at ...: fetch failed (...)"
      assertStringIncludes(
        r.stderr,
        `cannot reach the Stepflow service at ${url}: connection refused`,
      );
      assertStringIncludes(r.stderr, "pass --url http://127.0.0.1:7840");
      assertStrictEquals(r.stderr.includes("fetch failed"), false, r.stderr);
    }
  });
});

Deno.test("unreachable(): 0.8's default URL refused suggests the serve default; the serve default itself says to start it", async () => {
  const err = await refusedError(`http://127.0.0.1:${freePort()}/api/v1/flows`);
  const at8 = unreachable(new URL("http://localhost:7837"), err).message;
  assertStrictEquals(
    at8,
    "cannot reach the Stepflow service at http://localhost:7837: connection refused (nothing listens there). 'stepflow serve' listens on http://127.0.0.1:7840 by default: pass --url http://127.0.0.1:7840 (or set STEPFLOW_URL), or the address it printed when it started",
  );
  const atServe = unreachable(new URL("http://127.0.0.1:7840"), err).message;
  assertStringIncludes(
    atServe,
    "connection refused (nothing listens there: start it with 'stepflow serve')",
  );
  const dns = unreachable(
    new URL("http://nosuch.invalid:7840"),
    new TypeError("fetch failed", {
      cause: new Error(
        "error sending request for url (http://nosuch.invalid:7840/): client error (Connect): dns error: failed to lookup address information: Name or service not known",
      ),
    }),
  ).message;
  assertStringIncludes(dns, "cannot resolve host 'nosuch.invalid'");
  const other = unreachable(
    new URL("http://127.0.0.1:9"),
    new TypeError("fetch failed", {
      cause: new Error("error sending request for url (http://127.0.0.1:9/): connection reset"),
    }),
  ).message;
  assertStringIncludes(other, "at http://127.0.0.1:9: connection reset (is 'stepflow serve'");
});
