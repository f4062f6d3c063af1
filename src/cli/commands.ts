/**
 * The list of subcommands. Each subcommand lives in its own file and exports
 * `register(program, setExit)`.
 * @module
 */
import type { Command } from "commander";

/** Sets the process exit code from inside an action. */
export type SetExit = (code: number) => void;

/** Adds every subcommand to `program`. */
export function registerCommands(_program: Command, _setExit: SetExit): void {
  // Subcommands register here: run, test, validate, list-components, ...
}
