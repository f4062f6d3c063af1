import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { ConfigSchema, type LoadedConfig } from "../../src/config/model.ts";
import { computeFlowPermissions } from "../../src/permissions/compute.ts";
import { routeTargets } from "../../src/permissions/steps.ts";
import { netHost, sqliteFile } from "../../src/permissions/targets.ts";
import { envVarsIn } from "../../src/permissions/env_refs.ts";
import { ALWAYS_READ_ENV } from "../../src/permissions/library_env.ts";
import { PermissionSet } from "../../src/permissions/permission_set.ts";

const WD = "/work/proj";

function cfg(raw: unknown, path?: string): LoadedConfig {
  return { config: ConfigSchema.parse(raw), path, workingDirectory: WD };
}

Deno.test("envVarsIn() finds $VAR, ${VAR}, defaults and nested defaults, not $$", () => {
  assertEquals(envVarsIn("plain"), []);
  assertEquals(envVarsIn("$HOME/x ${USER} ${A:-d} ${B:d} ${C-${D:-x}}"), [
    "HOME",
    "USER",
    "A",
    "B",
    "C",
    "D",
  ]);
  assertEquals(envVarsIn("$$NOT $1 ${"), []);
});

Deno.test("netHost() gives host:port with default ports, undefined for placeholders", () => {
  assertEquals(netHost("http://127.0.0.1:8080/rpc"), "127.0.0.1:8080");
  assertEquals(netHost("https://example.com/x"), "example.com:443");
  assertEquals(netHost("http://localhost"), "localhost:80");
  assertEquals(netHost("{server.url}"), undefined);
});

Deno.test("sqliteFile() resolves against the working directory; :memory: needs nothing", () => {
  assertEquals(sqliteFile("sqlite:state.db?mode=rwc", WD), "/work/proj/state.db");
  assertEquals(sqliteFile("sqlite:///tmp/s.db", WD), "/tmp/s.db");
  assertEquals(sqliteFile("sqlite::memory:", WD), undefined);
});

Deno.test("routeTargets() follows {name} and {*name} patterns and component templates", () => {
  const c = cfg({
    plugins: { builtin: { type: "builtin" }, py: { type: "mock" } },
    routes: {
      "/builtin/{*component}": [{ plugin: "builtin" }],
      "/python/{name}": [{ plugin: "py", component: "/udf/{name}" }],
    },
  });
  assertEquals(routeTargets("/builtin/load_file", c), [{
    plugin: "builtin",
    component: "/load_file",
  }]);
  assertEquals(routeTargets("/python/x", c), [{ plugin: "py", component: "/udf/x" }]);
  assertEquals(routeTargets("/other", c), []);
});

Deno.test("computeFlowPermissions() scopes commands, hosts, env vars, files", () => {
  const c = cfg({
    plugins: {
      builtin: { type: "builtin" },
      worker: {
        type: "stepflow",
        command: "./bin/worker.sh",
        args: ["--key", "${API_KEY}"],
        env: { MODE: "${MODE:-dev}" },
      },
      remote: { type: "stepflow", transport: "http", url: "http://127.0.0.1:7001" },
      files: { type: "mcp", command: "npx", args: ["server", "$ROOT"] },
      mcphttp: { type: "mcp", url: "https://mcp.example.com/mcp" },
    },
    routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
    stateStore: { type: "sqlite", databaseUrl: "sqlite:run.db" },
  }, "/work/proj/stepflow-config.yml");
  const set = computeFlowPermissions({
    flowPath: "/work/proj/flows/f.yaml",
    flow: {
      steps: [
        { id: "a", component: "/builtin/load_file", input: { path: "data/x.json" } },
        { id: "b", component: "/builtin/create_messages", input: { user_prompt: "hi" } },
      ],
    },
    config: c,
    outputFile: "/work/proj/out.json",
  });
  assertEquals([...set.run].sort(), ["/work/proj/bin/worker.sh", "npx"]);
  assertEquals([...set.net].sort(), ["127.0.0.1:7001", "mcp.example.com:443"]);
  for (const v of ["API_KEY", "MODE", "ROOT", ...ALWAYS_READ_ENV]) assert(set.env.has(v), v);
  assert(!set.env.has("PATH"), "a path command needs no PATH lookup");
  assertEquals([...set.read].sort(), [
    "/work/proj/bin/worker.sh",
    "/work/proj/data/x.json",
    "/work/proj/flows/f.yaml",
    "/work/proj/run.db",
    "/work/proj/stepflow-config.yml",
  ]);
  assertEquals([...set.write].sort(), ["/work/proj/out.json", "/work/proj/run.db"]);
  assertEquals(set.notes, []);
});

Deno.test("computeFlowPermissions() widens a computed load_file path to the working dir, noted", () => {
  const c = cfg({
    plugins: { builtin: { type: "builtin" } },
    routes: { "/{*component}": [{ plugin: "builtin" }] },
  });
  const set = computeFlowPermissions({
    flow: {
      steps: [{
        id: "m",
        component: "/map",
        input: {
          items: ["a.txt"],
          workflow: {
            $literal: {
              schema: "https://stepflow.org/schemas/v1/flow.json",
              steps: [{
                id: "l",
                component: "/load_file",
                input: { path: { $from: { workflow: "input" } } },
              }],
            },
          },
        },
      }, { id: "o", component: "/openai", input: { messages: [] } }],
    },
    config: c,
  });
  assert(set.read.has(WD));
  assertStringIncludes(set.notes.join("\n"), "computed at run time");
  assert(set.net.has("api.openai.com:443"));
  assert(set.env.has("OPENAI_API_KEY"));
});

Deno.test("computeFlowPermissions() finds a bare step-service command on PATH", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const exe = `${dir}/my-worker`;
    Deno.writeTextFileSync(exe, "#!/bin/sh\n");
    Deno.chmodSync(exe, 0o755);
    const set = computeFlowPermissions({
      flow: { steps: [] },
      config: cfg({ plugins: { w: { type: "stepflow", command: "my-worker" } } }),
      pathEnv: `/nonexistent:${dir}`,
    });
    assertEquals([...set.run], ["my-worker"]);
    assert(set.env.has("PATH"));
    assert(set.read.has(exe));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("computeFlowPermissions() adds test servers only for test", () => {
  const flow = {
    steps: [],
    test: { servers: { api: { command: "python3", args: ["s.py", "{port}", "$TOKEN"] } } },
  };
  const c = cfg({ plugins: {} });
  const run = computeFlowPermissions({ flow, config: c, flowPath: "/work/proj/f.yaml" });
  assertEquals(run.run.size, 0);
  const test = computeFlowPermissions({
    flow,
    config: c,
    flowPath: "/work/proj/f.yaml",
    test: true,
  });
  assertEquals([...test.run], ["python3"]);
  assertEquals([...test.net], ["127.0.0.1"]);
  assert(test.env.has("TOKEN"));
});

Deno.test("PermissionSet.toFlags() prints one scoped flag per kind, relative paths, nested dropped", () => {
  const set = new PermissionSet()
    .add("read", "/work/proj/a.yaml")
    .add("read", "/work/proj/data")
    .add("read", "/work/proj/data/x.json")
    .add("read", "/etc/other file")
    .add("write", "/work/proj/out.json")
    .add("env", "B").add("env", "A")
    .add("run", "deno")
    .add("net", "127.0.0.1:8080");
  assertEquals(set.toFlags("/work/proj"), [
    "--no-prompt",
    "'--allow-read=./a.yaml,./data,/etc/other file'",
    "--allow-write=./out.json",
    "--allow-net=127.0.0.1:8080",
    "--allow-env=A,B",
    "--allow-run=deno",
  ]);
});

Deno.test("computeFlowPermissions() covers run's file flags, --env-variables and test --update", () => {
  const set = computeFlowPermissions({
    flowPath: "/work/proj/f.yaml",
    flow: { steps: [] },
    config: cfg({ plugins: {} }),
    readFiles: ["/work/proj/vars.json", "/work/proj/ov.yaml"],
    envVariables: true,
    update: true,
  });
  assert(set.read.has("/work/proj/vars.json") && set.read.has("/work/proj/ov.yaml"));
  assert(set.write.has("/work/proj/f.yaml"));
  const flags = set.toFlags("/work/proj");
  assert(flags.includes("--allow-env"), flags.join(" "));
  assertStringIncludes(set.notes.join("\n"), "STEPFLOW_VAR_");
});
