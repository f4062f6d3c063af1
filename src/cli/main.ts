/**
 * The CLI: builds the commander program from one module per subcommand and runs it.
 *
 * Why commander: it is the most used and best kept argument parser on npm (zero dependencies,
 * typed, subcommands, generated help, mutual exclusion via custom checks), and it runs under
 * Deno unchanged. JSR's `@std/cli` cannot be reached from here.
 * @module
 */
import { Command, CommanderError } from "commander";
import { EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_PERMISSION } from "./exit_codes.ts";
import { describeError } from "../errors.ts";
import { permissionHint } from "../core/permission_hint.ts";
import { COMMAND_NAMES, registerCommands } from "./commands.ts";
import { StdoutWriteError, writeStderr, writeStdout } from "./output.ts";
import { registerGlobalFlags } from "./global_flags.ts";
import { ignoreFileSizeSignal } from "../core/file_size_signal.ts";

/** The subcommands of `stepflow runs` (src/cli/runs.ts). */
const RUNS_SUBCOMMANDS = ["list", "show", "prune"];

/**
 * An option that takes one value, given twice (`run --flow a.yaml --flow b.yaml`,
 * `--input-json A --input-json B`), is a usage error naming both values, as stepflow 0.8's
 * parser (clap) refuses it; the last one used to win silently. Options that collect values
 * (variadic ones, `--case` whose parser takes the previous value) and flags without a value may
 * repeat.
 */
function refuseRepeatedOptions(cmd: Command): void {
  for (const sub of cmd.commands) refuseRepeatedOptions(sub);
  const seen = new Map<string, string>();
  for (const opt of cmd.options) {
    if (opt.variadic || !(opt.required || opt.optional)) continue;
    if (opt.parseArg !== undefined && opt.parseArg.length >= 2) continue;
    const name = opt.name();
    cmd.on(`option:${name}`, (value: unknown) => {
      const text = String(value);
      const first = seen.get(name);
      if (first !== undefined) {
        const show = (v: string) => JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
        cmd.error(
          `error: option '${opt.long ?? opt.flags}' is given twice (${show(first)} and ` +
            `${show(text)}): give it once`,
          { code: "commander.optionRepeated" },
        );
      }
      seen.set(name, text);
    });
  }
}

/** Runs the CLI with `args` (without the program name). Returns the exit code. */
export async function main(args: string[]): Promise<number> {
  // past `ulimit -f`, a write (the SQLite store, an output file) fails instead of killing us
  ignoreFileSizeSignal();
  let exitCode = EXIT_OK;
  const program = new Command("stepflow")
    .description("Stepflow: run AI workflows defined in YAML (stepflow 0.8 compatible)")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => writeStdout(s),
      writeErr: (s) => writeStderr(s),
      // No colours: commander would otherwise read NO_COLOR/FORCE_COLOR/CLICOLOR_FORCE, each
      // needing its own --allow-env.
      getOutHasColors: () => false,
      getErrHasColors: () => false,
      // a usage error in one line that says where to look (inherited by the subcommands)
      outputError: (str, write) => {
        // `stepflow runs prune ...`: the help of `runs prune` (the group's help lists only names)
        const sub = !COMMAND_NAMES.includes(args[0])
          ? ""
          : args[0] === "runs" && RUNS_SUBCOMMANDS.includes(args[1])
          ? `runs ${args[1]} `
          : `${args[0]} `;
        write(`${str.trimEnd().replace(/\s*\n\s*/g, " ")} (see 'stepflow ${sub}--help')\n`);
      },
    });
  registerGlobalFlags(program, (s) => writeStderr(s));
  await registerCommands(program, (code) => exitCode = code, args[0]);
  refuseRepeatedOptions(program);
  const removeGuard = _guardUnhandledPermissionErrors();
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (err) {
    const hint = permissionHint(err);
    if (hint) {
      writeStderr(`error: ${hint}\n`);
      return EXIT_PERMISSION;
    }
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return 0;
      // `stepflow` alone (or a command group without its subcommand) shows help on stderr: a
      // usage error, so a script that forgot its arguments does not pass.
      // (commander gives that help exit code 1; `stepflow help [command]` asked for it: 0)
      if (err.code === "commander.help") return err.exitCode !== 0 ? EXIT_INVALID : 0;
      return EXIT_INVALID;
    }
    if (err instanceof StdoutWriteError) {
      // a full disk under `stepflow validate > report.txt`: not a usage error
      writeStderr(`error: cannot write to stdout: ${err.message}\n`);
      return EXIT_FAILED;
    }
    writeStderr(`error: ${describeError(err)}\n`);
    return EXIT_INVALID;
  } finally {
    removeGuard();
  }
  return exitCode;
}

/**
 * While a command runs, a missing Deno permission that surfaces outside its promise chain (an
 * unhandled rejection or uncaught error in a plugin's background task) ends the process with
 * the one-line hint and {@linkcode EXIT_PERMISSION} instead of a stack trace. Other errors keep
 * Deno's default handling. Returns the function that removes the guard.
 */
function _guardUnhandledPermissionErrors(): () => void {
  const onError = (reason: unknown, ev: Event) => {
    const hint = permissionHint(reason);
    if (!hint) return;
    ev.preventDefault();
    writeStderr(`error: ${hint}\n`);
    Deno.exit(EXIT_PERMISSION);
  };
  const onRejection = (ev: PromiseRejectionEvent) => onError(ev.reason, ev);
  const onUncaught = (ev: ErrorEvent) => onError(ev.error, ev);
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onUncaught);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onUncaught);
  };
}
