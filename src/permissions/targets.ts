/**
 * What a permission flag names (src/permissions/compute.ts): the `--allow-run` value of a
 * configured command, the executable a bare command is found as on PATH, a URL's `host:port` for
 * `--allow-net`, and the file of an SQLite database URL.
 * @module
 */
import { delimiter, isAbsolute, join, resolve } from "node:path";

/**
 * The `--allow-run` value for a configured command: a bare name as written (Deno resolves it
 * on PATH), a path resolved against the working directory.
 */
export function commandPermission(command: string, workingDirectory: string): string {
  return hasSeparator(command) ? resolve(workingDirectory, command) : command;
}

/** True when `command` is a path (not a bare name looked up on PATH). */
export function hasSeparator(command: string): boolean {
  return command.includes("/") || (Deno.build.os === "windows" && command.includes("\\"));
}

/**
 * The first executable named `command` in the PATH directories (relative ones against `cwd`),
 * as src/plugins/stepflow/spawn.ts finds it. Undefined when none (or PATH is unreadable).
 */
export function findOnPath(command: string, cwd: string, pathEnv?: string): string | undefined {
  let path = pathEnv;
  if (path === undefined) {
    try {
      path = Deno.env.get("PATH");
    } catch {
      return undefined;
    }
  }
  const exts = Deno.build.os === "windows" ? ["", ".exe", ".cmd", ".bat"] : [""];
  for (const dir of (path ?? "").split(delimiter).filter((d) => d !== "")) {
    for (const ext of exts) {
      const candidate = join(isAbsolute(dir) ? dir : resolve(cwd, dir), command + ext);
      try {
        const st = Deno.statSync(candidate);
        if (st.isFile && (st.mode === null || (st.mode & 0o111) !== 0)) return candidate;
      } catch {
        // not there (or not readable): try the next
      }
    }
  }
  return undefined;
}

/**
 * `host:port` for `--allow-net` from a URL (default ports 80/443), or undefined when the URL
 * does not parse (e.g. it still holds a `{server.url}` placeholder).
 */
export function netHost(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (!u.hostname) return undefined;
  const port = u.port || (u.protocol === "https:" ? "443" : u.protocol === "http:" ? "80" : "");
  return port ? `${u.hostname}:${port}` : u.hostname;
}

/**
 * The absolute database file of an SQLite `databaseUrl` (`sqlite:path.db?mode=rwc`,
 * `sqlite://path.db`), resolved against `workingDirectory`; undefined for `sqlite::memory:`
 * (which needs no permission).
 */
export function sqliteFile(databaseUrl: string, workingDirectory: string): string | undefined {
  if (!databaseUrl.startsWith("sqlite:")) return undefined;
  let rest = databaseUrl.slice("sqlite:".length);
  if (rest.startsWith("//")) rest = rest.slice(2);
  const q = rest.indexOf("?");
  const query = new URLSearchParams(q >= 0 ? rest.slice(q + 1) : "");
  if (q >= 0) rest = rest.slice(0, q);
  if (rest === "" || rest === ":memory:" || query.get("mode") === "memory") return undefined;
  return resolve(workingDirectory, rest);
}
