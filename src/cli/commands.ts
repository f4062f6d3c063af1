/**
 * The list of subcommands. Each subcommand lives in its own file and exports
 * `register(program, setExit)`. Modules are loaded when needed: `stepflow run ...` loads the
 * `run` module alone (and what it imports), not the server, the test runner or the visualizer
 * (issue 17, goal 5: cold start); anything else (help, a global flag first, an unknown name)
 * registers every subcommand, in this order.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./output.ts";

type Register = (program: Command, setExit: SetExit) => void;

/** Subcommand name → its module's `register`, in the order help lists them. */
const COMMAND_MODULES: [string, () => Promise<{ register: Register }>][] = [
  ["run", () => import("./run.ts")],
  ["test", () => import("./test.ts")],
  ["permissions", () => import("./permissions.ts")],
  ["validate", () => import("./validate.ts")],
  ["list-components", () => import("./list_components.ts")],
  ["visualize", () => import("./visualize.ts")],
  ["runs", () => import("./runs.ts")],
  ["signal", () => import("./signal.ts")],
  ["resume", () => import("./resume.ts")],
  ["run-batch", () => import("./run_batch.ts")],
  ["serve", () => import("./serve.ts")],
  ["submit", () => import("./submit.ts")],
  ["submit-batch", () => import("./submit_batch.ts")],
];

/** The subcommand names. */
export const COMMAND_NAMES: readonly string[] = COMMAND_MODULES.map(([name]) => name);

/**
 * Adds the subcommands to `program`: only `first` when it names one (the command line's first
 * argument), else every subcommand.
 */
export async function registerCommands(
  program: Command,
  setExit: SetExit,
  first?: string,
): Promise<void> {
  const one = COMMAND_MODULES.find(([name]) => name === first);
  const chosen = one !== undefined ? [one] : COMMAND_MODULES;
  const modules = await Promise.all(chosen.map(([, load]) => load()));
  for (const m of modules) m.register(program, setExit);
}
