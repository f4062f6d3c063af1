/**
 * Starts the real `stepflow serve` (a subprocess on 127.0.0.1, port 0) and reads the address
 * from the JSON line it announces on stderr.
 * @module
 */
import { REPO_ROOT, withTempDir } from "../_assert.ts";

export const WORKERS = `${REPO_ROOT}/tests/fixtures/workers`;

/** A config with the builtin plugin, a Deno SDK worker and the Python limits worker. */
export const CONFIG = `plugins:
  builtin: { type: builtin }
  sdk:
    type: stepflow
    command: ${JSON.stringify(Deno.execPath())}
    args: [run, --quiet, -A, ${JSON.stringify(`${WORKERS}/sdk_worker.ts`)}]
  py:
    type: stepflow
    command: python3
    args: [${JSON.stringify(`${WORKERS}/limits/limits_worker.py`)}]
    env: { PYTHONUNBUFFERED: "1" }
routes:
  "/builtin/{*component}":
    - plugin: builtin
  "/sdk/{*component}":
    - plugin: sdk
  "/py/{*component}":
    - plugin: py
`;

/**
 * A config with the builtin plugin and the journal worker (`/j/record`, `/j/hold`, `/j/gate`:
 * tests/fixtures/workers/journal_worker.ts) writing to `journal`.
 */
export function journalConfig(journal: string): string {
  return `plugins:
  builtin: { type: builtin }
  j:
    type: stepflow
    command: ${JSON.stringify(Deno.execPath())}
    args: [run, --quiet, -A, ${JSON.stringify(`${WORKERS}/journal_worker.ts`)}]
    env: { JOURNAL_FILE: ${JSON.stringify(journal)} }
routes:
  "/builtin/{*component}": [{ plugin: builtin }]
  "/j/{*component}": [{ plugin: j }]
`;
}

/**
 * One step held until the test lets it go (`/j/gate`): input `{v, ready, release, pad?}` — it
 * writes the FIFO `ready` when called, answers `v + 1` once `release` is written.
 */
export const GATED_FLOW = {
  schema: "https://stepflow.org/schemas/v1/flow.json",
  name: "gated",
  steps: [{
    id: "a",
    component: "/j/gate",
    input: {
      value: { $from: { workflow: "input" }, path: "$.v" },
      ready: { $from: { workflow: "input" }, path: "$.ready" },
      release: { $from: { workflow: "input" }, path: "$.release" },
      pad_bytes: { $from: { workflow: "input" }, path: "$.pad" },
    },
  }],
  output: { $from: { step: "a" }, path: "$.value" },
};

/** Makes the FIFOs `paths` (a test awaits a step reading or writing one, no polling). */
export async function mkfifo(...paths: string[]): Promise<void> {
  const out = await new Deno.Command("mkfifo", { args: paths }).output();
  if (!out.success) throw new Error(`mkfifo ${paths.join(" ")} failed`);
}

/** The flow schema URL. */
export const SCHEMA = "https://stepflow.org/schemas/v1/flow.json";

/** Two built-in steps, `b` after `a`, each passing the input's `q` on (for debug runs). */
export const TWO_STEPS = {
  schema: SCHEMA,
  name: "two-steps",
  steps: [
    {
      id: "a",
      component: "/builtin/create_messages",
      input: { user_prompt: { $from: { workflow: "input" }, path: "$.q" } },
    },
    {
      id: "b",
      component: "/builtin/create_messages",
      input: { user_prompt: { $from: { step: "a" }, path: "$.messages[0].content" } },
    },
  ],
  output: { $from: { step: "b" }, path: "$.messages[0].content" },
};

/** The benchmark's 3-step built-in flow (messages → blob → read back). */
export { THREE_STEPS } from "../../bench/_service_flow.ts";

export interface RunningServer {
  url: string;
  port: number;
  pid: number;
  child: Deno.ChildProcess;
  /** Everything the server wrote on stderr so far. */
  stderr(): string;
  /** Sends `signal` (none with null) and waits for the exit; returns the exit code. */
  stop(signal?: Deno.Signal | null): Promise<number>;
  /** fetch relative to the server, JSON in and out. */
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Answer>;
}

/** An HTTP answer with its JSON body parsed (text when not JSON). */
export interface Answer {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  headers: Headers;
}

/**
 * Starts `stepflow serve --port 0` in `dir` (writing CONFIG there unless `config` is given,
 * `false` for none) with `args`.
 */
export async function startServer(
  dir: string,
  options: { args?: string[]; config?: string | false; env?: Record<string, string> } = {},
): Promise<RunningServer> {
  if (options.config !== false) {
    await Deno.writeTextFile(`${dir}/stepflow-config.yml`, options.config ?? CONFIG);
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${REPO_ROOT}/main.ts`,
      "serve",
      "--port",
      "0",
      ...(options.args ?? []),
    ],
    cwd: dir,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  let announce!: (v: { url: string; port: number; pid: number } | undefined) => void;
  const announced = new Promise<{ url: string; port: number; pid: number } | undefined>((r) =>
    announce = r
  );
  const stderrDone = (async () => {
    for await (const chunk of child.stderr) {
      text += dec.decode(chunk, { stream: true });
      for (const line of text.split("\n")) {
        if (line.startsWith("{") && line.includes('"listening"')) {
          try {
            announce(JSON.parse(line));
          } catch {
            // partial line
          }
        }
      }
    }
    announce(undefined);
  })();
  const stdoutDone = child.stdout.pipeTo(new WritableStream());
  const addr = await announced;
  if (!addr) {
    const status = await child.status;
    await stderrDone;
    throw new Error(`stepflow serve exited (${status.code}) without listening:\n${text}`);
  }
  const call: RunningServer["call"] = async (method, path, body, headers = {}) => {
    const res = await fetch(`${addr.url}${path}`, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const t = await res.text();
    let parsed: unknown = t;
    try {
      parsed = t === "" ? null : JSON.parse(t);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    url: addr.url,
    port: addr.port,
    pid: addr.pid,
    child,
    stderr: () => text,
    call,
    async stop(signal: Deno.Signal | null = "SIGTERM") {
      try {
        if (signal) child.kill(signal);
      } catch {
        // exited already
      }
      const status = await child.status;
      await stderrDone;
      await stdoutDone.catch(() => {});
      return status.code;
    },
  };
}

/** Stores `flow` and returns its id (asserting there was one). */
export async function storeFlow(s: RunningServer, flow: unknown): Promise<string> {
  const r = await s.call("POST", "/api/v1/flows", { flow });
  if (r.status !== 200 || typeof r.body?.flowId !== "string") {
    throw new Error(`POST /flows: ${r.status} ${JSON.stringify(r.body)}`);
  }
  return r.body.flowId;
}

/** Waits (bounded, polling a file the worker writes) until `path` exists. */
export async function waitForFile(path: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      await Deno.stat(path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(`${path} did not appear within ${ms} ms`);
}

/**
 * Runs `fn` with a server started in a fresh temporary directory (see {@linkcode startServer});
 * the server is stopped (SIGTERM) and the directory removed afterwards, whatever happens.
 */
export async function withServer(
  options: Parameters<typeof startServer>[1],
  fn: (s: RunningServer, dir: string) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const s = await startServer(dir, options);
    try {
      await fn(s, dir);
    } finally {
      await s.stop();
    }
  });
}

/** One server-sent event as the tests read it. */
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/**
 * Parses one SSE block (the text between blank lines): `hasData` is false for blocks without a
 * `data:` line (id-only blocks, `retry:`, keep-alive comments).
 */
export function parseSseBlock(block: string): { event: SseEvent; hasData: boolean } {
  const event: SseEvent = { data: "" };
  let hasData = false;
  for (const line of block.split("\n")) {
    if (line.startsWith("id: ")) event.id = line.slice(4);
    else if (line.startsWith("event: ")) event.event = line.slice(7);
    else if (line.startsWith("data: ")) {
      event.data = line.slice(6);
      hasData = true;
    }
  }
  return { event, hasData };
}
