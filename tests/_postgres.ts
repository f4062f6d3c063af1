/**
 * Test helper: the PostgreSQL server of the tests (issue 14), and a database of its own for each
 * test.
 *
 * The server is `STEPFLOW_TEST_PG_URL` (a role that may `CREATE DATABASE`). `.ci/run` starts a
 * throwaway cluster with scripts/pg_test_cluster.sh and sets `STEPFLOW_REQUIRE_PG=1`; locally:
 *
 * ```sh
 * eval "$(bash scripts/pg_test_cluster.sh start)"      # or: export STEPFLOW_TEST_PG_URL=postgres://...
 * deno task test
 * bash scripts/pg_test_cluster.sh stop "$STEPFLOW_TEST_PG_DIR"
 * ```
 *
 * Without the variable, {@linkcode pgTest} registers nothing (tests/state/postgres_store_test.ts
 * says so in one line), unless `STEPFLOW_REQUIRE_PG=1`, where each test fails saying what is
 * missing.
 * @module
 */
import postgres from "postgres";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** The server the PostgreSQL tests use, or undefined (they are skipped). */
export const PG_URL: string | undefined = env("STEPFLOW_TEST_PG_URL");

/** True when a missing server fails the tests (`STEPFLOW_REQUIRE_PG=1`, set by CI). */
export const PG_REQUIRED: boolean = env("STEPFLOW_REQUIRE_PG") === "1";

/** The one line a run without a server prints (through an ignored test). */
export const PG_SKIPPED =
  'PostgreSQL store tests skipped: STEPFLOW_TEST_PG_URL is not set (eval "$(bash scripts/pg_test_cluster.sh start)", or point it at a server)';

/**
 * Registers a test that needs the server: as is when {@linkcode PG_URL} is set; as a failing
 * test when {@linkcode PG_REQUIRED}; otherwise not at all.
 */
export function pgTest(name: string, fn: (serverUrl: string) => Promise<void>): void {
  if (PG_URL !== undefined) {
    Deno.test(name, () => fn(PG_URL));
  } else if (PG_REQUIRED) {
    Deno.test(name, () => {
      throw new Error(
        "STEPFLOW_TEST_PG_URL is not set but STEPFLOW_REQUIRE_PG=1: PostgreSQL could not be " +
          "started (see scripts/pg_test_cluster.sh)",
      );
    });
  }
}

/** `url` with another database (and, when given, another password). */
export function withDatabase(url: string, database: string, password?: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (password !== undefined) u.password = password;
  return u.toString();
}

/**
 * Creates a database with a random name on the server, runs `fn` with its URL, and drops it
 * (with any connection left to it) whatever happens.
 */
export async function withPgDatabase<T>(
  serverUrl: string,
  fn: (url: string) => Promise<T>,
): Promise<T> {
  const name = `stepflow_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
    try {
      return await fn(withDatabase(serverUrl, name));
    } finally {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end({ timeout: 1 });
  }
}

/** Runs `fn` with a client connected to `url` (closed afterwards). */
export async function withClient<T>(
  url: string,
  fn: (sql: postgres.Sql) => Promise<T>,
): Promise<T> {
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * Makes the database at `url` refuse writes to `tables` (INSERT and UPDATE) as a full disk would
 * (`53100: could not extend file ...: No space left on device`), until {@linkcode allowWrites}.
 */
export function refuseWrites(url: string, tables: string[]): Promise<void> {
  return withClient(url, async (sql) => {
    await sql.unsafe(`
      CREATE OR REPLACE FUNCTION stepflow_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION USING ERRCODE = '53100',
          MESSAGE = 'could not extend file "base/1/2": No space left on device';
      END $$;
      ${
      tables.map((t) =>
        `CREATE TRIGGER stepflow_test_refuse BEFORE INSERT OR UPDATE ON ${t} FOR EACH ROW
           EXECUTE FUNCTION stepflow_test_refuse();`
      ).join("\n")
    }`);
  });
}

/** Ends {@linkcode refuseWrites} on `tables`. */
export function allowWrites(url: string, tables: string[]): Promise<void> {
  return withClient(url, async (sql) => {
    await sql.unsafe(
      tables.map((t) => `DROP TRIGGER IF EXISTS stepflow_test_refuse ON ${t};`).join("\n"),
    );
  });
}
