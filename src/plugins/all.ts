/**
 * Registers every plugin kind. Import this once (the engine does) before creating plugins.
 * Each kind's module calls `registerPluginType` when imported.
 * @module
 */
import "./mcp/plugin.ts";
import "./builtin/plugin.ts";
import "./mock/plugin.ts";
import "./stepflow/plugin.ts";
