/**
 * The flow files of `stepflow test` (src/cli/test.ts): finding them (directories walked for
 * `*.yaml`/`*.yml`, sorted; dot-directories and `node_modules` skipped), loading one (a YAML file
 * that is not a flow is skipped; a flow that cannot be loaded is an error with its file:line:col),
 * the config its cases run with, and rewriting it with new expected outputs (`--update`).
 * @module
 */
import { isFlowDocument, type LoadedFlow, parseFlowValue } from "../flow/load.ts";
import { serializeFlow } from "../flow/serialize.ts";
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
import type { TestServers } from "./test_servers.ts";
import { isJsonObject, type JsonValue, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { describeError, FlowLoadError } from "../errors.ts";
import { fileExcerpt } from "../flow/excerpt.ts";
import { decodeUtf8 } from "../core/utf8.ts";
import { readFileBounded } from "../core/read_bounded.ts";
import { toYaml } from "./yaml_output.ts";

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

/** A file as `stepflow test` sees it: a flow, not a flow (skipped), or a broken flow. */
export type FileLoad =
  | { kind: "flow"; loaded: LoadedFlow }
  | { kind: "skip"; reason: string }
  | { kind: "error"; message: string };

/** Reads and loads a file; never throws. */
export async function loadForTest(file: string): Promise<FileLoad> {
  let bytes: Uint8Array;
  try {
    bytes = await readFileBounded(file);
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

/**
 * The config a flow file's cases run with: `--config` > `test.config` (working directory = the
 * flow's; `{name.url}` of test servers filled in) > `stepflow-config.test.yml` in the flow's
 * directory > normal discovery.
 */
export async function configFor(
  file: string,
  loaded: LoadedFlow,
  flags: { config?: string },
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

/**
 * Rewrites a flow file with new expected outputs (0.8: the whole flow is re-serialised, so
 * comments and unknown keys are lost; keys are camelCase).
 */
export async function updateFile(
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

/** The directory of a file path. */
export function dirOf(file: string): string {
  const i = file.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : file.slice(0, i);
}

/** A path made absolute against the working directory. */
export function absolute(p: string): string {
  if (p.startsWith("/")) return p;
  return `${Deno.cwd().replace(/\/$/, "")}/${p === "." ? "" : p}`.replace(/\/$/, "");
}
