/**
 * Loading flows: file → {@linkcode parseDocument} (positions, exact numbers) → the zod
 * {@linkcode FlowSchema} → {@linkcode LoadedFlow}. Shape errors name the JSON path and the
 * file:line:col. Semantic checks (references, ids, unknown keys) are in `validate.ts`.
 *
 * Shape errors are built in src/flow/shape_errors.ts; the normalised flow whose text the flow id
 * hashes ({@linkcode serializeFlow}) in src/flow/serialize.ts. Both are re-exported here, as is
 * {@linkcode LoadedFlow} (src/flow/model.ts), for the callers that load flows.
 * @module
 */
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { FlowLoadError } from "../errors.ts";
import type { SourceMap } from "../core/diagnostics.ts";
import { FLOW_SCHEMA_URL, FlowSchema, type LoadedFlow } from "./model.ts";
import { type DocumentFormat, formatFromPath, parseDocument } from "../core/document.ts";
import { decodeUtf8 } from "../core/utf8.ts";
import { describeValue, repair, zodToLoadError } from "./shape_errors.ts";

export type { LoadedFlow } from "./model.ts";
export { ShapeError } from "./shape_errors.ts";
export { serializeFlow } from "./serialize.ts";

/**
 * Reads and parses a flow file (`.yaml`, `.yml`, `.json`, `.jsonc`).
 * @throws {FlowLoadError} if the file cannot be read, has an unknown extension, is not valid
 * YAML/JSON (with file:line:col), or does not have the shape of a flow (with the JSON path).
 */
export async function loadFlowFile(path: string): Promise<LoadedFlow> {
  // Read first: a missing file or a directory is named as such, whatever its extension.
  const text = await readText(path, "flow");
  const format = formatFromPath(path);
  return loadFlowText(text, { format, file: path });
}

/**
 * Parses flow text.
 * @param options.format default: from `options.file`'s extension, else `yaml` (YAML also reads JSON).
 * @throws {FlowLoadError} as {@linkcode loadFlowFile}.
 */
export function loadFlowText(
  text: string,
  options: { format?: DocumentFormat; file?: string } = {},
): LoadedFlow {
  const format = options.format ?? (options.file ? formatFromPath(options.file) : "yaml");
  const doc = parseDocument(text, format, options.file);
  return parseFlowValue(doc.value, doc.source, options.file);
}

/**
 * Checks a parsed value against the flow model.
 * @throws {ShapeError} naming the first problem's JSON path and position, e.g.
 * `$.steps[1]: missing required key 'id'`, with every problem found in `problems`.
 */
export function parseFlowValue(value: JsonValue, source?: SourceMap, file?: string): LoadedFlow {
  if (!isJsonObject(value)) {
    throw new FlowLoadError(
      `A flow must be a mapping with 'schema: ${FLOW_SCHEMA_URL}' and 'steps', got ${
        describeValue(value)
      }`,
      source?.positionOf([]) ?? (file ? { file, line: 1, col: 1 } : undefined),
    );
  }
  const result = FlowSchema.safeParse(value);
  if (!result.success) {
    const err = zodToLoadError(result.error, value, source, "flow");
    err.repaired = repair(value, result.error, source, file);
    throw err;
  }
  const loaded: LoadedFlow = { flow: result.data, raw: value };
  if (source) loaded.source = source;
  if (file !== undefined) loaded.file = file;
  return loaded;
}

/** True if `value` is a flow document: a mapping whose `schema` is the flow schema URL (§7). */
export function isFlowDocument(value: JsonValue): boolean {
  return isJsonObject(value) && value.schema === FLOW_SCHEMA_URL;
}

/**
 * Reads a UTF-8 text file (a byte-order mark is dropped), turning I/O errors into a
 * {@linkcode FlowLoadError} that names the file.
 * @throws {FlowLoadError} also when the file is not valid UTF-8 (with file:line:col).
 */
export async function readText(path: string, what: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FlowLoadError(`Cannot read ${what} file '${path}': no such file`);
    }
    if (e instanceof Deno.errors.NotCapable) {
      // the cause keeps Deno's text, from which the CLI names the exact --allow-read flag
      throw new FlowLoadError(
        `Cannot read ${what} file '${path}': permission denied (run with --allow-read)`,
        undefined,
        { cause: e },
      );
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new FlowLoadError(
        `Cannot read ${what} file '${path}': the file system denies access (check its owner and mode)`,
      );
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new FlowLoadError(
        `Cannot read ${what} file '${path}': it is a directory; give the ${what} file inside it`,
      );
    }
    throw new FlowLoadError(
      `Cannot read ${what} file '${path}': ${(e as Error).message}`,
      undefined,
      {
        cause: e,
      },
    );
  }
  return decodeUtf8(bytes, path);
}
