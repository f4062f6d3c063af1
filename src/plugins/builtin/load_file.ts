/**
 * `/load_file` (stepflow 0.8 §4): `{path, format?: json | yaml | text}` →
 * `{data, metadata: {resolved_path, size_bytes, format}}`. Relative paths resolve against the
 * config working directory; the format defaults from the extension (`.json`, `.yml`/`.yaml`,
 * else text). JSON numbers stay exact. A missing file is a failed step (`NOT_FOUND`, code -32011).
 *
 * Bounded (extension): a file larger than the output size limit (config `maxOutputSize`) fails
 * the step with 413 `OUTPUT_TOO_LARGE` without being read (a regular file: by its size; a
 * device or pipe such as /dev/zero: once the limit is passed); a file that is not UTF-8 is an
 * error naming the line and column of the first bad byte (it was read with U+FFFD).
 * @module
 */
import { success } from "../../core/flow_result.ts";
import { describeError, PluginError } from "../../errors.ts";
import { type JsonValue, parseJson } from "../../json/exact_json.ts";
import { parseDocumentAsync } from "../../core/document_base.ts";
import { decodeUtf8 } from "../../core/utf8.ts";
import { engineFailure } from "../../core/error_codes.ts";
import type { BuiltinComponent } from "./component.ts";
import { BuiltinError } from "./_failure.ts";
import { abortable } from "../../core/abort.ts";
import { invalidInput, objectInput, optionalString, requireString } from "./_input.ts";

const NAME = "/load_file";

/** The `/load_file` component. */
export const loadFile: BuiltinComponent = {
  info: {
    component: NAME,
    description: "Load a JSON, YAML or text file (relative paths from the config directory)",
    input_schema: {
      type: "object",
      properties: {
        path: { type: "string" },
        format: { type: ["string", "null"], enum: ["json", "yaml", "text", null] },
      },
      required: ["path"],
    },
    output_schema: {
      type: "object",
      properties: { data: {}, metadata: { type: "object" } },
      required: ["data", "metadata"],
    },
  },
  async execute(input, ctx, env) {
    const o = objectInput(NAME, input);
    const path = requireString(NAME, o, "path");
    const given = optionalString(NAME, o, "format");
    if (given !== undefined && given !== "json" && given !== "yaml" && given !== "text") {
      throw invalidInput(
        NAME,
        `\`format\` must be json, yaml or text, got ${JSON.stringify(given)}`,
      );
    }
    const resolved = path.startsWith("/")
      ? path
      : `${env.workingDirectory.replace(/\/$/, "")}/${path}`;
    const lower = resolved.toLowerCase();
    const format = given ??
      (lower.endsWith(".json")
        ? "json"
        : lower.endsWith(".yaml") || lower.endsWith(".yml")
        ? "yaml"
        : "text");
    const limit = env.maxOutputBytes;
    const read = await readBounded(resolved, limit, ctx.signal).catch((e) => {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const given = path === resolved ? "" : ` (path '${path}')`;
      const detail = `Cannot read '${resolved}'${given}: ${
        withoutPath(describeError(e), resolved)
      }`;
      if (e instanceof Deno.errors.NotFound) {
        throw new BuiltinError("NOT_FOUND", `Failed to load file: ${detail}`, { cause: e });
      }
      throw new PluginError("Failed to load file", [detail], { cause: e });
    });
    if (read.over) {
      // 413 like any output over the limit (never retried): the file was not read to its end
      return engineFailure(
        "OUTPUT_TOO_LARGE",
        `Step '${ctx.stepId}': file '${resolved}' is ${read.exact ? "" : "more than "}` +
          `${read.size} bytes, over the output size limit of ${limit} bytes (${
            read.exact ? "it was not read" : "reading stopped at the limit"
          }; raise maxOutputSize, or read it in a step service and pass a blob id)`,
        { step: ctx.stepId, path: resolved, sizeBytes: read.size, limitBytes: limit! },
      );
    }
    const bytes = read.bytes;
    let text: string;
    try {
      text = decodeUtf8(bytes, resolved);
    } catch (e) {
      throw new PluginError("Failed to load file", [
        `Cannot read '${resolved}' as ${format}: ${withoutPath(describeError(e), resolved)}`,
      ], { cause: e });
    }
    let data: JsonValue;
    try {
      data = format === "json"
        ? parseJson(text)
        : format === "yaml"
        ? (await parseDocumentAsync(text, "yaml", resolved)).value
        : text;
    } catch (e) {
      throw new PluginError("Failed to load file", [
        `Cannot parse '${resolved}' as ${format}: ${withoutPath(describeError(e), resolved)}`,
      ], { cause: e });
    }
    return success({
      data,
      metadata: { resolved_path: resolved, size_bytes: bytes.length, format },
    });
  },
};

/**
 * `detail`, an error about file `file`, without naming the file again (the message names it
 * once): Deno's `: stat '<file>'` is dropped, a position's `<file>:3:7:` becomes `line 3, column
 * 7:`. Before, a missing file of a long path was named three times in one message (`Cannot read
 * '<file>' (path '<file>'): No such file or directory (os error 2): stat '<file>'`).
 */
function withoutPath(detail: string, file: string): string {
  const quoted = `'${file}'`;
  let out = detail;
  for (let at = out.indexOf(quoted); at >= 0; at = out.indexOf(quoted)) {
    // `: <operation> '<file>'` (the operation: stat, open, readfile, ...)
    const before = /:? ?[a-z_]* $/.exec(out.slice(0, at));
    const start = before === null ? at : at - before[0].length;
    out = out.slice(0, start) + out.slice(at + quoted.length);
  }
  // `<file>:3:7: ...` (a position in it) → `line 3, column 7: ...`
  return out.split(`${file}:`).map((part, i) =>
    i === 0 ? part : part.replace(/^(\d+):(\d+)/, "line $1, column $2")
  ).join("");
}

/** A file read up to a limit: its bytes, or how much it has (at least) when over the limit. */
type Bounded =
  | { over: false; bytes: Uint8Array }
  | { over: true; size: number; exact: boolean };

/**
 * Reads `path` without holding more than `limit` bytes: a regular file whose size is over the
 * limit is not read at all; anything else (a device such as /dev/zero, a pipe, a file that
 * grows) is read in chunks until it ends or passes the limit. Stops when `signal` aborts.
 * @throws the file system's error (not found, a directory, permission denied).
 */
async function readBounded(
  path: string,
  limit: number | undefined,
  signal: AbortSignal,
): Promise<Bounded> {
  const info = await Deno.stat(path);
  if (info.isDirectory) throw new Error("it is a directory");
  if (limit !== undefined && info.isFile && info.size > limit) {
    return { over: true, size: info.size, exact: true };
  }
  // Opening a named pipe waits for a writer, and reading one (or a stuck network filesystem)
  // for data: both are raced against the step's signal, so a step timeout, a run timeout or
  // Ctrl-C ends the step instead of waiting for ever (a file opened after the abort is closed).
  const opening = Deno.open(path, { read: true });
  const file = await abortable(opening, signal, () => {
    opening.then((f) => f.close(), () => {});
  });
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const n = await abortable(file.read(buf), signal);
      if (n === null) break;
      total += n;
      if (limit !== undefined && total > limit) return { over: true, size: total, exact: false };
      chunks.push(buf.slice(0, n));
    }
    const bytes = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      bytes.set(c, off);
      off += c.length;
    }
    return { over: false, bytes };
  } finally {
    file.close();
  }
}
