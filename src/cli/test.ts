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
 * One command, kept whole (over 400 lines): `stepflow test` discovers flows, starts their test
 * servers (test_servers.ts), runs the cases and reports; the steps share one report state.
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
import { isFlowDocument, type LoadedFlow, parseFlowValue, serializeFlow } from "../flow/load.ts";
import { type DocumentSourceMap, formatFromPath, parseDocument } from "../core/document.ts";
import type { SourceMap } from "../core/diagnostics.ts";
import { FLOW_SCHEMA_URL, type TestCase } from "../flow/model.ts";
import {
  findTestConfig,
  loadConfigFile,
  loadConfigForFlow,
  parseConfigValue,
} from "../config/load.ts";
import type { LoadedConfig } from "../config/model.ts";
import { Engine } from "../execution/engine.ts";
import { startTestServers, type TestServers } from "./test_servers.ts";
import { canonicalJson, isJsonObject, type JsonValue, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { describeError, FlowLoadError } from "../errors.ts";
import { fileExcerpt } from "../flow/excerpt.ts";
import { decodeUtf8 } from "../core/utf8.ts";

/** The value every string `run_id` is replaced by before comparing (0.8). */
export const NIL_UUID = "00000000-0000-0000-0000-000000000000";

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

/**
 * The files to test: each file argument as given; each directory walked recursively for
 * `.yaml`/`.yml` files, sorted.
 * @throws {Error} when a path does not exist.
 */
export async function collectFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(p);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(`cannot read '${p}': no such file or directory`);
      }
      throw new Error(`cannot read '${p}': ${describeError(e)}`, { cause: e });
    }
    if (info.isDirectory) {
      const found: string[] = [];
      await walk(p.replace(/\/+$/, "") || "/", found);
      out.push(...found.sort());
    } else {
      out.push(p);
    }
  }
  return out;
}

async function walk(dir: string, out: string[]): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      await walk(path, out);
    } else if (e.isFile && /\.ya?ml$/i.test(e.name)) {
      out.push(path);
    }
  }
}

type FileLoad =
  | { kind: "flow"; loaded: LoadedFlow }
  | { kind: "skip"; reason: string }
  | { kind: "error"; message: string };

async function loadForTest(file: string): Promise<FileLoad> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    return { kind: "error", message: `cannot read: ${describeError(e)}` };
  }
  let text: string;
  try {
    text = decodeUtf8(bytes, file);
  } catch (e) {
    // Not UTF-8: an error only for a file that says it is a flow (as for syntax errors below).
    if (!new TextDecoder().decode(bytes).includes(FLOW_SCHEMA_URL)) {
      return { kind: "skip", reason: "not a flow (not UTF-8 text)" };
    }
    const where = e instanceof FlowLoadError ? `\n${fileExcerpt(e.position).trimEnd()}` : "";
    return { kind: "error", message: describeError(e) + where };
  }
  let value: JsonValue;
  let source;
  try {
    const doc = parseDocument(text, formatFromPath(file), file);
    value = doc.value;
    source = doc.source;
  } catch (e) {
    // Only a file that says it is a flow is an error; anything else is not ours to judge.
    if (text.includes(FLOW_SCHEMA_URL)) {
      const where = e instanceof FlowLoadError ? `\n${fileExcerpt(e.position).trimEnd()}` : "";
      return { kind: "error", message: describeError(e) + where };
    }
    return { kind: "skip", reason: "not a flow (not a single YAML document)" };
  }
  if (!isFlowDocument(value)) {
    return { kind: "skip", reason: `not a flow (no 'schema: ${FLOW_SCHEMA_URL}')` };
  }
  try {
    return { kind: "flow", loaded: parseFlowValue(value, source, file) };
  } catch (e) {
    const where = e instanceof FlowLoadError ? `\n${fileExcerpt(e.position).trimEnd()}` : "";
    return { kind: "error", message: describeError(e) + where };
  }
}

async function configFor(
  file: string,
  loaded: LoadedFlow,
  flags: TestFlags,
  servers?: TestServers,
): Promise<LoadedConfig> {
  const dir = dirOf(file);
  if (flags.config !== undefined) return await loadConfigFile(flags.config);
  const test = loaded.flow.test;
  const inline = test?.config ?? test?.stepflow_config;
  if (inline !== undefined && inline !== null) {
    const raw = loaded.raw;
    const key = test?.config !== undefined ? "config" : "stepflow_config";
    const rawTest = isJsonObject(raw) && isJsonObject(raw.test) ? raw.test : undefined;
    const value = rawTest?.[key] ?? inline;
    return parseConfigValue(servers ? servers.substitute(value) : value, {
      workingDirectory: absolute(dir),
      source: sourceAt(loaded.source, ["test", key]),
    });
  }
  const testConfig = await findTestConfig(dir);
  if (testConfig) return await loadConfigFile(testConfig);
  return await loadConfigForFlow({ flowPath: file });
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
      servers = await startTestServers(specs, absolute(dirOf(file)));
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
    out(`${file}: error: ${startFailure(e, source)}\n`);
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

/** Compares a case's expected output with the actual result (normalised, as YAML text). */
export function compareCase(
  c: TestCase,
  actual: FlowResult,
): { pass: boolean; expected: string; actual: string } {
  const a = normalizeResult(actual as unknown as JsonValue);
  if (c.output === undefined) return { pass: false, expected: "", actual: toYaml(a) };
  const e = normalizeResult(c.output);
  return { pass: canonicalJson(a) === canonicalJson(e), expected: toYaml(e), actual: toYaml(a) };
}

/**
 * A FlowResult as 0.8 compares it: keys sorted, any string value of a key `run_id` replaced by
 * {@linkcode NIL_UUID}, any key `backtrace` removed.
 */
export function normalizeResult(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(normalizeResult);
  if (!isJsonObject(v)) return v;
  const out: Record<string, JsonValue> = {};
  for (const k of Object.keys(v).sort()) {
    if (k === "backtrace") continue;
    const x = v[k];
    out[k] = k === "run_id" && typeof x === "string" ? NIL_UUID : normalizeResult(x);
  }
  return out;
}

/** A simple line diff (`--- Expected`, `+++ Actual`, then `-`/`+`/` ` lines; LCS based). */
export function lineDiff(expected: string, actual: string): string {
  const a = expected.split("\n").filter((l, i, arr) => !(l === "" && i === arr.length - 1));
  const b = actual.split("\n").filter((l, i, arr) => !(l === "" && i === arr.length - 1));
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  let out = "--- Expected\n+++ Actual\n";
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out += ` ${a[i]}\n`;
      i++;
      j++;
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out += `-${a[i]}\n`;
      i++;
    } else {
      out += `+${b[j]}\n`;
      j++;
    }
  }
  return out;
}

/**
 * Rewrites a flow file with new expected outputs (0.8: the whole flow is re-serialised, so
 * comments and unknown keys are lost; keys are camelCase).
 */
async function updateFile(
  file: string,
  loaded: LoadedFlow,
  updates: Map<string, FlowResult>,
): Promise<void> {
  const test = loaded.flow.test;
  if (!test) return;
  const cases = test.cases.map((c) => {
    const u = updates.get(c.name);
    return u === undefined ? c : { ...c, output: u as unknown as TestCase["output"] };
  });
  const normalised = serializeFlow({ ...loaded.flow, test: { ...test, cases } });
  const lower = file.toLowerCase();
  const text = lower.endsWith(".json") || lower.endsWith(".jsonc")
    ? stringifyJson(normalised, 2) + "\n"
    : toYaml(normalised);
  await Deno.writeTextFile(file, text);
}

function sourceAt(
  source: SourceMap | undefined,
  prefix: (string | number)[],
): SourceMap | undefined {
  const s = source as Partial<DocumentSourceMap> | undefined;
  return typeof s?.at === "function" ? s.at(prefix) : undefined;
}

function dirOf(file: string): string {
  const i = file.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : file.slice(0, i);
}

function absolute(p: string): string {
  if (p.startsWith("/")) return p;
  return `${Deno.cwd().replace(/\/$/, "")}/${p === "." ? "" : p}`.replace(/\/$/, "");
}
