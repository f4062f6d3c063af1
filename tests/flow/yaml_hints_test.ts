/**
 * YAML features a flow author may reach for, and what they are told. Before: a step built with a
 * merge key (`<<: *defaults`) failed with a bare `missing required key 'component'`, and a file
 * with two documents said `please use YAML.parseAllDocuments()` (advice to a JavaScript
 * programmer).
 * @module
 */
import { assert, assertRejects, assertStringIncludes } from "../_assert.ts";
import { loadFlowText } from "../../src/flow/load.ts";
import { validateFlow } from "../../src/config/preflight.ts";
import { FlowLoadError } from "../../src/errors.ts";

const HEAD = "schema: https://stepflow.org/schemas/v1/flow.json\nname: t\ndescription: d\n";

Deno.test("a YAML merge key is named when the keys it was to bring are missing, and as an unknown key", async () => {
  const e = await assertRejects(
    async () =>
      await loadFlowText(
        HEAD + `x-defaults: &d { component: /builtin/create_messages }
steps:
  - <<: *d
    id: a
    input: { user_prompt: hi }
output: { $from: { step: a } }
`,
        { file: "t.yaml" },
      ),
    FlowLoadError,
  );
  assertStringIncludes(e.message, "$.steps[0].component: missing required key 'component'");
  assertStringIncludes(e.message, "YAML merge keys '<<' are not applied: write the keys out");
  const loaded = await loadFlowText(
    HEAD + `x-defaults: &d { mustExecute: true }
steps:
  - <<: *d
    id: a
    component: /builtin/create_messages
    input: { user_prompt: hi }
output: { $from: { step: a } }
`,
    { file: "t.yaml" },
  );
  const merge = validateFlow(loaded).find((d) => d.path === '$.steps[0]["<<"]');
  assertStringIncludes(merge?.hint ?? "", "YAML merge keys are not applied");
});

Deno.test("two YAML documents in a flow file: the message says what to do, not which JavaScript API to call", async () => {
  const e = await assertRejects(
    async () => await loadFlowText(HEAD + "steps: []\n---\n" + HEAD, { file: "t.yaml" }),
    FlowLoadError,
  );
  assertStringIncludes(e.message, "Source contains multiple documents — a flow or config file");
  assertStringIncludes(e.message, "remove the extra '---'");
  assert(!e.message.includes("parseAllDocuments"), e.message);
});
