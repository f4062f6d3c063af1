/**
 * The list of subcommands. Each subcommand lives in its own file and exports
 * `register(program, setExit)`.
 * @module
 */
import type { Command } from "commander";
import * as permissions from "./permissions.ts";
import * as validate from "./validate.ts";
import * as run from "./run.ts";
import * as test from "./test.ts";
import * as listComponents from "./list_components.ts";
import * as visualize from "./visualize.ts";
import * as runs from "./runs.ts";
import * as signal from "./signal.ts";
import * as resume from "./resume.ts";
import * as serve from "./serve.ts";
import * as submit from "./submit.ts";
import * as submitBatch from "./submit_batch.ts";
import * as runBatch from "./run_batch.ts";
import type { SetExit } from "./output.ts";

/** Adds every subcommand to `program`. */
export function registerCommands(program: Command, setExit: SetExit): void {
  // Subcommands register here: run, test, validate, list-components, ...
  run.register(program, setExit);
  test.register(program, setExit);
  permissions.register(program, setExit);
  validate.register(program, setExit);
  listComponents.register(program, setExit);
  visualize.register(program, setExit);
  runs.register(program, setExit);
  signal.register(program, setExit);
  resume.register(program, setExit);
  runBatch.register(program, setExit);
  serve.register(program, setExit);
  submit.register(program, setExit);
  submitBatch.register(program, setExit);
}
