/**
 * `stepflow submit` and Ctrl-C / SIGTERM in each phase, against a fake service that holds each
 * request as long as the test wants. Was: "cancelling the run on the service" whatever the phase,
 * also while the flow was being stored and no run existed.
 * @module
 */
import {
  assert,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  withTempDir,
} from "../_assert.ts";

const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: a
    component: /builtin/create_messages
    input: { user_prompt: hi }
output: { $from: { step: a } }
`;

type Handler = (req: Request, path: string, body: Record<string, unknown>) => Promise<Response>;

const json = (v: unknown) => Response.json(v);
/** Resolves when the client went away (the request was abandoned) or `until` settles. */
const held = (req: Request, until?: Promise<unknown>) =>
  new Promise<Response>((resolve) => {
    req.signal.addEventListener("abort", () => resolve(new Response(null, { status: 499 })));
    void until?.then((r) => resolve(r as Response));
  });

/**
 * Runs `stepflow submit` against a fake service answering with `handle`; `signal` is sent once
 * `ready` resolves; `signalled` resolves when the command's stderr shows the signal's line.
 * Returns the exit code, stderr and the requests the service got (`METHOD path`).
 */
async function submitWith(
  signal: Deno.Signal,
  handle: (ctx: { signalled: Promise<void>; ready: () => void }) => Handler,
) {
  const requests: string[] = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => ready = r);
  let signalled!: () => void;
  const wasSignalled = new Promise<void>((r) => signalled = r);
  const handler = handle({ signalled: wasSignalled, ready });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    requests.push(`${req.method} ${path}`);
    const body = req.method === "POST" ? await req.json().catch(() => ({})) : {};
    return handler(req, path, body);
  });
  try {
    return await withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
      const sub = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          `${REPO_ROOT}/main.ts`,
          "submit",
          "--url",
          `http://127.0.0.1:${server.addr.port}`,
          "--flow",
          "flow.yaml",
          "--input-json",
          "{}",
        ],
        cwd: dir,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let stderr = "";
      const reading = (async () => {
        const dec = new TextDecoder();
        for await (const chunk of sub.stderr) {
          stderr += dec.decode(chunk, { stream: true });
          if (stderr.includes(`${signal}:`)) signalled();
        }
      })();
      await isReady;
      sub.kill(signal);
      const status = await sub.status;
      await reading;
      return { code: status.code, stderr, requests };
    });
  } finally {
    await server.shutdown();
  }
}

Deno.test("submit: a signal while the flow is stored says no run was started (was: 'cancelling the run')", async () => {
  const r = await submitWith("SIGINT", ({ ready }) => (req, path) => {
    if (path === "/api/v1/flows") {
      ready();
      return held(req);
    }
    return Promise.resolve(json({}));
  });
  assertStrictEquals(r.code, 130, r.stderr);
  assertStringIncludes(r.stderr, "SIGINT: stopping; no run was started on the service");
  assert(!r.stderr.includes("cancelling"), r.stderr);
  assertStringIncludes(r.stderr, "cancelled before the run was started on the service");
  assertStrictEquals(r.requests.join(", "), "POST /api/v1/flows");
});

Deno.test("submit: a signal while the run is being started: cancelled once the service gives its id", async () => {
  const r = await submitWith("SIGTERM", ({ ready, signalled }) => (req, path, body) => {
    if (path === "/api/v1/flows") return Promise.resolve(json({ flowId: "f1" }));
    if (path === "/api/v1/runs" && body.wait === false) {
      ready();
      // the run id comes only after the command said what the signal does
      return held(req, signalled.then(() => json({ runId: "run-1", status: "running" })));
    }
    if (path === "/api/v1/runs/run-1/cancel") {
      return Promise.resolve(json({ runId: "run-1", status: "cancelled" }));
    }
    return held(req);
  });
  assertStrictEquals(r.code, 130, r.stderr);
  assertStringIncludes(
    r.stderr,
    "SIGTERM: stopping; the run being started is cancelled on the service as soon as it " +
      "answers with its id",
  );
  assertStringIncludes(r.stderr, "run run-1 cancelled on the service");
  assert(r.requests.includes("POST /api/v1/runs/run-1/cancel"), r.requests.join(", "));
});

Deno.test("submit: a signal while the run runs names it", async () => {
  const r = await submitWith("SIGINT", ({ ready }) => (req, path, body) => {
    if (path === "/api/v1/flows") return Promise.resolve(json({ flowId: "f1" }));
    if (path === "/api/v1/runs" && body.wait === false) {
      return Promise.resolve(json({ runId: "run-2", status: "running" }));
    }
    if (path === "/api/v1/runs") {
      ready();
      return held(req);
    }
    if (path === "/api/v1/runs/run-2/cancel") {
      return Promise.resolve(json({ runId: "run-2", status: "cancelled" }));
    }
    return held(req);
  });
  assertStrictEquals(r.code, 130, r.stderr);
  assertStringIncludes(r.stderr, "SIGINT: cancelling run run-2 on the service");
  assertStringIncludes(r.stderr, "run run-2 cancelled on the service");
});
