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
 * @returns an absolute path.
 * @throws {TransportError} `command not found: <command>` (with the directories searched).
 */
export function resolveCommand(command: string, cwd: string, path?: string): string {
  if (command.includes("/")) {
    const abs = command.startsWith("/") ? command : `${cwd.replace(/\/$/, "")}/${command}`;
    if (isExecutable(abs)) return abs;
    throw new TransportError(`command not found: ${command} (no executable file at ${abs})`);
  }
  const dirs = (path ?? envGet("PATH") ?? "").split(":").filter((d) => d !== "");
  for (const dir of dirs) {
    const candidate = `${dir.startsWith("/") ? dir : `${cwd}/${dir}`}/${command}`;
    if (isExecutable(candidate)) return candidate;
  }
  throw new TransportError(
    `command not found: ${command} (searched PATH: ${dirs.join(":") || "<empty>"})`,
  );
}

function isExecutable(p: string): boolean {
  try {
    const st = Deno.statSync(p);
    return st.isFile && (st.mode === null || (st.mode & 0o111) !== 0);
  } catch {
    return false;
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
