/**
 * `stepflow run --store postgres://...` end to end with real processes (issue 14): runs recorded
 * in PostgreSQL by several processes at once, read back by `stepflow runs`, a config naming the
 * store, and the errors of a bad or unreachable server (never showing the password). The server
 * tests are skipped without STEPFLOW_TEST_PG_URL (tests/_postgres.ts).
 */
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { pgTest, withClient, withPgDatabase } from "../_postgres.ts";
import { parseJson } from "../../src/json/exact_json.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/cli/durable`;

type Summary = { runId: string; status: string; flowName?: string; outcome?: string };

pgTest(
  "stepflow run --store postgres://: three processes record their runs; runs list/show read them",
  (server) =>
    withPgDatabase(server, async (url) => {
      const items = Array.from({ length: 20 }, (_, i) => `item ${i}`);
      const outs = await Promise.all([0, 1, 2].map(() =>
        runCli([
          "run",
          "--flow",
          `${DIR}/fan.yaml`,
          "--store",
          url,
          "--input-json",
          JSON.stringify({ items }),
        ])
      ));
      const ids: string[] = [];
      for (const o of outs) {
        assertStrictEquals(o.code, 0, o.stderr);
        assertEquals(parseJson(o.stdout), { outcome: "success", result: { successful: 20 } });
        const m = /run_id: (\S+)/.exec(o.stderr);
        assert(m, `run id on stderr: ${o.stderr}`);
        ids.push(m[1]);
      }
      const list = await runCli(["runs", "list", "--store", url, "--format", "json"]);
      assertStrictEquals(list.code, 0, list.stderr);
      const runs = parseJson(list.stdout) as Summary[];
      assertEquals(runs.map((r) => r.runId).sort(), [...ids].sort());
      assert(runs.every((r) => r.status === "completed" && r.flowName === "fan"));
      const all = await runCli([
        "runs",
        "list",
        "--store",
        url,
        "--all",
        "--limit",
        "1000",
        "--format",
        "json",
      ]);
      assertStrictEquals((parseJson(all.stdout) as Summary[]).length, 3 * 21);
      const show = await runCli(["runs", "show", ids[0], "--store", url]);
      assertStrictEquals(show.code, 0, show.stderr);
      assertStringIncludes(show.stdout, ids[0]);
      assertStringIncludes(show.stdout, "completed");
      assertStringIncludes(show.stdout, "/builtin/map");
      await withClient(url, async (sql) => {
        const [n] = await sql`
        SELECT count(*)::int AS runs, count(*) FILTER (WHERE status <> 'completed')::int AS other
        FROM runs`;
        assertEquals([n.runs, n.other], [63, 0]);
        // the engines deregistered when they closed
        assertEquals(await sql`SELECT id FROM engines`, []);
      });
    }),
);

pgTest(
  "a config's stateStore {type: postgres} records the run",
  (server) =>
    withPgDatabase(server, async (url) => {
      await withTempDir(async (dir) => {
        const u = new URL(url);
        const password = "pw-from-env";
        u.password = "${STEPFLOW_PG_PASSWORD}";
        await Deno.writeTextFile(
          `${dir}/stepflow-config.yml`,
          [
            "plugins: { builtin: { type: builtin } }",
            'routes: { "/builtin/{*component}": [ { plugin: builtin } ] }',
            `stateStore: { type: postgres, url: "${decodeURI(u.toString())}", leaseTtl: 10s }`,
          ].join("\n"),
        );
        await Deno.copyFile(`${DIR}/greet.yaml`, `${dir}/greet.yaml`);
        const r = await runCli(["run", "--flow", "greet.yaml", "--input-json", '{"who":"Ada"}'], {
          cwd: dir,
          env: { STEPFLOW_PG_PASSWORD: password },
        });
        assertStrictEquals(r.code, 0, r.stderr);
        const id = /run_id: (\S+)/.exec(r.stderr)?.[1];
        assert(id, r.stderr);
        const show = await runCli(["runs", "show", id, "--format", "json"], {
          cwd: dir,
          env: { STEPFLOW_PG_PASSWORD: password },
        });
        assertStrictEquals(show.code, 0, show.stderr);
        const shown = parseJson(show.stdout) as { run: { status: string; ownerId?: string } };
        assertStrictEquals(shown.run.status, "completed");
      });
    }),
);

pgTest(
  "stepflow run --store postgres:// works with the flags stepflow permissions prints",
  (server) =>
    withPgDatabase(server, async (url) => {
      const flow = `${DIR}/greet.yaml`;
      const perms = await runCli(["permissions", "--flow", flow, "--store", url]);
      assertStrictEquals(perms.code, 0, perms.stderr);
      const flags = perms.stdout.trim().split(" ");
      assert(flags.some((f) => f.startsWith("--allow-net=") && f.includes(new URL(url).host)));
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...flags,
          `${REPO_ROOT}/main.ts`,
          "run",
          "--flow",
          flow,
          "--store",
          url,
          "--input-json",
          '{"who":"Ada"}',
        ],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      assertStrictEquals(out.code, 0, dec.decode(out.stderr));
      assertEquals(parseJson(dec.decode(out.stdout)), { outcome: "success", result: "Ada" });
    }),
);

Deno.test("stepflow run --store: a bad or unreachable PostgreSQL URL is an error without the password", async () => {
  const bad = await runCli([
    "run",
    "--flow",
    `${DIR}/greet.yaml`,
    "--store",
    "postgres://ada:hunter2@[::1",
    "--input-json",
    "{}",
  ]);
  assertStrictEquals(bad.code, 2, bad.stderr);
  assertStringIncludes(bad.stderr, "Invalid PostgreSQL URL");
  assert(!bad.stderr.includes("hunter2"), bad.stderr);
  // nothing listens on port 1
  const down = await runCli([
    "run",
    "--flow",
    `${DIR}/greet.yaml`,
    "--store",
    "postgres://ada:hunter2@127.0.0.1:1/stepflow",
    "--input-json",
    '{"who":"Ada"}',
  ]);
  assertStrictEquals(down.code, 1, down.stderr);
  assertStringIncludes(
    down.stderr,
    "cannot open PostgreSQL database 'postgres://ada@127.0.0.1:1/stepflow'",
  );
  assertStringIncludes(down.stderr, "ECONNREFUSED");
  assert(!down.stderr.includes("hunter2"), down.stderr);
});
