/**
 * Reading values given on the command line: run input (`--input FILE | --input-json J |
 * --input-yaml Y | stdin`), variables and overrides, each a JSON or YAML value with exact
 * numbers. Mutually exclusive flags are checked here.
 * @module
 */
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { type DocumentFormat, parseDocumentAsync } from "../core/document_base.ts";
import { describeError, FlowLoadError, UsageError } from "../errors.ts";
import { decodeUtf8 } from "../core/utf8.ts";
import {
  MAX_READ_FILE_BYTES,
  readBounded,
  readFileBounded,
  ReadTooLargeError,
} from "../core/read_bounded.ts";

/** Input flags of `run` (stepflow 0.8 §6). */
export interface InputFlags {
  input?: string;
  inputJson?: string;
  inputYaml?: string;
  stdinFormat?: string;
}

/**
 * Parses `text` as JSON or YAML, naming `what` in errors.
 * @throws {UsageError} with the position of a syntax error.
 */
export async function parseValue(
  text: string,
  format: DocumentFormat,
  what: string,
): Promise<JsonValue> {
  try {
    return (await parseDocumentAsync(text, format, what)).value;
  } catch (e) {
    const message = describeError(e);
    // A syntax error already starts with `${what}:line:col`.
    throw new UsageError(message.startsWith(`${what}:`) ? message : `${what}: ${message}`, {
      cause: e,
    });
  }
}

/** The format of a value file from its extension (`.json` → json, else yaml). */
export function valueFileFormat(path: string): DocumentFormat {
  const lower = path.toLowerCase();
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".jsonc")) return "jsonc";
  return "yaml";
}

/**
 * Reads a value file (JSON or YAML by extension).
 * @throws {UsageError} when it cannot be read or parsed.
 */
export async function readValueFile(path: string, what: string): Promise<JsonValue> {
  let bytes: Uint8Array;
  try {
    bytes = await readFileBounded(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.IsADirectory
      ? "it is a directory; give a file"
      : describeError(e);
    throw new UsageError(
      `cannot read ${what} file '${path}': ${why}`,
      why === "no such file" || why.startsWith("it is") ? undefined : { cause: e },
    );
  }
  try {
    const text = decodeUtf8(bytes, path);
    if (text.trim() === "") throw new UsageError(`${what} file '${path}' is empty`);
    return (await parseDocumentAsync(text, valueFileFormat(path), path)).value;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (e instanceof FlowLoadError) throw new UsageError(`${what}: ${e.message}`, { cause: e });
    throw new UsageError(`${what} file '${path}': ${describeError(e)}`, { cause: e });
  }
}

/**
 * One value from a group of mutually exclusive flags: `--x FILE`, `--x-json J`, `--x-yaml Y`.
 * @returns undefined when none is given.
 * @throws {UsageError} when more than one is given, or the value does not parse.
 */
export async function readValueFlags(
  name: string,
  file: string | undefined,
  json: string | undefined,
  yaml: string | undefined,
): Promise<JsonValue | undefined> {
  const given = [file, json, yaml].filter((v) => v !== undefined).length;
  if (given > 1) {
    throw new UsageError(`use only one of --${name}, --${name}-json and --${name}-yaml`);
  }
  if (file !== undefined) return await readValueFile(file, name);
  if (json !== undefined) return await parseValue(json, "json", `--${name}-json`);
  if (yaml !== undefined) return await parseValue(yaml, "yaml", `--${name}-yaml`);
  return undefined;
}

/**
 * The run input: from `--input FILE`, `--input-json`, `--input-yaml`, else stdin
 * (`--stdin-format json|yaml`, default json). An empty stdin is a usage error naming the
 * flags.
 * @throws {UsageError} for conflicting flags, unreadable or invalid input.
 */
export async function readRunInput(
  flags: InputFlags,
  stdin: () => Promise<string>,
): Promise<JsonValue> {
  const v = await readValueFlags("input", flags.input, flags.inputJson, flags.inputYaml);
  if (v !== undefined) return v;
  const fmt = flags.stdinFormat ?? "json";
  if (fmt !== "json" && fmt !== "yaml") {
    throw new UsageError(`--stdin-format must be json or yaml, got '${fmt}'`);
  }
  const text = await stdin();
  if (text.trim() === "") {
    throw new UsageError(
      "no input: give --input FILE, --input-json '<json>' or --input-yaml '<yaml>', or pipe JSON to stdin",
    );
  }
  return await parseValue(text, fmt, "stdin");
}

/**
 * Reads all of stdin as UTF-8 text.
 * @throws {UsageError} when it is not valid UTF-8 (naming the line and column).
 */
export async function readStdin(): Promise<string> {
  const read = await readBounded(Deno.stdin.readable, MAX_READ_FILE_BYTES);
  if (read.over) {
    throw new UsageError(
      `cannot read the input from stdin: ${new ReadTooLargeError(MAX_READ_FILE_BYTES).message}`,
    );
  }
  const all = read.bytes;
  try {
    return decodeUtf8(all, "stdin", "input");
  } catch (e) {
    throw new UsageError(describeError(e), { cause: e });
  }
}

/**
 * Variables from `STEPFLOW_VAR_<NAME>` environment variables (0.8's `--env-variables` design):
 * the value parsed as JSON, else kept as a string. A variable named in the flow's `variables`
 * schema is found by its upper-cased name; other `STEPFLOW_VAR_*` variables are lower-cased.
 */
export async function envVariables(
  env: Record<string, string>,
  schema: JsonValue | undefined,
): Promise<Record<string, JsonValue>> {
  const out: Record<string, JsonValue> = {};
  const known = new Map<string, string>();
  if (isJsonObject(schema) && isJsonObject(schema.properties)) {
    for (const name of Object.keys(schema.properties)) known.set(name.toUpperCase(), name);
  }
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith("STEPFLOW_VAR_")) continue;
    const upper = k.slice("STEPFLOW_VAR_".length);
    const name = known.get(upper) ?? upper.toLowerCase();
    try {
      out[name] = (await parseDocumentAsync(v, "json")).value;
    } catch {
      out[name] = v;
    }
  }
  return out;
}
