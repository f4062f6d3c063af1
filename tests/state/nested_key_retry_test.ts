/**
 * A step that starts a nested run (`/builtin/eval`) retried after a timeout starts the nested run
 * again under the same deterministic key (`<run>/<step>`). On the PostgreSQL store the second
 * nested run's insert broke the unique key: the whole commit failed, so the run ended 507
 * `duplicate key value violates unique constraint "idx_runs_key"` instead of its real outcome —
 * and with it every run of the engine in progress. The key now moves to the new nested run, as
 * in the SQLite store. The PostgreSQL case is skipped without STEPFLOW_TEST_PG_URL.
 * @module
 */
import { assertStrictEquals, runCli, withTempDir } from "../_assert.ts";
import { pgTest, withClient, withPgDatabase } from "../_postgres.ts";
import { DatabaseSync } from "node:sqlite";

const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
name: nested_retry
description: a nested run retried after a timeout
steps:
  - id: store
    component: /builtin/put_blob
    input:
      blob_type: flow
      data:
        $literal:
          schema: https://stepflow.org/schemas/v1/flow.json
          name: inner
          description: never answered
          steps:
            - id: wait
              component: /x/never
              input: {}
          output: { $from: { step: wait } }
  - id: outer
    component: /builtin/eval
    timeout: 500ms
    onError: { action: retry, maxRetries: 1, initialDelay: 0 }
    input:
      input: {}
      flow_id: { $from: { step: store }, path: blob_id }
output: { $from: { step: outer } }
`;

// answers initialize, never an execute
const NEVER = [
  "import sys, json",
  "for line in sys.stdin:",
  "    m = json.loads(line)",
  "    if m.get('method') == 'initialize':",
  "        print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'result': {'server_protocol_version': 1}}), flush=True)",
].join("\n");

const CONFIG = `plugins:
  builtin: { type: builtin }
  x: { type: stepflow, command: python3, args: [-c, ${JSON.stringify(NEVER)}] }
routes:
  "/builtin/{*component}": [{ plugin: builtin }]
  "/x/{*component}": [{ plugin: x }]
`;

/** Runs the flow recorded in `store`; returns its FlowResult and run id. */
// deno-lint-ignore no-explicit-any
async function runRetried(dir: string, store: string): Promise<{ result: any; runId: string }> {
  await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
  await Deno.writeTextFile(`${dir}/stepflow-config.yml`, CONFIG);
  const r = await runCli([
    "run",
    "--flow",
    `${dir}/flow.yaml`,
    "--input-json",
    "{}",
    "--store",
    store,
  ]);
  assertStrictEquals(r.code, 1, r.stderr);
  const runId = /run_id: (\S+)/.exec(r.stderr)?.[1] ?? "";
  return { result: JSON.parse(r.stdout), runId };
}

// deno-lint-ignore no-explicit-any
function assertTimedOut(result: any, stderr: string): void {
  // the run's own outcome: the step timed out twice, not a failed commit (507)
  assertStrictEquals(result.outcome, "failed", stderr);
  assertStrictEquals(result.error.code, 504, JSON.stringify(result));
  assertStrictEquals(result.error.data.attempts, 2, JSON.stringify(result));
}

Deno.test("SQLite store: a nested run retried after a timeout ends with the step's outcome; one run holds the key", () =>
  withTempDir(async (dir) => {
    const { result, runId } = await runRetried(dir, `${dir}/runs.db`);
    assertTimedOut(result, "");
    const db = new DatabaseSync(`${dir}/runs.db`, { readOnly: true });
    try {
      const held = db.prepare("SELECT COUNT(*) AS n FROM runs WHERE run_key = ?").get(
        `${runId}/outer`,
      ) as { n: number };
      assertStrictEquals(Number(held.n), 1);
    } finally {
      db.close();
    }
  }));

pgTest(
  "PostgreSQL store: a nested run retried after a timeout ends with the step's outcome, not 507 duplicate key",
  (server) =>
    withPgDatabase(server, (url) =>
      withTempDir(async (dir) => {
        const { result, runId } = await runRetried(dir, url);
        assertTimedOut(result, "");
        await withClient(url, async (sql) => {
          const rows = await sql`SELECT id FROM runs WHERE run_key = ${`${runId}/outer`}`;
          assertStrictEquals(rows.length, 1);
          const nested = await sql`SELECT id FROM runs WHERE parent_run_id = ${runId}`;
          assertStrictEquals(nested.length, 2, "both attempts' nested runs are kept");
        });
      })),
);
