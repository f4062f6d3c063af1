/**
 * The CLI: builds the commander program from one module per subcommand and runs it.
 *
 * Why commander: it is the most used and best kept argument parser on npm (zero dependencies,
 * typed, subcommands, generated help, mutual exclusion via custom checks), and it runs under
 * Deno unchanged. JSR's `@std/cli` cannot be reached from here.
 * @module
 */
import { Command, CommanderError } from "commander";
import { EXIT_INVALID, EXIT_OK } from "./exit_codes.ts";
import { describeError } from "../errors.ts";
import { registerCommands } from "./commands.ts";

/** Runs the CLI with `args` (without the program name). Returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let exitCode = EXIT_OK;
  const program = new Command("stepflow")
    .description("Stepflow: run AI workflows defined in YAML (stepflow 0.8 compatible)")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => writeStdout(s),
      writeErr: (s) => writeStderr(s),
    });
  registerCommands(program, (code) => exitCode = code);
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return 0;
      if (err.code === "commander.help") return 0;
      return EXIT_INVALID;
    }
    writeStderr(`error: ${describeError(err)}\n`);
    return EXIT_INVALID;
  }
  return exitCode;
}

/** Writes text to stdout, all of it. */
export function writeStdout(s: string): void {
  writeAll(Deno.stdout, s);
}

/** Writes text to stderr, all of it. */
export function writeStderr(s: string): void {
  writeAll(Deno.stderr, s);
}

function writeAll(w: { writeSync(p: Uint8Array): number }, s: string): void {
  const bytes = new TextEncoder().encode(s);
  let off = 0;
  while (off < bytes.length) off += w.writeSync(bytes.subarray(off));
}
