/**
 * The list of subcommands. Each subcommand lives in its own file and exports
 * `register(program, setExit)`.
 * @module
 */
import type { Command } from "commander";
import * as permissions from "./permissions.ts";
import * as validate from "./validate.ts";

/** Sets the process exit code from inside an action. */
export type SetExit = (code: number) => void;

/** Adds every subcommand to `program`. */
export function registerCommands(program: Command, setExit: SetExit): void {
  // Subcommands register here: run, test, validate, list-components, ...
  permissions.register(program, setExit);
  validate.register(program, setExit);
}
