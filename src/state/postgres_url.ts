/**
 * PostgreSQL URLs: checked, and shown without their password (src/state/postgres.ts loads the
 * client; this module is small enough for the config's validation and `--store` to import).
 * @module
 */

/**
 * Checks a PostgreSQL URL (`postgres://[user[:password]@]host[:port]/database[?...]`, or
 * `postgresql://`).
 * @throws {Error} naming the URL without its password when it is not one.
 */
export function parsePostgresUrl(url: string): URL {
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new Error(
      `Invalid PostgreSQL URL '${describePostgresUrl(url)}': expected ` +
        "postgres://user:password@host:5432/database",
    );
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(
      `Invalid PostgreSQL URL '${describePostgresUrl(url)}': expected ` +
        "postgres://user:password@host:5432/database (characters such as @ : / in the " +
        "password must be percent-encoded)",
    );
  }
  if (u.hostname === "" && !u.searchParams.has("host")) {
    throw new Error(`Invalid PostgreSQL URL '${describePostgresUrl(url)}': it names no host`);
  }
  return u;
}

/**
 * A PostgreSQL URL as it may be shown: scheme, user, host, port and database; never the
 * password or the query (which may hold one).
 */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    const user = u.username ? `${decodeURIComponent(u.username)}@` : "";
    return `${u.protocol}//${user}${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    // not a URL: keep what comes before anything that may be a password
    const m = /^([a-z]+:\/\/)?(?:[^@/]*@)?([^/?]*)(\/[^?]*)?/i.exec(url);
    return m ? `${m[1] ?? ""}${m[2] ?? ""}${m[3] ?? ""}` : "(a PostgreSQL URL)";
  }
}

/**
 * The `host:port` a PostgreSQL URL connects to (port 5432 by default), or undefined when the URL
 * names no host (the client then reads `PGHOST`).
 */
export function postgresNetHost(url: string): string | undefined {
  try {
    const u = new URL(url);
    if (!u.hostname) return undefined;
    return `${u.hostname}:${u.port || "5432"}`;
  } catch {
    return undefined;
  }
}

/**
 * The environment variables the `postgres` client reads when connecting to `url` with the
 * options this store passes: `PGAPPNAME` and `PGTARGETSESSIONATTRS` always, and `PGHOST`,
 * `PGPORT`, `PGUSER`/`PGUSERNAME`, `PGDATABASE`, `PGPASSWORD` for the parts the URL leaves out.
 */
export function postgresEnvVars(url: string): string[] {
  const vars = ["PGAPPNAME"];
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    // the store will refuse the URL before connecting
  }
  if (!u?.searchParams.has("target_session_attrs")) vars.push("PGTARGETSESSIONATTRS");
  if (!u?.hostname) vars.push("PGHOST");
  if (!u?.port) vars.push("PGPORT");
  if (!u?.username) vars.push("PGUSERNAME", "PGUSER", "USERNAME", "USER", "LOGNAME");
  if (!u || u.pathname.length <= 1) vars.push("PGDATABASE");
  if (!u?.password) vars.push("PGPASSWORD");
  return vars;
}
