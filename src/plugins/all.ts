/**
 * Registers every plugin kind (the engine loads only the kinds a config names:
 * src/execution/plugin_types.ts).
 * Each kind's module calls `registerPluginType` when imported.
 * @module
 */
import "./mcp/plugin.ts";
import "./builtin/plugin.ts";
import "./mock/plugin.ts";
import "./stepflow/plugin.ts";
