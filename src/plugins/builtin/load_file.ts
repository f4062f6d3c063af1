/**
 * `/load_file` (stepflow 0.8 §4): `{path, format?: json | yaml | text}` →
 * `{data, metadata: {resolved_path, size_bytes, format}}`. Relative paths resolve against the
 * config working directory; the format defaults from the extension (`.json`, `.yml`/`.yaml`,
 * else text). JSON numbers stay exact. A missing file is a failed step (`NOT_FOUND`, code -32011).
 * @module
 */
import { success } from "../../flow/flow_result.ts";
import { describeError, PluginError } from "../../errors.ts";
import { type JsonValue, parseJson } from "../../json/exact_json.ts";
import { parseDocument } from "../../flow/parse.ts";
import type { BuiltinComponent } from "./component.ts";
import { BuiltinError } from "./_failure.ts";
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
  async execute(input, _ctx, env) {
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
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(resolved);
    } catch (e) {
      const detail = `Cannot read '${resolved}' (path '${path}'): ${describeError(e)}`;
      if (e instanceof Deno.errors.NotFound) {
        throw new BuiltinError("NOT_FOUND", `Failed to load file: ${detail}`, { cause: e });
      }
      throw new PluginError("Failed to load file", [detail], { cause: e });
    }
    const text = new TextDecoder().decode(bytes);
    let data: JsonValue;
    try {
      data = format === "json"
        ? parseJson(text)
        : format === "yaml"
        ? parseDocument(text, "yaml", resolved).value
        : text;
    } catch (e) {
      throw new PluginError("Failed to load file", [
        `Cannot parse '${resolved}' as ${format}: ${describeError(e)}`,
      ], { cause: e });
    }
    return success({
      data,
      metadata: { resolved_path: resolved, size_bytes: bytes.length, format },
    });
  },
};
