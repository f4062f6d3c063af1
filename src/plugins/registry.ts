/**
 * Plugin kinds by config `type`. Each kind registers a factory in src/plugins/all.ts.
 * @module
 */
import type { Plugin } from "./plugin.ts";
import type { PluginConfig } from "../config/model.ts";

/** Makes a plugin instance from its config entry (not yet initialised). */
export type PluginFactory = (name: string, config: PluginConfig) => Plugin;

const factories = new Map<string, PluginFactory>();

/** Registers the factory for a plugin `type`. */
export function registerPluginType(type: string, factory: PluginFactory): void {
  factories.set(type, factory);
}

/**
 * Creates the plugin for a config entry.
 * @throws {Error} `Unknown plugin type 'x' for plugin 'name'` if no factory is registered.
 */
export function createPlugin(name: string, config: PluginConfig): Plugin {
  const f = factories.get(config.type);
  if (!f) throw new Error(`Unknown plugin type '${config.type}' for plugin '${name}'`);
  return f(name, config);
}
