/**
 * Shared setup of the MCP plugin tests: where the real servers are, a fixture server, a plugin
 * built and initialised with a small EngineServices double and a recording logger.
 * @module
 */
import { McpPlugin } from "../../../src/plugins/mcp/plugin.ts";
import { McpPluginConfigSchema } from "../../../src/config/model.ts";

import type { Logger } from "../../../src/log.ts";
import { NO_ENGINE, recordingLogger, testExecuteContext } from "../../_log.ts";
import { REPO_ROOT } from "../../_assert.ts";

/** Where `scripts/setup_mcp_servers.sh` installs the servers. */
export const SERVERS_DIR = `${REPO_ROOT}/.cache/mcp-servers/node_modules/@modelcontextprotocol`;

/** The fault fixture server. */
export const FAULT_SERVER = `${REPO_ROOT}/tests/fixtures/mcp/fault_server.ts`;

/**
 * The `node` entry script of an installed server package.
 * @throws {Error} telling to run the setup script when the server is not installed.
 */
export function serverScript(pkg: "server-everything" | "server-filesystem"): string {
  const path = `${SERVERS_DIR}/${pkg}/dist/index.js`;
  try {
    Deno.statSync(path);
  } catch {
    throw new Error(
      `MCP test server @modelcontextprotocol/${pkg} is not installed at ${path}: ` +
        `run \`bash scripts/setup_mcp_servers.sh\` from the repo root first`,
    );
  }
  return path;
}

/** A plugin config for the everything server over stdio. */
export function everythingConfig(extra: Record<string, unknown> = {}) {
  return {
    type: "mcp",
    command: "node",
    args: [serverScript("server-everything"), "stdio"],
    ...extra,
  };
}

/** A plugin config for the fault fixture server in `mode`. */
export function faultConfig(mode = "ok", extra: Record<string, unknown> = {}) {
  return {
    type: "mcp",
    command: Deno.execPath(),
    args: ["run", "--quiet", "--no-prompt", "--allow-run=sleep", FAULT_SERVER, mode],
    ...extra,
  };
}

/** An EngineServices double: MCP tools never call back into the engine. */
export const noEngine = NO_ENGINE;
export { recordingLogger };

/** A plugin built from `config` and initialised; `log` records what it logged. */
export async function startPlugin(
  config: Record<string, unknown>,
  name = "srv",
): Promise<{ plugin: McpPlugin; log: Logger & { lines: string[] } } & AsyncDisposable> {
  const plugin = new McpPlugin(name, McpPluginConfigSchema.parse(config));
  const log = recordingLogger();
  await plugin.init({ name, workingDirectory: REPO_ROOT, engine: noEngine, log });
  return { plugin, log, [Symbol.asyncDispose]: () => plugin.close() };
}

/** An ExecuteContext for MCP plugin tests (tests/_log.ts). */
export const stepCtx = testExecuteContext;

/** True while a process with `pid` exists (Linux /proc). */
export function processExists(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}
