/**
 * A config's errors printed with file:line:col and the line, for the commands that start an
 * engine without printing diagnostics first (`test`, `list-components`): what `run` and
 * `validate` print for the same config.
 * @module
 */
import type { LoadedConfig } from "../config/model.ts";
import { validateConfig } from "../config/preflight.ts";
import { formatDiagnostic } from "../core/diagnostics.ts";
import { fileExcerpt } from "../flow/excerpt.ts";

/**
 * The errors of `config` that have a position, each as `  file:line:col: error: message [path]`
 * and its line; empty when there are none (or the config cannot be checked).
 */
export function configProblems(config: LoadedConfig | undefined): string {
  if (config === undefined) return "";
  let ds;
  try {
    ds = validateConfig(config).filter((d) => d.level !== "warning" && d.position !== undefined);
  } catch {
    return "";
  }
  return ds.map((d) => `  ${formatDiagnostic(d)}\n${fileExcerpt(d.position)}`).join("");
}
