/**
 * Small assertion helpers for tests (no @std/assert here: JSR is unreachable).
 * @module
 */
import { canonicalJson } from "../src/json/exact_json.ts";

/** Throws unless `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Deep equality by canonical JSON (key order ignored, raw numbers compared by text). */
export function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  const a = canonicalJson(actual);
  const e = canonicalJson(expected);
  if (a !== e) {
    throw new Error(`${msg ? msg + "\n" : ""}expected: ${e}\n  actual: ${a}`);
  }
}

/** Strict `===` equality. */
export function assertStrictEquals<T>(actual: T, expected: T, msg?: string): void {
  if (actual !== expected) {
    throw new Error(
      `${msg ? msg + "\n" : ""}expected: ${String(expected)}\n  actual: ${String(actual)}`,
    );
  }
}

/** Throws unless `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, msg?: string): void {
  if (!text.includes(part)) {
    throw new Error(`${msg ? msg + "\n" : ""}expected to find: ${part}\n  in: ${text}`);
  }
}

/** Throws unless `text` matches `re`. */
export function assertMatch(text: string, re: RegExp, msg?: string): void {
  if (!re.test(text)) throw new Error(`${msg ? msg + "\n" : ""}expected ${re} to match: ${text}`);
}

/** Asserts that `fn` throws (an instance of `cls` when given, with `msgIncludes` when given). */
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  cls?: new (...args: any[]) => Error,
  msgIncludes?: string,
): Error {
  try {
    fn();
  } catch (e) {
    checkError(e, cls, msgIncludes);
    return e as Error;
  }
  throw new Error("expected function to throw");
}

/** Asserts that `fn` rejects (see {@linkcode assertThrows}). */
export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  cls?: new (...args: any[]) => Error,
  msgIncludes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    checkError(e, cls, msgIncludes);
    return e as Error;
  }
  throw new Error("expected promise to reject");
}

// deno-lint-ignore no-explicit-any
function checkError(e: unknown, cls?: new (...args: any[]) => Error, msgIncludes?: string) {
  if (cls && !(e instanceof cls)) {
    throw new Error(`expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
  if (msgIncludes && !(e as Error).message.includes(msgIncludes)) {
    throw new Error(
      `expected error message to include "${msgIncludes}", got: ${(e as Error).message}`,
    );
  }
}

/** Runs the CLI (`main.ts`) as a real subprocess; returns exit code, stdout and stderr. */
export async function runCli(
  args: string[],
  options: { cwd?: string; stdin?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", main, ...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The repo root (absolute, no trailing slash). */
export const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * The conformance folder beside the repo (`../shared/conformance/stepflow-0.8`). Absent in a
 * fresh clone: register tests that read it with `conformanceTest()` of tests/_conformance.ts.
 */
export { CONFORMANCE_DIR } from "./_conformance.ts";

/** Runs `fn` with a fresh temporary directory, removed afterwards whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    return await fn(dir);
  } finally {
    await removeTree(dir);
  }
}

/**
 * Removes directory `dir` and what it holds, trying again for up to 10 s while it is not empty
 * at the end: a worker of a run cancelled a moment ago may still write a file into it (a
 * `ready_file`), between the listing and the last `rmdir` of a recursive remove (seen in CI:
 * "Directory not empty (os error 39)"). A `dir` already gone is fine.
 */
export async function removeTree(dir: string): Promise<void> {
  for (let i = 0;; i++) {
    try {
      await Deno.remove(dir, { recursive: true });
      return;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      const notEmpty = e instanceof Error && /not empty|os error 39/i.test(e.message);
      if (!notEmpty || i >= 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
