/**
 * `deno task compile`: builds the `stepflow` executables with `deno compile` for the five
 * release targets into `dist/`, and writes `dist/SHA256SUMS` (the `sha256sum` format:
 * `<hex>  <file name>`).
 *
 * ```sh
 * deno task compile                                  # all five targets
 * deno task compile --target x86_64-unknown-linux-gnu  # one (repeatable)
 * ```
 *
 * The executables hold everything: our modules, the npm dependencies, and the JSON schemas
 * (imported with `with { type: "json" }`, so they are part of the module graph and need no
 * `--include`; nothing reads our own files at run time). Flow examples are documentation and
 * are not embedded.
 *
 * Permissions are fixed when compiling (an executable takes no `--allow-*` flags): the five
 * scoped kinds stepflow uses — read, write, net, env, run — and never ffi, sys or import, so
 * not `-A`. For runs scoped to one flow, use `deno run $(stepflow permissions ...)
 * dist/stepflow.js` instead (docs/install.md).
 *
 * `deno compile` downloads the `denort` runtime of each target from dl.deno.land the first time
 * (cached afterwards); without that network it fails for that target and this script says so.
 * @module
 */

/** The release targets (`deno compile --target`). */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** Permissions baked into the executables. */
export const COMPILE_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-run",
];

/**
 * Runtime flags of the executables and the installed launcher. `--unstable-no-legacy-abort`:
 * `stepflow serve` watches each waiting request's `request.signal` to let go of a client that
 * closed its connection; under Deno 2.9's legacy behaviour the signal also fires on every answer
 * sent, and Deno prints a warning about it on stderr the first time (the behaviour this flag
 * selects becomes Deno's default in a later release). deno.json's `unstable` sets it for the
 * repo's own tasks and tests.
 */
export const RUNTIME_FLAGS = ["--unstable-no-legacy-abort"];

/** Files to embed besides the module graph (none needed today; see the module doc). */
export const INCLUDE: string[] = [];

/** Output file of `target` under `dist/`. */
export function outputName(target: string): string {
  return `stepflow-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/** Lowercase hex SHA-256 of a file's bytes. */
export async function sha256File(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function main(args: string[]): Promise<number> {
  const wanted: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--target" && args[i + 1]) wanted.push(args[++i]);
    else if (args[i].startsWith("--target=")) wanted.push(args[i].slice("--target=".length));
    else {
      console.error(`compile: unknown argument ${args[i]} (use --target T, repeatable)`);
      return 2;
    }
  }
  const targets = wanted.length > 0 ? wanted : [...TARGETS];
  await Deno.mkdir("dist", { recursive: true });
  const built: string[] = [];
  let failed = 0;
  for (const target of targets) {
    const out = `dist/${outputName(target)}`;
    const cmd = [
      "compile",
      "--target",
      target,
      "--output",
      out,
      ...COMPILE_PERMISSIONS,
      ...RUNTIME_FLAGS,
      ...INCLUDE.flatMap((p) => ["--include", p]),
      "main.ts",
    ];
    console.error(`compile: deno ${cmd.join(" ")}`);
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: cmd,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (code === 0) built.push(outputName(target));
    else {
      failed++;
      console.error(`compile: ${target} failed (exit ${code})`);
    }
  }
  if (built.length > 0) {
    const lines = [];
    for (const name of built) lines.push(`${await sha256File(`dist/${name}`)}  ${name}`);
    await Deno.writeTextFile("dist/SHA256SUMS", lines.join("\n") + "\n");
    console.error(`compile: wrote dist/SHA256SUMS (${built.length} files)`);
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
