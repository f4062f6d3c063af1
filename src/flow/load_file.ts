/**
 * Loading a flow file without importing the `yaml`, `jsonc-parser` or `zod` packages up front
 * (issue 17, goal 5: cold start): the file is parsed by `parseDocumentAsync`
 * (src/core/document_base.ts), which imports a package only when the fast readers decline the
 * file, and its shape is read by the zod-free reader of src/flow/fast_model.ts, which leaves what
 * it is not sure of (and every error) to the zod model (src/flow/shapes_zod.ts, loaded then).
 * Same values, positions and errors as src/flow/load.ts's `loadFlowText`, which re-exports
 * everything here.
 * @module
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../json/exact_json.ts";
import { FlowLoadError } from "../errors.ts";
import type { SourceMap } from "../core/diagnostics.ts";
import type { Flow, LoadedFlow } from "./model.ts";
import { fastFlow, FLOW_SCHEMA_URL } from "./fast_model.ts";
import { formatFromPath, parseDocumentAsync } from "../core/document_base.ts";
import { decodeUtf8 } from "../core/utf8.ts";
import { readFileBounded, ReadTooLargeError } from "../core/read_bounded.ts";
import { describeValue } from "../json/describe.ts";
import { tryShape } from "../core/fast_shape.ts";
import { CheckNotLoaded, withChecks } from "../core/lazy_check.ts";

type ZodFlowCheck = (value: JsonObject, source?: SourceMap, file?: string) => Flow;
let zodFlowCheck: ZodFlowCheck | undefined;
const loadZodFlowCheck = async () => {
  zodFlowCheck ??= (await import("./shapes_zod.ts")).zodFlowCheck;
};

/**
 * Makes {@linkcode parseFlowValue} use `check` (src/flow/shapes_zod.ts's `zodFlowCheck`) when
 * its fast reader declines, without loading it on demand: src/flow/load.ts does this at import.
 */
export function useZodFlowCheck(check: ZodFlowCheck): void {
  zodFlowCheck = check;
}

export type { LoadedFlow } from "./model.ts";

/**
 * Reads and parses a flow file (`.yaml`, `.yml`, `.json`, `.jsonc`).
 * @throws {FlowLoadError} if the file cannot be read, has an unknown extension, is not valid
 * YAML/JSON (with file:line:col), or does not have the shape of a flow (with the JSON path).
 */
export async function loadFlowFile(path: string): Promise<LoadedFlow> {
  // Read first: a missing file or a directory is named as such, whatever its extension.
  const text = await readText(path, "flow");
  const doc = await parseDocumentAsync(text, formatFromPath(path), path);
  return await withChecks(() => parseFlowValue(doc.value, doc.source, path));
}

/**
 * Checks a parsed value against the flow model.
 * @throws {ShapeError} naming the first problem's JSON path and position, e.g.
 * `$.steps[1]: missing required key 'id'`, with every problem found in `problems`.
 * @throws {CheckNotLoaded} when the value needs the zod model and it is not loaded (never after
 * src/flow/load.ts is imported): run it through `withChecks` (src/core/lazy_check.ts).
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
  let flow = tryShape<Flow>(fastFlow, value);
  if (flow === undefined) {
    if (zodFlowCheck === undefined) throw new CheckNotLoaded("flow shape", loadZodFlowCheck);
    flow = zodFlowCheck(value, source, file);
  }
  const loaded: LoadedFlow = { flow, raw: value };
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
    bytes = await readFileBounded(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new FlowLoadError(`Cannot read ${what} file '${path}': no such file`);
    }
    if (e instanceof ReadTooLargeError) {
      throw new FlowLoadError(`Cannot read ${what} file '${path}': ${e.message}`);
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
