/**
 * `stepflow permissions` for `/openai` and `/chat`: the net host comes from the base URL the run
 * will use (step literal > config `openai.baseUrl` > `OPENAI_BASE_URL` > api.openai.com), the
 * env list from where the key and URL are read.
 */
import { assert, assertEquals, assertStringIncludes, runCli, withTempDir } from "../_assert.ts";
import { ConfigSchema, type LoadedConfig } from "../../src/config/model.ts";
import { computeFlowPermissions } from "../../src/permissions/compute.ts";
import { ALL } from "../../src/permissions/permission_set.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";

const WD = "/work/proj";

function cfg(openai?: Record<string, unknown>): LoadedConfig {
  return {
    config: ConfigSchema.parse({
      plugins: { builtin: { type: "builtin", ...(openai ? { openai } : {}) } },
      routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
    }),
    workingDirectory: WD,
  };
}

function perms(
  input: Record<string, JsonValue>,
  config: LoadedConfig,
  env: Record<string, string> = {},
  component = "/builtin/chat",
) {
  return computeFlowPermissions({
    flow: { steps: [{ id: "ask", component, input }] },
    config,
    env: (n) => env[n],
  });
}

const MESSAGES = [{ role: "user", content: "hi" }];

Deno.test("permissions of /chat and /openai with nothing configured: OpenAI's host, key and URL variables", () => {
  for (const component of ["/builtin/chat", "/builtin/openai"]) {
    const set = perms({ messages: MESSAGES }, cfg(), {}, component);
    assertEquals([...set.net], ["api.openai.com:443"]);
    for (const v of ["OPENAI_API_KEY", "OPENAI_BASE_URL"]) {
      assert(set.env.has(v), v);
    }
  }
});

Deno.test("permissions follow the config's openai.baseUrl and apiKeyEnv (no OPENAI_BASE_URL read then)", () => {
  const set = perms(
    { messages: MESSAGES },
    cfg({ baseUrl: "http://127.0.0.1:11434/v1", apiKeyEnv: "OLLAMA_KEY" }),
  );
  assertEquals([...set.net], ["127.0.0.1:11434"]);
  assert(set.env.has("OLLAMA_KEY"));
  assert(!set.env.has("OPENAI_API_KEY"));
  assert(!set.env.has("OPENAI_BASE_URL"));
});

Deno.test("a baseUrl with ${VAR:-default}: the variable is allowed and the host is its current value, noted", () => {
  const config = cfg({ baseUrl: "${LLM_URL:-http://127.0.0.1:8321/v1}" });
  const dflt = perms({ messages: MESSAGES }, config);
  assertEquals([...dflt.net], ["127.0.0.1:8321"]);
  assert(dflt.env.has("LLM_URL"));
  const set = perms({ messages: MESSAGES }, config, { LLM_URL: "https://llm.example.com/v1" });
  assertEquals([...set.net], ["llm.example.com:443"]);
  assertStringIncludes(set.notes.join("\n"), "comes from LLM_URL as set now");
});

Deno.test("OPENAI_BASE_URL as set when the flags are computed gives the host", () => {
  const set = perms({ messages: MESSAGES }, cfg(), { OPENAI_BASE_URL: "http://vllm.lan:8000/v1" });
  assertEquals([...set.net], ["vllm.lan:8000"]);
  assertStringIncludes(set.notes.join("\n"), "OPENAI_BASE_URL as set now");
});

Deno.test("a literal base_url and api_key in the step: that host, no key variable; a computed base_url: net unscoped", () => {
  const set = perms(
    { messages: MESSAGES, base_url: "http://10.0.0.5:8080/v1", api_key: "sk-x" },
    cfg({ baseUrl: "http://127.0.0.1:11434/v1" }),
  );
  assertEquals([...set.net], ["10.0.0.5:8080"]);
  assert(!set.env.has("OPENAI_API_KEY"));
  const computed = perms(
    { messages: MESSAGES, base_url: { $from: { workflow: "input" }, path: "url" } },
    cfg(),
  );
  assert(computed.net.has(ALL));
  assertStringIncludes(computed.notes.join("\n"), "base_url is computed at run time");
});

Deno.test("${VAR} in a builtin plugin's openai headers and model are allowed even without a model step", () => {
  const set = computeFlowPermissions({
    flow: { steps: [] },
    config: cfg({ model: "${MODEL}", headers: { "api-key": "${GATEWAY_KEY}" } }),
    env: () => undefined,
  });
  assert(set.env.has("MODEL") && set.env.has("GATEWAY_KEY"));
  assertEquals(set.net.size, 0);
});

Deno.test("stepflow --log-file F permissions: F is writable", async () => {
  await withTempDir(async (dir) => {
    Deno.writeTextFileSync(
      `${dir}/flow.yaml`,
      "schema: https://stepflow.org/schemas/v1/flow.json\nsteps: []\noutput: 1\n",
    );
    const out = await runCli(["--log-file", "run.log", "permissions", "--flow", "flow.yaml"], {
      cwd: dir,
    });
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(out.stdout, "--allow-write=./run.log");
  });
});
