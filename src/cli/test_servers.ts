/**
 * Test servers (`test.servers` of a flow, stepflow 0.8 §7): processes started before a flow's
 * test cases (e.g. an HTTP step service) and stopped after them.
 *
 * ```yaml
 * test:
 *   servers:
 *     worker:
 *       command: deno
 *       args: [run, -A, worker.ts, --http, --port, "{port}"]
 *       healthCheck: { path: /health }
 *   config:
 *     plugins: { w: { type: stepflow, transport: http, url: "{worker.url}" } }
 * ```
 *
 * - Port: the first free port on 127.0.0.1 in `portRange` (default 18000–18999).
 * - Placeholders `{port}` (this server's), `{<name>.port}` and `{<name>.url}`
 *   (`http://127.0.0.1:<port>`) in `args` and `env` values, and in the text of `test.config`.
 * - Ready when `healthCheck.path` answers 2xx (each try at most `timeoutMs`, default 5000;
 *   tried every `retryDelayMs`, at most 200 ms apart), else when the port accepts connections;
 *   at most `startupTimeoutMs` (10000) in all. A server that exits before it is ready is an error showing the end of its stderr.
 * - Stop: SIGTERM, then SIGKILL after `shutdownTimeoutMs` (5000).
 * Keys are camelCase as in 0.8 (snake_case keys are ignored there too). `env` adds to the
 * inherited environment; `workingDirectory` is relative to the flow's directory.
 * @module
 */
import { resolveCommand } from "../plugins/stepflow/spawn.ts";
import {
  isJsonObject,
  isNumber,
  type JsonValue,
  parseJson,
  type RawNumber,
  stringifyJson,
  toNumber,
} from "../json/exact_json.ts";
import { describeError } from "../errors.ts";

/** One started server. */
export interface TestServer {
  name: string;
  port: number;
  url: string;
}

/** Started servers; `stop()` stops them all (safe to call twice). */
export interface TestServers {
  servers: TestServer[];
  /** Replaces `{name.url}` / `{name.port}` in the JSON text of `value`. */
  substitute(value: JsonValue): JsonValue;
  stop(): Promise<void>;
}

interface ServerSpec {
  command: string;
  args: string[];
  env: Record<string, string>;
  workingDirectory?: string;
  portRange: [number, number];
  healthCheck?: { path: string; timeoutMs: number; retryAttempts: number; retryDelayMs: number };
  startupTimeoutMs: number;
  shutdownTimeoutMs: number;
}

interface Running {
  name: string;
  child: Deno.ChildProcess;
  exited: Promise<Deno.CommandStatus>;
  stderrTail: { text: () => string; done: Promise<void> };
  shutdownTimeoutMs: number;
}

/**
 * Starts every server of `servers` (in order) for the flow file in `flowDir`.
 * @throws {Error} naming the server for a bad spec, no free port, a spawn failure, an early exit
 * or a startup timeout; servers already started are stopped first.
 */
export async function startTestServers(
  servers: Record<string, JsonValue>,
  flowDir: string,
): Promise<TestServers> {
  const specs = Object.entries(servers).map(([name, v]) => [name, parseSpec(name, v)] as const);
  const ports = new Map<string, number>();
  for (const [name, spec] of specs) ports.set(name, await freePort(name, spec.portRange, ports));
  const started: Running[] = [];
  const list: TestServer[] = specs.map(([name]) => ({
    name,
    port: ports.get(name)!,
    url: `http://127.0.0.1:${ports.get(name)}`,
  }));
  const replace = (text: string, own?: number) => {
    let out = own === undefined ? text : text.replaceAll("{port}", String(own));
    for (const s of list) {
      out = out.replaceAll(`{${s.name}.port}`, String(s.port)).replaceAll(`{${s.name}.url}`, s.url);
    }
    return out;
  };
  const stop = async () => {
    const all = started.splice(0);
    await Promise.all(all.reverse().map(stopOne));
  };
  try {
    for (const [name, spec] of specs) {
      const port = ports.get(name)!;
      const cwd = spec.workingDirectory === undefined
        ? flowDir
        : spec.workingDirectory.startsWith("/")
        ? spec.workingDirectory
        : `${flowDir}/${spec.workingDirectory}`;
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(spec.env)) env[k] = replace(v, port);
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(spec.command, {
          args: spec.args.map((a) => replace(a, port)),
          env,
          cwd,
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
      } catch (e) {
        throw new Error(
          `test server '${name}': cannot start '${spec.command}': ${
            whySpawnFailed(e, spec.command, cwd)
          }`,
        );
      }
      const tail = drainTail(child.stderr);
      const running: Running = {
        name,
        child,
        exited: child.status,
        stderrTail: tail,
        shutdownTimeoutMs: spec.shutdownTimeoutMs,
      };
      started.push(running);
      await waitReady(name, spec, port, running);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    servers: list,
    substitute: (value) => parseJson(replace(stringifyJson(value))),
    stop,
  };
}

function parseSpec(name: string, v: JsonValue): ServerSpec {
  const where = `test.servers.${name}`;
  if (!isJsonObject(v) || typeof v.command !== "string") {
    throw new Error(`${where}: needs 'command' (a program to run)`);
  }
  const args = v.args === undefined ? [] : v.args;
  if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) {
    throw new Error(`${where}.args: must be a list of strings`);
  }
  const env: Record<string, string> = {};
  if (v.env !== undefined) {
    if (!isJsonObject(v.env)) throw new Error(`${where}.env: must be a map of strings`);
    for (const [k, x] of Object.entries(v.env)) {
      env[k] = typeof x === "string" ? x : stringifyJson(x);
    }
  }
  // Numbers as written (`1500.0` and `1e4` are raw numbers); a wrong value is an error, not
  // silently the default.
  const asNumber = (x: JsonValue | undefined) =>
    isNumber(x) ? toNumber(x as number | RawNumber) : undefined;
  let portRange: [number, number] = [18000, 18999];
  if (v.portRange !== undefined && v.portRange !== null) { // null: the default (0.8)
    const r = v.portRange;
    const lo = Array.isArray(r) && r.length === 2 ? asNumber(r[0]) : undefined;
    const hi = Array.isArray(r) && r.length === 2 ? asNumber(r[1]) : undefined;
    const port = (n: number | undefined) =>
      n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535;
    if (!port(lo) || !port(hi) || lo! > hi!) {
      throw new Error(
        `${where}.portRange: must be [low, high], whole numbers with 1 <= low <= high <= 65535, got ${
          stringifyJson(r)
        }`,
      );
    }
    portRange = [lo!, hi!];
  }
  const num = (o: JsonValue | undefined, key: string, dflt: number): number => {
    const x = isJsonObject(o) ? o[key] : undefined;
    if (x === undefined) return dflt;
    const n = asNumber(x);
    if (n === undefined || !Number.isFinite(n) || n < 0) {
      const at = o === v ? `${where}.${key}` : `${where}.healthCheck.${key}`;
      throw new Error(
        `${at}: must be a number of milliseconds (or a count) >= 0, got ${stringifyJson(x)}`,
      );
    }
    return n;
  };
  const spec: ServerSpec = {
    command: v.command,
    args: args as string[],
    env,
    portRange,
    startupTimeoutMs: num(v, "startupTimeoutMs", 10_000),
    shutdownTimeoutMs: num(v, "shutdownTimeoutMs", 5_000),
  };
  if (typeof v.workingDirectory === "string") spec.workingDirectory = v.workingDirectory;
  if (isJsonObject(v.healthCheck) && typeof v.healthCheck.path === "string") {
    spec.healthCheck = {
      path: v.healthCheck.path,
      timeoutMs: num(v.healthCheck, "timeoutMs", 5_000),
      retryAttempts: num(v.healthCheck, "retryAttempts", 3),
      retryDelayMs: num(v.healthCheck, "retryDelayMs", 1_000),
    };
  }
  return spec;
}

async function freePort(
  name: string,
  [lo, hi]: [number, number],
  taken: Map<string, number>,
): Promise<number> {
  const used = new Set(taken.values());
  for (let p = lo; p <= hi; p++) {
    if (used.has(p)) continue;
    try {
      const l = Deno.listen({ hostname: "127.0.0.1", port: p });
      l.close();
      await Promise.resolve();
      return p;
    } catch {
      // in use
    }
  }
  throw new Error(`test server '${name}': no free port in ${lo}-${hi}`);
}

function drainTail(
  stream: ReadableStream<Uint8Array>,
): { text: () => string; done: Promise<void> } {
  let tail = "";
  const dec = new TextDecoder();
  const done = (async () => {
    try {
      for await (const chunk of stream) {
        tail = (tail + dec.decode(chunk, { stream: true })).slice(-2000);
      }
    } catch {
      // process gone
    }
  })();
  return { text: () => tail.trim(), done };
}

async function waitReady(name: string, spec: ServerSpec, port: number, r: Running): Promise<void> {
  const deadline = Date.now() + spec.startupTimeoutMs;
  let exited = false;
  r.exited.then(() => exited = true, () => exited = true);
  const early = async () => {
    await r.stderrTail.done;
    const tail = r.stderrTail.text();
    return new Error(
      `test server '${name}' exited before it was ready${
        tail ? `; its stderr ended with:\n${tail}` : ""
      }`,
    );
  };
  const pollMs = spec.healthCheck ? Math.min(spec.healthCheck.retryDelayMs, 200) : 50;
  while (Date.now() < deadline) {
    if (exited) throw await early();
    if (spec.healthCheck) {
      const h = spec.healthCheck;
      try {
        const res = await fetch(`http://127.0.0.1:${port}${h.path}`, {
          signal: AbortSignal.timeout(Math.min(h.timeoutMs, Math.max(1, deadline - Date.now()))),
        });
        await res.body?.cancel();
        if (res.ok) return;
      } catch {
        // not up yet
      }
    } else if (await accepts(port)) {
      return;
    }
    if (exited) throw await early();
    // Poll: a server gives no other sign that it is listening.
    await new Promise((res) => setTimeout(res, pollMs));
  }
  throw new Error(
    `test server '${name}' was not ready on port ${port} within ${spec.startupTimeoutMs} ms`,
  );
}

async function accepts(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

async function stopOne(r: Running): Promise<void> {
  try {
    r.child.kill("SIGTERM");
  } catch {
    // already gone
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((res) => {
    timer = setTimeout(() => {
      try {
        r.child.kill("SIGKILL");
      } catch {
        // already gone
      }
      res();
    }, r.shutdownTimeoutMs);
  });
  await Promise.race([r.exited.then(() => {}, () => {}), killed]);
  clearTimeout(timer);
  await r.exited.catch(() => {});
}

/**
 * Why spawning `command` failed, as a step service's start reports it: for a command that is not
 * there, `command not found: deno (searched PATH: ...)` instead of Deno's
 * `Failed to spawn 'deno': entity not found`.
 */
function whySpawnFailed(e: unknown, command: string, cwd: string): string {
  if (e instanceof Deno.errors.NotFound) {
    try {
      resolveCommand(command, cwd);
    } catch (notFound) {
      return describeError(notFound);
    }
  }
  return describeError(e);
}
