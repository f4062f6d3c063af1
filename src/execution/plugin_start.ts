/**
 * Starting the plugins of an engine (`Engine.create`): all at once, cancellable, every failure
 * kept with its plugin.
 * @module
 */
import { PluginStartError } from "../errors.ts";
import { logger } from "../log.ts";
import type { EngineServices, Plugin } from "../plugins/plugin.ts";

/**
 * Calls `init` of every plugin in parallel and waits for all of them.
 * @throws {PluginStartError} listing each plugin that failed with its cause; the signal's reason
 *   when `signal` aborts first (plugins still starting are the caller's to close).
 */
export async function startPlugins(
  plugins: ReadonlyMap<string, Plugin>,
  ctx: { workingDirectory: string; engine: EngineServices; maxOutputBytes: number },
  signal?: AbortSignal,
): Promise<void> {
  const started = Promise.allSettled(
    [...plugins.values()].map((p) =>
      p.init({
        name: p.name,
        workingDirectory: ctx.workingDirectory,
        engine: ctx.engine,
        log: logger(p.name),
        maxOutputBytes: ctx.maxOutputBytes,
      })
    ),
  );
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<"aborted">((resolve) => {
    onAbort = () => resolve("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  const results = await Promise.race([started, aborted]);
  if (onAbort) signal?.removeEventListener("abort", onAbort);
  if (results === "aborted") throw signal!.reason;
  const names = [...plugins.keys()];
  const failures = results.flatMap((r, i) =>
    r.status === "rejected" ? [{ plugin: names[i], cause: r.reason }] : []
  );
  if (failures.length > 0) throw new PluginStartError(failures);
}
