/**
 * `stepflow submit` / `submit-batch` when no service answers: 0.8's default URL
 * (`http://localhost:7837`) is kept, but `stepflow serve` listens on `http://127.0.0.1:7840`, so a
 * refused connection says so and suggests `--url http://127.0.0.1:7840`. Deno's fetch only says
 * "fetch failed" (the reason is in its cause), which is what the command used to print.
 * @module
 */
import {
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";
import {
  GaveUpError,
  ServiceClient,
  ServiceError,
  unreachable,
} from "../../src/cli/service_client.ts";

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

/** A server on 127.0.0.1 answering every request with `handler`; stopped by the returned fn. */
function fakeService(handler: (req: Request) => Response | Promise<Response>) {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    handler,
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    stop: async () => {
      ac.abort();
      await server.finished.catch(() => {});
    },
  };
}

Deno.test("ServiceClient: an answer without end stops at its limit; once stopped, a service that does not answer is given up", async () => {
  const never = new Promise<Response>(() => {});
  const s = fakeService((req) => {
    if (new URL(req.url).pathname === "/api/v1/flows") {
      // an answer that never ends (before: read into memory, 23 GB until killed)
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          c.enqueue(new Uint8Array(64 * 1024).fill(97));
        },
      });
      return new Response(body, { headers: { "content-type": "application/json" } });
    }
    return never;
  });
  try {
    const client = new ServiceClient(s.url, undefined, { maxAnswerBytes: 1 << 20 });
    const e = await assertRejects(() => client.call("POST", "/api/v1/flows", {}), ServiceError);
    assertStringIncludes(e.message, "has more than 1048576 bytes and was not read further");
    // a request the service never answers: given up once the command is told to stop
    const stop = new AbortController();
    client.giveUpAfter(stop.signal, 200);
    const pending = client.call("POST", "/api/v1/runs", {});
    stop.abort();
    const g = await assertRejects(() => pending, GaveUpError);
    assertStringIncludes(g.message, "did not answer within 0.2 s of being told to stop; gave up");
  } finally {
    await s.stop();
  }
});

Deno.test("stepflow submit: an answer to POST /flows without a flow id or a fatal diagnostic says so (not 'invalid (above)' with nothing above); SIGTERM while the service does not answer exits 130", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
    const odd = fakeService(() => Response.json({ flowId: 12, diagnostics: "x" }));
    try {
      const r = await runCli([
        "submit",
        "--url",
        odd.url,
        "--flow",
        "flow.yaml",
        "--input-json",
        "{}",
      ], {
        cwd: dir,
      });
      assertStrictEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, "has neither a flowId nor a fatal diagnostic");
      assertStringIncludes(r.stderr, "is --url a Stepflow service?");
    } finally {
      await odd.stop();
    }
    let asked!: () => void;
    const gotRequest = new Promise<void>((r) => asked = r);
    const silent = fakeService(() => {
      asked();
      return new Promise<Response>(() => {});
    });
    try {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${REPO_ROOT}/main.ts`,
          "submit",
          "--url",
          silent.url,
          "--flow",
          "flow.yaml",
          "--input-json",
          "{}",
        ],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await gotRequest;
      child.kill("SIGTERM");
      // before: SIGTERM printed 'cancelling the run' and the command waited for the service for good
      const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const out = await child.output();
      clearTimeout(killer);
      const stderr = new TextDecoder().decode(out.stderr);
      assertStrictEquals(out.code, 130, stderr);
      assertStringIncludes(stderr, "cancelled before the run was started on the service");
    } finally {
      await silent.stop();
    }
  });
});
