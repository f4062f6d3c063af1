/**
 * MCP call overhead: the median time of one `echo` tool call on `server-everything` (stdio),
 * measured in one process, interleaved so drift hits every variant alike:
 *
 * - `sdk`: the SDK `Client` on the SDK's own `StdioClientTransport` (the floor: what a program
 *   using the SDK directly pays);
 * - `plugin`: `McpPlugin.execute()` (our Deno transport, input schema check, result mapping);
 * - `engine`: `engine.run()` of a one-step flow whose step calls `/everything/echo` (routing,
 *   input resolution, state store, output), each run a full run.
 *
 *   bash scripts/setup_mcp_servers.sh && deno run -A bench/mcp_echo.ts [--calls 2000]
 *
 * Prints one line per variant (median, p90, in ms) and the engine's median minus the SDK's;
 * target: under 0.1 ms. Results are written down in docs/mcp.md.
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client";
import * as sdkStdio from "@modelcontextprotocol/sdk/client/stdio.js";
import { Engine } from "../src/execution/engine.ts";
import { parseConfigValue } from "../src/config/load.ts";
import { parseFlowValue } from "../src/flow/load.ts";
import { McpPlugin } from "../src/plugins/mcp/plugin.ts";
import { McpPluginConfigSchema } from "../src/config/model.ts";
import { logger } from "../src/log.ts";
import type { ExecuteContext } from "../src/plugins/plugin.ts";

const args = Deno.args;
const CALLS = Number(args[args.indexOf("--calls") + 1] || 0) || 2000;
// Each variant has its own server process; they converge only after a long warm-up (JIT of the
// node servers and of our code): 200 calls left the variants 0.05 ms apart from run to run.
const WARMUP = 2000;
const root = new URL("..", import.meta.url).pathname;
const server =
  `${root}.cache/mcp-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js`;
try {
  Deno.statSync(server);
} catch {
  console.error(`server-everything not installed: run \`bash scripts/setup_mcp_servers.sh\` first`);
  Deno.exit(1);
}

// 1. the SDK client on the SDK's stdio transport
const sdk = new Client({ name: "bench", version: "1.0.0" });
// deno-lint-ignore no-explicit-any
const transport = new (sdkStdio as any).StdioClientTransport({
  command: "node",
  args: [server, "stdio"],
  stderr: "ignore",
});
await sdk.connect(transport);
await sdk.listTools();
const viaSdk = () => sdk.callTool({ name: "echo", arguments: { message: "hi" } });

// 2. the plugin alone
const plugin = new McpPlugin(
  "everything",
  McpPluginConfigSchema.parse({ type: "mcp", command: "node", args: [server, "stdio"] }),
);
await plugin.init({
  name: "everything",
  workingDirectory: root,
  engine: {} as never,
  log: logger("mcp:everything"),
});
const ctx: ExecuteContext = {
  runId: "r",
  flowId: "f",
  stepId: "echo",
  attempt: 1,
  signal: new AbortController().signal,
  engine: {} as never,
};
const viaPlugin = () => plugin.execute("/echo", { message: "hi" }, ctx);

// 3. the engine: a one-step flow
const config = parseConfigValue({
  plugins: { everything: { type: "mcp", command: "node", args: [server, "stdio"] } },
  routes: { "/everything/{*component}": [{ plugin: "everything" }] },
}, { workingDirectory: root });
const engine = await Engine.create(config);
const flow = parseFlowValue({
  schema: "https://stepflow.org/schemas/v1/flow.json",
  steps: [{
    id: "echo",
    component: "/everything/echo",
    input: { message: { $from: { workflow: "input" }, path: "$.message" } },
  }],
  output: { $from: { step: "echo" } },
});
const viaEngine = async () => {
  const r = await engine.run(flow, { message: "hi" });
  if (r.outcome !== "success") throw new Error(JSON.stringify(r));
};

const variants: [string, () => Promise<unknown>][] = [
  ["sdk", viaSdk],
  ["plugin", viaPlugin],
  ["engine", viaEngine],
];
const times = new Map<string, number[]>(variants.map(([n]) => [n, []]));
for (let i = 0; i < WARMUP + CALLS; i++) {
  for (const [name, fn] of variants) {
    const t0 = performance.now();
    await fn();
    const dt = performance.now() - t0;
    if (i >= WARMUP) times.get(name)!.push(dt);
  }
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const med = (n: string) => quantile(times.get(n)!, 0.5);
console.log(`echo tool call, ${CALLS} calls per variant (after ${WARMUP} warm-up), ms:`);
for (const [name] of variants) {
  const xs = times.get(name)!;
  console.log(
    `  ${name.padEnd(7)} median ${quantile(xs, 0.5).toFixed(3)}  p90 ${
      quantile(xs, 0.9).toFixed(3)
    }`,
  );
}
const added = med("engine") - med("sdk");
console.log(
  `engine - sdk (median): ${added.toFixed(3)} ms (target < 0.100): ${
    added < 0.1 ? "met" : "MISSED"
  }`,
);

await engine.close();
await plugin.close();
await sdk.close();
