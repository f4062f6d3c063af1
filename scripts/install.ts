/**
 * `deno task install`: installs a `stepflow` command that works without this checkout and
 * without `deno` on PATH.
 *
 * ```sh
 * npx --yes deno@2.9.6 task install                 # into ~/.deno/bin (or $DENO_INSTALL_ROOT/bin)
 * npx --yes deno@2.9.6 task install --root /opt/sf  # into /opt/sf/bin
 * npx --yes deno@2.9.6 task install --launcher      # skip the compile attempt
 * ```
 *
 * What gets installed, in this order of preference:
 *
 * 1. **An executable** made by `deno compile` for this machine: one file holding the program and
 *    the Deno runtime, permissions fixed at `--allow-read --allow-write --allow-net --allow-env
 *    --allow-run` (as the release executables). `deno compile` downloads the runtime (`denort`)
 *    from dl.deno.land the first time; without that network this step fails and:
 * 2. **The bundle and a launcher**: `dist/stepflow.js` is copied to `<root>/lib/stepflow/`, and
 *    `<root>/bin/stepflow` (`stepflow.cmd` on Windows) runs it with the same five permissions and
 *    `--no-config` (a `deno.json` in the directory you run it from is not read), using the Deno
 *    that ran this script by its absolute path. When that Deno lives in npm's npx cache (as with
 *    `npx --yes deno@2.9.6`), it is copied (hard-linked when possible) to `<root>/lib/stepflow/`
 *    first, so the command survives the cache being cleaned.
 *
 * Either way nothing points into the checkout: it can be moved or deleted. The script runs the
 * installed command with `--version` before it reports success, and says when `<root>/bin` is
 * not on PATH.
 *
 * Needs `dist/stepflow.js` (the task runs `deno task bundle` first). Exit 0 when installed, 1
 * when nothing could be installed, 2 for bad arguments.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { COMPILE_PERMISSIONS, RUNTIME_FLAGS } from "./compile.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const WINDOWS = Deno.build.os === "windows";

/** The permissions of the installed command (the release executables' five scoped kinds). */
export const INSTALL_PERMISSIONS: readonly string[] = COMPILE_PERMISSIONS;

/** Parsed arguments. */
export interface InstallOptions {
  /** Install root: the command goes to `<root>/bin`. */
  root: string;
  /** Command name. @default "stepflow" */
  name: string;
  /** Skip the `deno compile` attempt and install the launcher. */
  launcher: boolean;
}

/**
 * The install root as `deno install -g` chooses it: `--root`, else `$DENO_INSTALL_ROOT`, else
 * `$HOME/.deno` (`%USERPROFILE%\.deno` on Windows).
 * @throws {Error} when none of them is set.
 */
export function defaultRoot(env: (name: string) => string | undefined): string {
  const fromEnv = env("DENO_INSTALL_ROOT");
  if (fromEnv) return resolve(fromEnv);
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) throw new Error("cannot find the install root: set HOME or DENO_INSTALL_ROOT");
  return join(home, ".deno");
}

/** Parses `[--root DIR] [--name NAME] [--launcher]`. @throws {Error} on anything else. */
export function parseArgs(
  args: string[],
  env: (name: string) => string | undefined,
): InstallOptions {
  let root: string | undefined;
  let name = "stepflow";
  let launcher = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--root") root = resolve(value());
    else if (a.startsWith("--root=")) root = resolve(a.slice(7));
    else if (a === "--name") name = value();
    else if (a.startsWith("--name=")) name = a.slice(7);
    else if (a === "--launcher") launcher = true;
    else throw new Error(`unknown argument '${a}' (use --root DIR, --name NAME, --launcher)`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`--name must be a plain file name`);
  return { root: root ?? defaultRoot(env), name, launcher };
}

/** A POSIX shell word: single-quoted unless plain. */
function sh(s: string): string {
  return /^[A-Za-z0-9_./=:,+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The launcher script that runs `bundle` with `deno` (absolute paths). */
export function launcherScript(deno: string, bundle: string, windows = WINDOWS): string {
  const flags = ["run", "--no-config", ...INSTALL_PERMISSIONS, ...RUNTIME_FLAGS];
  if (windows) {
    return `@echo off\r\nREM stepflow, installed by deno task install\r\n"${deno}" ${
      flags.join(" ")
    } "${bundle}" %*\r\n`;
  }
  return `#!/bin/sh\n# stepflow, installed by \`deno task install\`: the bundle run by this Deno\n` +
    `exec ${[deno, ...flags, bundle].map(sh).join(" ")} "$@"\n`;
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * The gist of `deno compile`'s error output: its first line and its last cause, without colour
 * codes and backtrace (e.g. `error: Writing deno compile executable ...: failed to lookup address
 * information: Name or service not known`).
 */
export function compileFailure(stderr: Uint8Array): string {
  // deno-lint-ignore no-control-regex
  const text = new TextDecoder().decode(stderr).replace(/\x1b\[[0-9;]*m/g, "");
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const end = lines.findIndex((l) => l.startsWith("Stack backtrace"));
  const kept = end === -1 ? lines : lines.slice(0, end);
  const first = kept[0] ?? "";
  const last = (kept.at(-1) ?? "").replace(/^\d+:\s*/, "");
  return kept.length > 1 && last !== first ? `${first}: ${last}` : first;
}

/** Runs `deno compile` for this machine into `out`; true when it worked. */
async function tryCompile(out: string): Promise<boolean> {
  const tmp = `${out}.partial`;
  console.error(`install: deno compile (downloads the Deno runtime the first time) ...`);
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--quiet",
      "--output",
      tmp,
      ...INSTALL_PERMISSIONS,
      ...RUNTIME_FLAGS,
      join(ROOT, "main.ts"),
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const made = WINDOWS && !tmp.endsWith(".exe") ? `${tmp}.exe` : tmp;
  if (r.code !== 0) {
    console.error(
      `install: deno compile failed (${compileFailure(r.stderr) || `exit ${r.code}`}); ` +
        `installing the bundle with a launcher instead`,
    );
    await removeIfExists(made);
    return false;
  }
  await Deno.rename(made, out);
  return true;
}

/** The Deno runtime the launcher runs: this one, copied out of npm's npx cache when it is there. */
async function launcherRuntime(libDir: string): Promise<string> {
  const self = Deno.execPath();
  if (!/[\\/]_npx[\\/]/.test(self)) return self;
  const copy = join(libDir, WINDOWS ? "deno.exe" : "deno");
  await removeIfExists(copy);
  try {
    await Deno.link(self, copy);
  } catch {
    await Deno.copyFile(self, copy);
  }
  if (!WINDOWS) await Deno.chmod(copy, 0o755);
  return copy;
}

/** Installs; returns the path of the installed command. */
export async function install(options: InstallOptions): Promise<{ path: string; kind: string }> {
  const bundle = join(ROOT, "dist", "stepflow.js");
  try {
    await Deno.stat(bundle);
  } catch {
    throw new Error(
      `${bundle} is missing: run \`deno task bundle\` first (deno task install does)`,
    );
  }
  const binDir = join(options.root, "bin");
  const libDir = join(options.root, "lib", options.name);
  await Deno.mkdir(binDir, { recursive: true });
  const exe = join(binDir, WINDOWS ? `${options.name}.exe` : options.name);
  const cmd = join(binDir, `${options.name}.cmd`);
  const script = join(binDir, options.name);

  if (!options.launcher && await tryCompile(`${exe}.new`)) {
    await removeIfExists(cmd);
    await removeIfExists(libDir);
    await Deno.rename(`${exe}.new`, exe);
    return { path: exe, kind: "a self-contained executable (deno compile)" };
  }
  await Deno.mkdir(libDir, { recursive: true });
  const installedBundle = join(libDir, "stepflow.js");
  await Deno.copyFile(bundle, installedBundle);
  const deno = await launcherRuntime(libDir);
  const target = WINDOWS ? cmd : script;
  if (WINDOWS) await removeIfExists(exe);
  await Deno.writeTextFile(target, launcherScript(deno, installedBundle));
  if (!WINDOWS) await Deno.chmod(target, 0o755);
  return {
    path: target,
    kind: `the bundle ${installedBundle} with a launcher running ${deno}`,
  };
}

async function main(args: string[]): Promise<number> {
  let options: InstallOptions;
  try {
    options = parseArgs(args, (n) => Deno.env.get(n));
  } catch (e) {
    console.error(`install: ${(e as Error).message}`);
    return 2;
  }
  let done;
  try {
    done = await install(options);
  } catch (e) {
    console.error(`install: ${(e as Error).message}`);
    return 1;
  }
  const check = await new Deno.Command(done.path, {
    args: ["--version"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const version = new TextDecoder().decode(check.stdout).trim();
  if (check.code !== 0) {
    console.error(
      `install: ${done.path} was written but does not run: ${
        new TextDecoder().decode(check.stderr).trim()
      }`,
    );
    return 1;
  }
  console.error(`install: installed ${done.path} (stepflow ${version}): ${done.kind}`);
  const binDir = dirname(done.path);
  const onPath = (Deno.env.get("PATH") ?? "").split(WINDOWS ? ";" : ":").some((p) =>
    resolve(p) === binDir
  );
  if (!onPath) {
    console.error(
      `install: ${binDir} is not on PATH; add it, e.g. export PATH="${binDir}:$PATH"`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
