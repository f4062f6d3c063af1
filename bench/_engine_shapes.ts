/**
 * The benchmark shapes: a chain of N built-in steps, and a fan-out of N independent built-in
 * steps joined by one step. Built as flow values (what a loaded YAML file becomes).
 * @module
 */
import { type Flow, FlowSchema } from "../src/flow/model.ts";
import { parseConfigValue } from "../src/config/load.ts";
import type { LoadedConfig } from "../src/config/model.ts";

/** The builtin-only config the benchmarks run on (in-memory store unless `sqlite`). */
export function benchConfig(sqlite = false): LoadedConfig {
  return parseConfigValue({
    plugins: { builtin: { type: "builtin" } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
    stateStore: sqlite ? { type: "sqlite", databaseUrl: "sqlite::memory:" } : { type: "inMemory" },
  }, { workingDirectory: Deno.cwd() });
}

/** `n` create_messages steps, each reading the previous one's message. */
export function chainFlow(n: number): Flow {
  const steps = [];
  for (let i = 0; i < n; i++) {
    steps.push({
      id: `s${i}`,
      component: "/builtin/create_messages",
      input: {
        user_prompt: i === 0
          ? { $from: { workflow: "input" }, path: "prompt" }
          : { $from: { step: `s${i - 1}` }, path: "$.messages[0].content" },
      },
    });
  }
  return FlowSchema.parse({
    schema: "https://stepflow.org/schemas/v1/flow.json",
    name: `chain-${n}`,
    steps,
    output: { $from: { step: `s${n - 1}` }, path: "$.messages[0].content" },
  });
}

/** `n` independent create_messages steps and one put_blob step joining all their outputs. */
export function fanOutFlow(n: number): Flow {
  const steps: unknown[] = [];
  const refs = [];
  for (let i = 0; i < n; i++) {
    steps.push({
      id: `s${i}`,
      component: "/builtin/create_messages",
      input: { user_prompt: { $from: { workflow: "input" }, path: "prompt" } },
    });
    refs.push({ $from: { step: `s${i}` }, path: "$.messages[0].content" });
  }
  steps.push({
    id: "join",
    component: "/builtin/put_blob",
    input: { data: refs, blob_type: "data" },
  });
  return FlowSchema.parse({
    schema: "https://stepflow.org/schemas/v1/flow.json",
    name: `fanout-${n}`,
    steps,
    output: { $from: { step: "join" }, path: "blob_id" },
  });
}

/** The floor for a chain: `n` awaited async no-op calls one after another. */
export async function chainFloor(n: number): Promise<unknown> {
  const noop = (x: unknown) => Promise.resolve(x);
  let v: unknown = "p";
  for (let i = 0; i < n; i++) v = await noop(v);
  return v;
}

/** The floor for a fan-out: `n` async no-op calls started at once, then joined. */
export async function fanOutFloor(n: number): Promise<unknown> {
  const noop = (x: unknown) => Promise.resolve(x);
  const ps = new Array(n);
  for (let i = 0; i < n; i++) ps[i] = noop(i);
  return await Promise.all(ps);
}
