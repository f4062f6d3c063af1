/**
 * stepflow 0.8's OpenAI flows end to end through `stepflow run`, answered by a local
 * OpenAI-compatible server (OPENAI_BASE_URL): the getting-started tutorial (a Python step
 * service formats a greeting, `/builtin/create_messages` builds the chat, `/builtin/openai`
 * answers) and examples/openai (`/create_messages` + `/openai` routed by `/{*component}`).
 * Files: tests/fixtures/openai_tutorial/ (0.8's flows unchanged).
 */
import { assertEquals } from "../../_assert.ts";
import { REPO_ROOT, runCli } from "../../_assert.ts";
import { startFakeOpenAI } from "./_openai_server.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/openai_tutorial`;

Deno.test("0.8's getting-started flow (Python step service + create_messages + openai) runs end to end against a local server", async () => {
  const server = startFakeOpenAI();
  try {
    server.replies.push({
      kind: "completion",
      content: "Hello, World! Welcome to Stepflow! 🎉 It's wonderful to meet you!",
    });
    const out = await runCli(["run", "--flow=hello-workflow.yaml", "--input=input.json"], {
      cwd: DIR,
      env: { OPENAI_API_KEY: "sk-tutorial-key", OPENAI_BASE_URL: server.baseUrl },
    });
    assertEquals(out.code, 0, out.stderr);
    assertEquals(JSON.parse(out.stdout), {
      outcome: "success",
      result: {
        greeting: "Hello, World! Welcome to Stepflow.",
        ai_response: "Hello, World! Welcome to Stepflow! 🎉 It's wonderful to meet you!",
      },
    });
    assertEquals(server.requests.length, 1);
    const req = server.requests[0];
    assertEquals(req.path, "/v1/chat/completions");
    assertEquals(req.headers.authorization, "Bearer sk-tutorial-key");
    assertEquals(req.body, {
      model: "gpt-3.5-turbo",
      messages: [
        {
          role: "system",
          content: "You are a friendly assistant. Respond enthusiastically to greetings.",
        },
        { role: "user", content: "Hello, World! Welcome to Stepflow." },
      ],
      max_tokens: 100,
      temperature: 0.7,
    });
  } finally {
    await server.close();
  }
});

Deno.test("0.8's examples/openai flow (routes '/{*component}') runs against a local server", async () => {
  const server = startFakeOpenAI();
  try {
    const input = {
      prompt: "Explain quantum computing in simple terms.",
      system_message: "You are a helpful expert explaining complex topics to beginners.",
    };
    const out = await runCli([
      "run",
      "--flow=openai_chat.yaml",
      "--config=openai-config.yml",
      `--input-json=${JSON.stringify(input)}`,
    ], { cwd: DIR, env: { OPENAI_API_KEY: "sk-x", OPENAI_BASE_URL: server.baseUrl } });
    assertEquals(out.code, 0, out.stderr);
    assertEquals(JSON.parse(out.stdout), {
      outcome: "success",
      result: { response: `echo: ${input.prompt}` },
    });
    assertEquals(server.requests[0].body.messages, [
      { role: "system", content: input.system_message },
      { role: "user", content: input.prompt },
    ]);
  } finally {
    await server.close();
  }
});
