/**
 * The plugin kinds by config `type`, each loaded when a config first names it: a run of built-in
 * steps does not load the step-service protocol, the MCP client (and its JSON Schema validator)
 * or the mock plugin (issue 17, goal 5: cold start). Each module registers its factory with
 * src/plugins/registry.ts when it is evaluated (src/plugins/all.ts imports them all at once).
 * @module
 */
const KINDS: Record<string, () => Promise<unknown>> = {
  builtin: () => import("../plugins/builtin/plugin.ts"),
  stepflow: () => import("../plugins/stepflow/plugin.ts"),
  mcp: () => import("../plugins/mcp/plugin.ts"),
  mock: () => import("../plugins/mock/plugin.ts"),
};

/**
 * Loads the plugin kinds named by `types` (unknown ones are left to `createPlugin`, which says
 * so). Resolves once their factories are registered.
 */
export async function loadPluginTypes(types: Iterable<string>): Promise<void> {
  const wanted = new Set(types);
  await Promise.all([...wanted].map((t) => KINDS[t]?.()));
}
