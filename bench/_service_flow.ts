/**
 * The 3-step built-in flow of the service benchmark (bench/serve_bench.ts), also run by the
 * service tests: messages → blob → read back; the output is the messages.
 * @module
 */

/** `create_messages` → `put_blob` → `get_blob`, output `$.data` of the last. */
export const THREE_STEPS = {
  schema: "https://stepflow.org/schemas/v1/flow.json",
  name: "three",
  steps: [
    {
      id: "msgs",
      component: "/builtin/create_messages",
      input: { user_prompt: { $from: { workflow: "input" }, path: "$.q" } },
    },
    {
      id: "put",
      component: "/builtin/put_blob",
      input: { data: { $from: { step: "msgs" } }, blob_type: "data" },
    },
    {
      id: "get",
      component: "/builtin/get_blob",
      input: { blob_id: { $from: { step: "put" }, path: "$.blob_id" } },
    },
  ],
  output: { $from: { step: "get" }, path: "$.data" },
};
