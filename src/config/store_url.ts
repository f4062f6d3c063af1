/**
 * State store URLs of the config (stepflow 0.8 §2.4): `sqlite:` database URLs.
 * @module
 */

/**
 * The file path (or `:memory:`) and open mode of a `databaseUrl`.
 * Accepts `sqlite::memory:`, `sqlite:path.db`, `sqlite://path.db`, with `?mode=rwc|rw|ro`
 * (default `rwc`: create when missing).
 * @throws {Error} for a URL that does not start with `sqlite:` or an unknown mode.
 */
export function parseSqliteUrl(
  url: string,
  workingDirectory = ".",
): { path: string; mode: "rwc" | "rw" | "ro" } {
  if (!url.startsWith("sqlite:")) {
    throw new Error(
      `Invalid SQLite databaseUrl '${url}': expected 'sqlite:<path>' or 'sqlite::memory:'`,
    );
  }
  let rest = url.slice("sqlite:".length);
  if (rest.startsWith("//")) rest = rest.slice(2);
  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const params = new URLSearchParams(query);
  const mode = params.get("mode") ?? "rwc";
  if (rest === ":memory:" || rest === "" || mode === "memory") {
    return { path: ":memory:", mode: "rwc" };
  }
  if (mode !== "rwc" && mode !== "rw" && mode !== "ro") {
    throw new Error(`Invalid SQLite mode '${mode}' in '${url}': expected rwc, rw or ro`);
  }
  const path = rest.startsWith("/") ? rest : `${workingDirectory.replace(/\/$/, "")}/${rest}`;
  return { path, mode };
}
