/**
 * examples/ai-research: its README's command gives the README's output against the demo model
 * server shipped with it (reached through OPENAI_BASE_URL, as the config reads it), and
 * `stepflow test` (which starts that server itself) passes.
 */
import { assert, assertEquals, REPO_ROOT, runCli } from "../../_assert.ts";

const DIR = `${REPO_ROOT}/examples/ai-research`;
/** The example's test server is `deno` from PATH: make it this Deno. */
const PATH = `${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH") ?? ""}`;

async function startDemoServer(): Promise<{ baseUrl: string; stop: () => Promise<void> }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", `${DIR}/server.ts`, "--port", String(port)],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("listening")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`demo server did not start: ${seen}`);
    seen += value;
  }
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    stop: async () => {
      child.kill("SIGTERM");
      await reader.cancel();
      await child.status;
    },
  };
}

Deno.test("examples/ai-research: the README's command gives the README's output", async () => {
  const readme = await Deno.readTextFile(`${DIR}/README.md`);
  const input = /--input-json '([^']+)'/.exec(readme)?.[1];
  const shown = /```json\n([\s\S]*?)\n```/.exec(readme)?.[1];
  assert(input && shown, "the README has a command and an output");
  const server = await startDemoServer();
  try {
    const out = await runCli(
      ["run", "--flow", "examples/ai-research/flow.yaml", "--input-json", input],
      { cwd: REPO_ROOT, env: { OPENAI_BASE_URL: server.baseUrl } },
    );
    assertEquals(out.code, 0, out.stderr);
    assertEquals(JSON.parse(out.stdout), JSON.parse(shown));
  } finally {
    await server.stop();
  }
});

Deno.test("examples/ai-research: stepflow test starts the demo server and passes", async () => {
  const out = await runCli(["test", "examples/ai-research"], { cwd: REPO_ROOT, env: { PATH } });
  assertEquals(out.code, 0, out.stdout + out.stderr);
  assert((out.stdout + out.stderr).includes("Passed: 1"), out.stdout + out.stderr);
});
