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
 *   at most `startupTimeoutMs` (10000) in all. A server that exits before it is ready is an error
 *   with its exit code (or signal) and the last lines of its stderr.
 * - Errors ({@linkcode TestServerError}) name the server's place in the flow file
 *   (`file:line:col`, the JSON path `$.test.servers.<name>...`) as config errors do.
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
import { describeError, formatPosition, type SourcePosition } from "../errors.ts";
import { type DocPath, jsonPath, type SourceMap } from "../core/diagnostics.ts";
import { fileExcerpt } from "../flow/excerpt.ts";

/** Most lines of a test server's stderr an error shows (the last ones). */
export const STDERR_TAIL_LINES = 20;
/** Longest stderr line an error shows (longer ones are cut, the end kept). */
const STDERR_LINE_CHARS = 300;

/**
 * A test server that could not be started, at its place in the flow file: `problem` (one line),
 * `path` under the flow (`["test", "servers", name, ...]`), its `position` when the flow came
 * from a file, and `detail` (lines shown after the excerpt: the end of the server's stderr).
 * The message is `file:line:col: <problem> [$.test.servers.<name>...]` and the detail.
 */
export class TestServerError extends Error {
  override name = "TestServerError";
  constructor(
    readonly problem: string,
    readonly path: DocPath,
    readonly position: SourcePosition | undefined,
    readonly detail = "",
  ) {
    super(
      `${position ? `${formatPosition(position)}: ` : ""}${problem} [${jsonPath(path)}]${
        detail ? `\n${detail.trimEnd()}` : ""
      }`,
    );
  }

  /**
   * As config errors are printed (src/cli/config_problems.ts): `  file:line:col: error: problem
   * [path]`, the line with a caret, then the detail; ends in a newline.
   */
  format(): string {
    const where = this.position ? `${formatPosition(this.position)}: ` : "";
    return `  ${where}error: ${this.problem} [${jsonPath(this.path)}]\n${
      fileExcerpt(this.position)
    }${this.detail}`;
  }
}

/** Where `path` (under `test.servers`) is in the flow file, when known (its key's, `atKey`). */
type Locate = (path: DocPath, atKey?: boolean) => SourcePosition | undefined;

/** A source map that can also give the position of a key (src/core/document.ts). */
interface KeyedSourceMap extends SourceMap {
  keyPositionOf?(path: readonly (string | number)[]): SourcePosition | undefined;
}

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
 * Starts every server of `servers` (in order) for the flow file in `flowDir`; `source` (the flow
 * file's positions) places errors at `file:line:col`.
 * @throws {TestServerError} naming the server and its place in the file for a bad spec, no free
 * port, a spawn failure, an early exit (with its exit code and the end of its stderr) or a startup
 * timeout; servers already started are stopped first.
 */
export async function startTestServers(
  servers: Record<string, JsonValue>,
  flowDir: string,
  source?: SourceMap,
): Promise<TestServers> {
  const keyed = source as KeyedSourceMap | undefined;
  const locate: Locate = (path, atKey) =>
    atKey && keyed?.keyPositionOf ? keyed.keyPositionOf(path) : source?.positionOf(path);
  const specs = Object.entries(servers).map((
    [name, v],
  ) => [name, parseSpec(name, v, locate)] as const);
  const ports = new Map<string, number>();
  for (const [name, spec] of specs) {
    ports.set(name, await freePort(name, spec.portRange, ports, locate));
  }
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
        const at = serverPath(name, "command");
        throw new TestServerError(
          `test server '${name}': cannot start '${spec.command}': ${
            whySpawnFailed(e, spec.command, cwd)
          }`,
          at,
          locate(at),
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
      await waitReady(name, spec, port, running, locate);
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

/** The path of test server `name` (or of one of its keys) in the flow. */
function serverPath(name: string, ...keys: string[]): DocPath {
  return ["test", "servers", name, ...keys];
}

function parseSpec(name: string, v: JsonValue, locate: Locate): ServerSpec {
  const fail = (problem: string, ...keys: string[]): never => {
    const at = serverPath(name, ...keys);
    throw new TestServerError(`test server '${name}': ${problem}`, at, locate(at));
  };
  if (!isJsonObject(v) || typeof v.command !== "string") {
    return fail("needs 'command' (a program to run)");
  }
  const args = v.args === undefined ? [] : v.args;
  if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) {
    return fail("args must be a list of strings", "args");
  }
  const env: Record<string, string> = {};
  if (v.env !== undefined) {
    if (!isJsonObject(v.env)) return fail("env must be a map of strings", "env");
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
      fail(
        `portRange must be [low, high], whole numbers with 1 <= low <= high <= 65535, got ${
          stringifyJson(r)
        }`,
        "portRange",
      );
    }
    portRange = [lo!, hi!];
  }
  const num = (o: JsonValue | undefined, key: string, dflt: number): number => {
    const x = isJsonObject(o) ? o[key] : undefined;
    if (x === undefined) return dflt;
    const n = asNumber(x);
    if (n === undefined || !Number.isFinite(n) || n < 0) {
      const at = o === v ? [key] : ["healthCheck", key];
      return fail(
        `${at.join(".")} must be a number of milliseconds (or a count) >= 0, got ${
          stringifyJson(x)
        }`,
        ...at,
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
  locate: Locate,
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
  const at = serverPath(name, "portRange");
  throw new TestServerError(
    `test server '${name}': no free port in ${lo}-${hi} (set portRange to a range with a free port)`,
    at,
    locate(at),
  );
}

function drainTail(
  stream: ReadableStream<Uint8Array>,
): { text: () => string; done: Promise<void> } {
  let tail = "";
  const dec = new TextDecoder();
  const done = (async () => {
    try {
      for await (const chunk of stream) {
        tail = (tail + dec.decode(chunk, { stream: true })).slice(-TAIL_CHARS);
      }
    } catch {
      // process gone
    }
  })();
  return { text: () => tail, done };
}

/** Characters of a server's stderr kept (enough for the last lines an error shows). */
const TAIL_CHARS = STDERR_TAIL_LINES * (STDERR_LINE_CHARS + 1);

/**
 * The last {@linkcode STDERR_TAIL_LINES} lines of `tail` as an error's detail (indented, ending
 * in a newline), or `""` when it wrote nothing.
 */
function stderrDetail(tail: string): string {
  let lines = tail.replace(/\r/g, "").split("\n");
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  if (lines.length === 0) return "";
  // the first line may be the end of a line cut by the tail's size
  if (tail.length >= TAIL_CHARS && lines.length > 1) lines = lines.slice(1);
  const shown = lines.slice(-STDERR_TAIL_LINES).map((l) =>
    l.length > STDERR_LINE_CHARS ? `...${l.slice(-STDERR_LINE_CHARS)}` : l
  );
  return `  its stderr ended with (last ${shown.length} line${shown.length === 1 ? "" : "s"}):\n${
    shown.map((l) => `    ${l}\n`).join("")
  }`;
}

/** Longest command line an error shows (its middle is cut). */
const MAX_COMMAND_CHARS = 200;

/** The server's command line as written (an argument with spaces quoted), at most 200 chars. */
function commandText(spec: ServerSpec): string {
  const text = [spec.command, ...spec.args].map((a) => /[\s"']/.test(a) ? JSON.stringify(a) : a)
    .join(" ");
  if (text.length <= MAX_COMMAND_CHARS) return text;
  const half = MAX_COMMAND_CHARS / 2 - 2;
  return `${text.slice(0, half)} ... ${text.slice(-half)}`;
}

/** How a process ended: `exited with code 3`, `was killed by SIGKILL`. */
function howItEnded(status: Deno.CommandStatus | undefined): string {
  if (status === undefined) return "exited";
  if (status.signal !== null && status.signal !== undefined) {
    return `was killed by ${status.signal}`;
  }
  return `exited with code ${status.code}`;
}

async function waitReady(
  name: string,
  spec: ServerSpec,
  port: number,
  r: Running,
  locate: Locate,
): Promise<void> {
  const deadline = Date.now() + spec.startupTimeoutMs;
  let exited = false;
  r.exited.then(() => exited = true, () => exited = true);
  const at = serverPath(name);
  const command = commandText(spec);
  const early = async () => {
    const status = await r.exited.catch(() => undefined);
    await r.stderrTail.done;
    return new TestServerError(
      `test server '${name}' ${howItEnded(status)} before it was ready (command: ${command})`,
      at,
      locate(at, true),
      stderrDetail(r.stderrTail.text()),
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
  throw new TestServerError(
    `test server '${name}' was not ready on port ${port} within ${spec.startupTimeoutMs} ms (${
      spec.healthCheck
        ? `GET ${spec.healthCheck.path} did not answer 2xx`
        : "the port did not accept connections"
    }; raise startupTimeoutMs if it needs longer)`,
    at,
    locate(at, true),
    stderrDetail(r.stderrTail.text()),
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
