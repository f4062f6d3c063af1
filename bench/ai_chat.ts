/**
 * `/chat` overhead benchmark (issue 16): what the component adds to a chat completion against
 * a local OpenAI-compatible server (examples/ai-research/server.ts, in its own process), next
 * to the floor, a bare `fetch` POST of the same body with the answer parsed:
 *
 * 1. bare `fetch` + `res.json()` (floor);
 * 2. the npm `openai` client's `chat.completions.create` (what that library would cost: it is
 *    not used by the engine, see src/plugins/builtin/model_http.ts);
 * 3. `/chat` through the builtin plugin, whole answer (input checks, request, output);
 * 4. bare `fetch` of the same request with `stream: true`, reading the SSE text (floor);
 * 5. `/chat` streamed, each piece reported as progress.
 *
 * Contenders run interleaved in blocks, so load changes hit them alike. The first `/chat` call
 * of the process, and the import of the `openai` module, are timed on their own.
 *
 * Run: `deno run -A bench/ai_chat.ts` (`BENCH_N` calls each, default 2000). Results are written
 * down in docs/performance.md.
 * @module
 */
import { BuiltinPlugin } from "../src/plugins/builtin/plugin.ts";
import type { EngineServices, ExecuteContext } from "../src/plugins/plugin.ts";
import { logger } from "../src/log.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const N = Number(Deno.env.get("BENCH_N") ?? 2000);
const WARMUP = 200;
const BLOCK = 20;

const port = freePort();
const server = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net=127.0.0.1",
    `${ROOT}examples/ai-research/server.ts`,
    "--port",
    `${port}`,
  ],
  stdout: "null",
  stderr: "piped",
}).spawn();
await waitListening(server);
const baseUrl = `http://127.0.0.1:${port}/v1`;

const messages = [
  { role: "system", content: "You are a careful research assistant." },
  { role: "user", content: "Why run independent steps in parallel?" },
];
const body = { model: "demo", messages };

const plugin = new BuiltinPlugin("builtin", { baseUrl, model: "demo" });
await plugin.init({
  name: "builtin",
  workingDirectory: ROOT,
  engine: {} as EngineServices,
  log: logger("bench"),
});
const ctx = (progress?: (d: unknown) => void): ExecuteContext => ({
  runId: "r",
  flowId: "f",
  stepId: "s",
  attempt: 1,
  signal: new AbortController().signal,
  engine: {} as EngineServices,
  ...(progress ? { progress } : {}),
});

// First call of the process.
let t = performance.now();
await plugin.execute("/chat", { messages }, ctx());
const firstMs = performance.now() - t;
t = performance.now();
await plugin.execute("/chat", { messages }, ctx());
const secondMs = performance.now() - t;

t = performance.now();
const { default: OpenAI } = await import("openai");
const importMs = performance.now() - t;
const client = new OpenAI({ apiKey: "x", baseURL: baseUrl, maxRetries: 0 });

const contenders: Record<string, () => Promise<unknown>> = {
  "bare fetch": async () => {
    const res = await fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer x" },
      body: JSON.stringify(body),
    });
    return await res.json();
  },
  "openai client": () => client.chat.completions.create(body as never),
  "/chat": () => plugin.execute("/chat", { messages }, ctx()),
  "bare fetch, stream": async () => {
    const res = await fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer x" },
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    });
    return await res.text();
  },
  "/chat, stream": () => {
    let pieces = 0;
    return plugin.execute("/chat", { messages, stream: true }, ctx(() => pieces++));
  },
};
const names = Object.keys(contenders);
const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
for (let i = 0; i < WARMUP; i++) for (const n of names) await contenders[n]();
for (let done = 0; done < N; done += BLOCK) {
  for (const n of names) {
    for (let i = 0; i < BLOCK; i++) {
      const s = performance.now();
      await contenders[n]();
      times[n].push(performance.now() - s);
    }
  }
}
server.kill("SIGTERM");
await server.status;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
console.log(
  `first /chat call of the process: ${firstMs.toFixed(1)} ms (second: ${
    secondMs.toFixed(2)
  } ms); import("openai") for comparison: ${importMs.toFixed(1)} ms`,
);
console.log(`${N} calls each, interleaved in blocks of ${BLOCK}; µs per call`);
console.log("contender              median      p90");
for (const n of names) {
  console.log(
    `${n.padEnd(20)} ${(median(times[n]) * 1000).toFixed(0).padStart(8)} ${
      (p90(times[n]) * 1000).toFixed(0).padStart(8)
    }`,
  );
}
const over = (a: string, b: string) => ((median(times[a]) - median(times[b])) * 1000).toFixed(0);
console.log(
  `/chat over bare fetch: ${over("/chat", "bare fetch")} µs; ` +
    `openai client over bare fetch: ${over("openai client", "bare fetch")} µs; ` +
    `/chat streamed over bare streamed fetch: ${over("/chat, stream", "bare fetch, stream")} µs`,
);

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

async function waitListening(child: Deno.ChildProcess): Promise<void> {
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("listening")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the demo server did not start: ${seen}`);
    seen += value;
  }
  reader.releaseLock();
}
