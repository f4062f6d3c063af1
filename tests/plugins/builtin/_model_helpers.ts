/**
 * Helpers for `/openai` and `/chat` tests: a started builtin plugin with `openai` settings, an
 * ExecuteContext that records progress, and an engine whose builtin plugin points at a server.
 * @module
 */
import { BuiltinPlugin } from "../../../src/plugins/builtin/plugin.ts";
import type { ExecuteContext } from "../../../src/plugins/plugin.ts";
import type { OpenAISettings } from "../../../src/config/model.ts";
import type { JsonObject, JsonValue } from "../../../src/json/exact_json.ts";
import { parseConfigValue } from "../../../src/config/load.ts";
import { Engine } from "../../../src/execution/engine.ts";
import { logger } from "../../../src/log.ts";
import { FakeEngine } from "../stepflow/_helpers.ts";

/** A builtin plugin, started, with these `openai` settings. */
export async function startBuiltin(openai?: OpenAISettings): Promise<BuiltinPlugin> {
  const p = new BuiltinPlugin("builtin", openai);
  await p.init({
    name: "builtin",
    workingDirectory: Deno.cwd(),
    engine: new FakeEngine(),
    log: logger("builtin"),
  });
  return p;
}

/** An ExecuteContext; `progress` (when given) receives the component's progress reports. */
export function ctx(
  options: { progress?: JsonObject[]; signal?: AbortSignal; stepId?: string } = {},
): ExecuteContext {
  const c: ExecuteContext = {
    runId: "00000000-0000-4000-8000-0000000000aa",
    flowId: "f".repeat(64),
    stepId: options.stepId ?? "ask",
    attempt: 1,
    signal: options.signal ?? new AbortController().signal,
    engine: new FakeEngine(),
  };
  const progress = options.progress;
  if (progress) c.progress = (d) => progress.push(d);
  return c;
}

/** An engine whose `builtin` plugin has these `openai` settings (route `/builtin/{*component}`). */
export function modelEngine(openai: Record<string, JsonValue>): Promise<Engine> {
  return Engine.create(parseConfigValue({
    plugins: { builtin: { type: "builtin", openai } },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
  }, { workingDirectory: Deno.cwd() }));
}

/** A variable name no developer has set, for key-from-environment tests. */
export function uniqueVar(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 12).toUpperCase()}`;
}
