/**
 * The stdio floor of the throughput benchmarks (bench/map_stepservice.ts,
 * bench/protocol_roundtrip.ts): a bare newline-JSON echo process (bench/protocol_echo_stdio.ts)
 * driven with many requests in flight, answers matched by id. Requests issued in the same turn go
 * out in one write (as the stepflow plugin's stdio transport does), so the floor is as strong as
 * the transport's own framing. Also the CPU readings both benchmarks report per item.
 * @module
 */
import { LineSplitter } from "../src/protocol/line_splitter.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const denoEnv = { HOME: Deno.env.get("HOME") ?? "/root" };

/** A floor contender. */
export interface Floor {
  /** Sends `n` requests with `k` in flight; resolves when every answer is in. */
  run(n: number, k: number): Promise<void>;
  stop(): Promise<void>;
}

/** The stdio floor: `request(i)` gives the id and text of request `i`. */
export function stdioFloor(request: (i: number) => { id: string; text: string }): Floor {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", `${ROOT}bench/protocol_echo_stdio.ts`],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    clearEnv: true,
    env: denoEnv,
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader({ mode: "byob" });
  const lines = new LineSplitter();
  const waiting = new Map<string, () => void>();
  const enc = new TextEncoder();
  const pump = (async () => {
    let buf = new Uint8Array(1 << 16);
    for (;;) {
      const { value, done } = await reader.read(buf);
      if (done || !value) return;
      lines.push(value, (l) => {
        const m = JSON.parse(l) as { id: string };
        const w = waiting.get(m.id);
        waiting.delete(m.id);
        w?.();
      });
      buf = new Uint8Array(value.buffer);
    }
  })();
  let queue: string[] = [];
  const flush = () => {
    const text = queue.join("\n") + "\n";
    queue = [];
    writer.write(enc.encode(text));
  };
  const call = (i: number) => {
    const { id, text } = request(i);
    const p = new Promise<void>((r) => waiting.set(id, r));
    if (queue.length === 0) queueMicrotask(flush);
    queue.push(text);
    return p;
  };
  return {
    run: (n, k) => inFlight(n, k, call),
    stop: async () => {
      await writer.close();
      await pump;
      await child.status;
    },
  };
}

/** Calls `call(0..n-1)` with `k` calls in flight. */
export async function inFlight(
  n: number,
  k: number,
  call: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const loop = async () => {
    while (next < n) await call(next++);
  };
  await Promise.all(Array.from({ length: k }, loop));
}

/** CPU time (user + system, ms) of a process from /proc (Linux), 0 when unreadable. */
export function cpuOf(pid: string): number {
  try {
    const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 1000 / 100; // clock ticks of 10 ms
  } catch {
    return 0;
  }
}

/** CPU time (ms) of this process (`self`) and of each of its child processes (by pid). */
export function cpuNow(): Map<string, number> {
  const m = new Map<string, number>([["self", cpuOf("self")]]);
  try {
    for (const t of Deno.readDirSync("/proc/self/task")) {
      const kids = Deno.readTextFileSync(`/proc/self/task/${t.name}/children`).trim();
      for (const pid of kids ? kids.split(/\s+/) : []) m.set(pid, cpuOf(pid));
    }
  } catch { /* not Linux */ }
  return m;
}

/** The `listening on http://...` address a server child prints on stderr, with a trailing `/`. */
export async function listenUrl(child: Deno.ChildProcess): Promise<string> {
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`no listening line: ${seen}`);
    seen += value;
    const m = /listening on (http:\/\/\S+)/.exec(seen);
    if (m) {
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return m[1] + "/";
    }
  }
}
