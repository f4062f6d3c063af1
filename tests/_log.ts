/**
 * Test doubles shared by the tests: the one recording logger (lines as the engine formats them,
 * `[level] message`) and an ExecuteContext for plugin tests.
 * @module
 */
import type { Logger } from "../src/log.ts";
import type { EngineServices, ExecuteContext } from "../src/plugins/plugin.ts";

/** A logger that records `[level] message` lines (into `lines`, when given). */
export function recordingLogger(lines: string[] = []): Logger & { lines: string[] } {
  const at = (level: string) => (m: string) => void lines.push(`[${level}] ${m}`);
  return {
    lines,
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    enabled: () => true,
  };
}

/**
 * An `ExecuteContext` for plugin tests: a fixed run id and flow id, step `step`, attempt 1, a
 * fresh signal, and the given engine services (default: none may be called).
 */
export function testExecuteContext(extra: Partial<ExecuteContext> = {}): ExecuteContext {
  return {
    runId: "00000000-0000-4000-8000-000000000000",
    flowId: "0".repeat(64),
    stepId: "step",
    attempt: 1,
    signal: new AbortController().signal,
    engine: NO_ENGINE,
    ...extra,
  };
}

/** EngineServices whose every method rejects: for plugins that must not call back. */
export const NO_ENGINE: EngineServices = new Proxy({} as EngineServices, {
  get: (_t, prop) => () => Promise.reject(new Error(`engine service ${String(prop)} not expected`)),
});
