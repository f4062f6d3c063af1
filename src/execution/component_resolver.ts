/**
 * The engine's component resolver: a step's component path → the plugin that runs it (the
 * config's routes, src/config/router.ts), with whether its calls may be replayed after a crash
 * and the plugin's limits.
 * @module
 */
import type { Router, RouteTarget } from "../config/router.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { Plugin } from "../plugins/plugin.ts";
import type { ComponentResolver, RoutedComponent } from "./run_context.ts";
import type { PluginLimits } from "./limits.ts";

/**
 * A resolver over `router` and `plugins`. Routed components are kept by the router's answer: the
 * router returns the same RouteTarget object for a component whose route does not depend on the
 * input, so the hot path allocates nothing.
 * @throws {Error} from `resolve`, when a route names a plugin that is not configured (and the
 * router's own routing errors).
 */
export function componentResolver(
  router: Router,
  plugins: ReadonlyMap<string, Plugin>,
  limits: ReadonlyMap<string, PluginLimits>,
): ComponentResolver {
  const byTarget = new WeakMap<RouteTarget, RoutedComponent>();
  return {
    resolve: (component: string, input: JsonValue): RoutedComponent => {
      const r = router.resolve(component, input);
      let routed = byTarget.get(r);
      if (routed === undefined) {
        const plugin = plugins.get(r.plugin);
        if (!plugin) throw new Error(`Route for ${component} names unknown plugin '${r.plugin}'`);
        const rp = plugin.replayable;
        routed = {
          plugin,
          component: r.component,
          replayable: typeof rp === "function" ? rp.call(plugin, r.component) : rp === true,
        };
        const pl = limits.get(plugin.name);
        if (pl !== undefined) routed.limits = pl;
        byTarget.set(r, routed);
      }
      return routed;
    },
  };
}
