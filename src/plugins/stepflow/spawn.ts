/**
 * How a stdio step service is started (stepflow 0.8 §2.2, §3.4): the command is found on the
 * engine's `PATH` (or resolved against the working directory when it contains a `/`), and the
 * process gets **only** the configured `env` entries, after `${VAR}` substitution against the
 * engine's environment (src/config/env.ts).
 * @module
 */
import { TransportError } from "../../errors.ts";
import { substituteEnv } from "../../config/env.ts";

/**
 * Finds the executable for `command`: a path with `/` is resolved against `cwd`; a bare name is
 * looked up on the engine's `PATH` (stepflow 0.8 resolves it when the config is loaded).
 * Under scoped permissions the engine may not read `PATH` or stat the directories on it: then
 * the bare name is returned and Deno resolves it at spawn time (only `--allow-run` is needed).
 * @returns an absolute path, or `command` itself when the lookup was not permitted.
 * @throws {TransportError} `command not found: <command>` (with the directories searched).
 */
export function resolveCommand(command: string, cwd: string, path?: string): string {
  if (command.includes("/")) {
    const abs = command.startsWith("/") ? command : `${cwd.replace(/\/$/, "")}/${command}`;
    if (probe(abs) !== "no") return abs;
    throw new TransportError(`command not found: ${command} (no executable file at ${abs})`);
  }
  const pathVar = path ?? envGet("PATH");
  if (pathVar === undefined) return command;
  const dirs = pathVar.split(":").filter((d) => d !== "");
  let unsure = false;
  for (const dir of dirs) {
    const candidate = `${dir.startsWith("/") ? dir : `${cwd}/${dir}`}/${command}`;
    const found = probe(candidate);
    if (found === "yes") return candidate;
    if (found === "unknown") unsure = true;
  }
  if (unsure) return command;
  throw new TransportError(
    `command not found: ${command} (searched PATH: ${dirs.join(":") || "<empty>"})`,
  );
}

/** `yes` an executable file, `no` not one, `unknown` when reading it is not permitted. */
function probe(p: string): "yes" | "no" | "unknown" {
  try {
    const st = Deno.statSync(p);
    return st.isFile && (st.mode === null || (st.mode & 0o111) !== 0) ? "yes" : "no";
  } catch (e) {
    return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied
      ? "unknown"
      : "no";
  }
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * The arguments and environment of a worker after substitution (stepflow 0.8 §2.5: only `args`
 * and `env` values are substituted, against the engine's environment).
 * @throws {TransportError} naming the plugin when a variable is unset and has no default.
 */
export function substituteSpawn(
  plugin: string,
  args: string[],
  env: Record<string, string>,
  lookup: (name: string) => string | undefined = envGet,
): { args: string[]; env: Record<string, string> } {
  const sub = (value: string, where: string) => {
    try {
      return substituteEnv(value, lookup);
    } catch (err) {
      throw new TransportError(`plugins.${plugin}.${where}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
  const outEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) outEnv[k] = sub(v, `env.${k}`);
  return { args: args.map((a, i) => sub(a, `args[${i}]`)), env: outEnv };
}
