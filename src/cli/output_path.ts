/**
 * Checking an output file flag (`--output`, `-o`) before a command does its work, so that a result
 * (of a run with side effects, of a run on a service) is not produced only to be lost.
 * @module
 */
import { dirname, resolve } from "node:path";
import { UsageError } from "../errors.ts";

/**
 * Fails before anything runs when `--output` cannot be written: a directory, or a file in a
 * directory that does not exist (the result of a run with side effects would be lost).
 * @param flag the flag's name in the message.
 * @throws {UsageError}
 */
export async function checkOutputPath(output: string, flag = "--output"): Promise<void> {
  // Only what is known for sure stops the run (a scoped run may not be allowed to stat these).
  const stat = async (p: string) => {
    try {
      return await Deno.stat(p);
    } catch (e) {
      return e instanceof Deno.errors.NotFound ? "missing" : "unknown";
    }
  };
  const info = await stat(output);
  if (typeof info === "object" && info.isDirectory) {
    throw new UsageError(`${flag} '${output}' is a directory: give a file name`);
  }
  if (info !== "missing") return;
  const dir = dirname(resolve(output));
  const parent = await stat(dir);
  if (parent === "missing" || (typeof parent === "object" && !parent.isDirectory)) {
    throw new UsageError(
      `${flag} '${output}': directory '${dir}' does not exist: create it or choose another path`,
    );
  }
}
