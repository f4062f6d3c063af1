/**
 * `stepflow test [PATH...] [--config C] [--case NAME]... [--update] [--diff]` (stepflow 0.8 §7):
 * runs the `test.cases` of flow files and compares each FlowResult with the expected `output`.
 *
 * - Directories are walked recursively for `*.yaml`/`*.yml` (sorted; dot-directories and
 *   `node_modules` skipped). A YAML file whose top-level `schema` is not the flow schema URL
 *   (a config, a Kubernetes manifest) is skipped with a notice; a flow file that cannot be loaded
 *   is an error with its file:line:col (0.8 would skip or panic).
 * - Config per flow: `--config` > `test.config` (working directory = the flow's) >
 *   `stepflow-config.test.yml` (and variants) in the flow's directory > normal discovery.
 * - Cases run one after another on one engine per file. Results are compared after
 *   normalisation: keys sorted, string `run_id` values replaced by the nil UUID, `backtrace` keys
 *   removed, numbers compared by their JSON text (`15` ≠ `15.0`).
 * - The last line is `N passed, M failed` (M counts failures and errors), then `, K skipped` for
 *   skipped files. Exit 1 if anything failed.
 * - `test.servers` are started before a file's cases and stopped after them (see
 *   src/cli/test_servers.ts); their `{name.url}`/`{name.port}` fill in `test.config`.
 *
 * The command and the run of each file's cases are here; finding, loading and rewriting flow
 * files in src/cli/test_files.ts, comparing results in src/cli/test_compare.ts.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./output.ts";
import {
  EXIT_CANCELLED,
  EXIT_FAILED,
  EXIT_INVALID,
  EXIT_OK,
  EXIT_PERMISSION,
} from "./exit_codes.ts";
import { onCancelSignals } from "./signals.ts";
import { progressMode, QUIET_HELP, RunProgress } from "./progress.ts";
import { startFailure } from "./run.ts";
import { permissionHint } from "../core/permission_hint.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { toYaml } from "./yaml_output.ts";
import type { SourceMap } from "../core/diagnostics.ts";
import type { LoadedConfig } from "../config/model.ts";
import { Engine } from "../execution/engine.ts";
import { startTestServers, TestServerError, type TestServers } from "./test_servers.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { describeError } from "../errors.ts";
import { configProblems } from "./config_problems.ts";
import { compareCase, lineDiff } from "./test_compare.ts";
import { absolute, collectFiles, configFor, dirOf, loadForTest, updateFile } from "./test_files.ts";

/** Flags of `stepflow test`. */
export interface TestFlags {
  config?: string;
  case?: string[];
  update?: boolean;
  diff?: boolean;
  quiet?: boolean;
}

/** Totals of a test command. */
export interface TestSummary {
  filesTested: number;
  filesSkipped: number;
  /** YAML files that are not flows (configs, manifests): ignored with a notice. */
  notFlows: number;
  total: number;
  passed: number;
  failed: number;
  errors: number;
  /** Names of the cases `--case` selected, and of all cases met (for an unmatched `--case`). */
  casesMatched: Set<string>;
  casesSeen: Set<string>;
  /** The first missing Deno permission met (one line naming the flag), if any. */
  permission?: string;
}

/** Adds `test` to `program`. */
export function register(program: Command, setExit: SetExit): void {
  program.command("test")
    .description("Run the test cases of flow files (files, or directories searched recursively)")
    .argument("[paths...]", "flow files or directories", ["."])
    .option("--config <file>", "config file for every flow (overrides test.config)")
    .option(
      "--case <name>",
      "run only this case (repeatable)",
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option("--update", "write the actual outputs into the flow files as expected outputs")
    .option("--diff", "show a line diff instead of the new output on a mismatch")
    .option("-q, --quiet", QUIET_HELP)
    .action(async (paths: string[], flags: TestFlags) => {
      setExit(await testCommand(paths, flags, writeStdout));
    });
}

/**
 * Runs `stepflow test` and returns the exit code; `out` receives the report. Never throws.
 */
export async function testCommand(
  paths: string[],
  flags: TestFlags,
  out: (text: string) => void,
): Promise<number> {
  const summary: TestSummary = {
    filesTested: 0,
    filesSkipped: 0,
    notFlows: 0,
    total: 0,
    passed: 0,
    failed: 0,
    errors: 0,
    casesMatched: new Set(),
    casesSeen: new Set(),
  };
  let files: string[];
  try {
    files = await collectFiles(paths);
  } catch (e) {
    // stdout is for the report; nothing was tested
    writeStderr(`error: ${describeError(e)}\n`);
    return EXIT_INVALID;
  }
  // Ctrl-C / SIGTERM: the running case is cancelled, its engine and test servers are closed (no
  // step service is left running), no further file is tested, and the exit code is 130.
  const cancel = onCancelSignals((sig) =>
    writeStderr(`${sig}: cancelling the tests (again to exit at once)\n`)
  );
  try {
    for (const file of files) {
      if (cancel.signal.aborted) break;
      await testFile(file, flags, summary, out, cancel.signal);
    }
  } finally {
    cancel.dispose();
  }
  out("\n=== Test Summary ===\n");
  out(`Files tested: ${summary.filesTested}\n`);
  out(`Files skipped: ${summary.filesSkipped}\n`);
  out(`Non-flow files ignored: ${summary.notFlows}\n`);
  out(`Total test cases: ${summary.total}\n`);
  out(`Passed: ${summary.passed}\n`);
  out(`Failed: ${summary.failed}\n`);
  out(`Execution errors: ${summary.errors}\n`);
  const bad = summary.failed + summary.errors;
  out(
    `${summary.passed} passed, ${bad} failed${
      summary.filesSkipped > 0 ? `, ${summary.filesSkipped} skipped` : ""
    }\n`,
  );
  if (cancel.signal.aborted) {
    writeStderr("tests cancelled; step services and test servers stopped\n");
    return EXIT_CANCELLED;
  }
  const unmatched = (flags.case ?? []).filter((n) => !summary.casesMatched.has(n));
  if (unmatched.length > 0) {
    const seen = [...summary.casesSeen].map((n) => `'${n}'`).join(", ") || "none";
    writeStderr(
      `error: --case ${
        unmatched.map((n) => `'${n}'`).join(", ")
      } matched no test case (the cases are: ${seen})\n`,
    );
    return EXIT_INVALID;
  }
  if (summary.permission) {
    writeStderr(`error: ${summary.permission}\n`);
    return EXIT_PERMISSION;
  }
  return bad > 0 ? EXIT_FAILED : EXIT_OK;
}

async function testFile(
  file: string,
  flags: TestFlags,
  summary: TestSummary,
  out: (text: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const load = await loadForTest(file);
  if (load.kind === "skip") {
    summary.notFlows++;
    out(`${file}: skipped, ${load.reason}\n`);
    return;
  }
  if (load.kind === "error") {
    summary.filesTested++;
    summary.errors++;
    summary.permission ??= permissionHint(load.message);
    out(`${load.message.startsWith(file) ? "" : `${file}: `}error: ${load.message}\n`);
    return;
  }
  const loaded = load.loaded;
  const allCases = loaded.flow.test?.cases ?? [];
  const cases = flags.case && flags.case.length > 0
    ? allCases.filter((c) => flags.case!.includes(c.name))
    : allCases;
  for (const c of cases) summary.casesMatched.add(c.name);
  for (const c of allCases) summary.casesSeen.add(c.name);
  if (cases.length === 0) {
    summary.filesSkipped++;
    out(
      allCases.length > 0
        ? `${file}: Skipped (no case named ${flags.case!.map((n) => `'${n}'`).join(", ")})\n`
        : `${file}: Skipped (no test cases)\n`,
    );
    return;
  }
  summary.filesTested++;
  let servers: TestServers | undefined;
  let engine: Engine;
  let config: LoadedConfig | undefined;
  try {
    const specs = loaded.flow.test?.servers;
    if (specs && Object.keys(specs).length > 0) {
      servers = await startTestServers(specs, absolute(dirOf(file)), loaded.source);
    }
    config = await configFor(file, loaded, flags, servers);
    engine = await Engine.create(config, { signal });
  } catch (e) {
    await servers?.stop();
    if (signal?.aborted) return;
    summary.errors += cases.length;
    summary.total += cases.length;
    summary.permission ??= permissionHint(e);
    const source = (config as { source?: SourceMap } | undefined)?.source;
    if (e instanceof TestServerError) {
      // at its place in the flow file, as config errors are
      out(`${file}: error: a test server could not be started:\n${e.format()}`);
      return;
    }
    const problems = configProblems(config);
    out(
      problems !== ""
        ? `${file}: error: its config is not valid:\n${problems}`
        : `${file}: error: ${startFailure(e, source)}\n`,
    );
    return;
  }
  let passed = 0;
  let errors = 0;
  const updates = new Map<string, FlowResult>();
  // the progress line of each case on stderr (src/cli/progress.ts)
  const progress = new RunProgress({ mode: progressMode(flags.quiet) });
  const unobserve = progress.mode === "off" ? undefined : engine.observe(progress);
  try {
    for (const c of cases) {
      if (signal?.aborted) break;
      summary.total++;
      out(`----------\nRunning Test Case ${c.name}\n`);
      let actual: FlowResult;
      progress.begin({ label: `case ${c.name}`, totalSteps: loaded.flow.steps?.length ?? 0 });
      try {
        actual = await engine.run(loaded, c.input, { signal });
        progress.end();
      } catch (e) {
        progress.end();
        errors++;
        summary.errors++;
        summary.permission ??= permissionHint(e);
        out(`Test Case ${c.name} error: ${describeError(e)}\n`);
        continue;
      }
      if (signal?.aborted) break;
      const verdict = compareCase(c, actual);
      if (verdict.pass) {
        passed++;
        summary.passed++;
        continue;
      }
      summary.failed++;
      if (actual.outcome === "failed") summary.permission ??= permissionHint(actual.error);
      updates.set(c.name, actual);
      if (c.output === undefined) {
        out(`Test Case ${c.name} has no expected output. Actual Output:\n${toYaml(actual)}`);
      } else if (flags.diff) {
        out(`Test Case ${c.name} failed.\n${lineDiff(verdict.expected, verdict.actual)}`);
      } else {
        out(`Test Case ${c.name} failed. New Output:\n${toYaml(actual)}`);
      }
    }
  } finally {
    progress.end();
    unobserve?.();
    await engine.close();
    await servers?.stop();
  }
  if (signal?.aborted) {
    out(`${file}: cancelled\n`);
    return;
  }
  out(`${file}: ${passed}/${cases.length} passed${errors > 0 ? ` (${errors} errors)` : ""}\n`);
  if (flags.update && updates.size > 0) {
    try {
      await updateFile(file, loaded, updates);
      out(`${file}: updated ${updates.size} expected output(s)\n`);
    } catch (e) {
      out(`${file}: error: cannot update: ${describeError(e)}\n`);
    }
  }
}
