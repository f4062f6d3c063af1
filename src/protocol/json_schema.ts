/**
 * Generates the JSON Schema of the protocol (schemas/protocol.json) from the zod schemas of
 * envelope.ts and methods.ts. A test (tests/protocol/json_schema_test.ts) fails when the
 * checked-in file drifts; regenerate it with `deno task schemas:protocol`
 * (`deno run -A src/protocol/json_schema.ts`).
 * @module
 */
import { z } from "zod";
import { RequestIdSchema, RpcErrorSchema } from "./envelope.ts";
import {
  BatchDetailsSchema,
  BatchOutputInfoSchema,
  ComponentInfoSchema,
  FlowResultSchema,
  METHODS,
  type MethodSpec,
  ObservabilitySchema,
  OverridesSchema,
} from "./methods.ts";

/** `components/execute` → `ComponentsExecute`. */
export function methodTypeName(method: string): string {
  return method.split(/[/_]/).map((w) => w[0].toUpperCase() + w.slice(1)).join("");
}

/**
 * The protocol's JSON Schema (draft 2020-12): `oneOf` the message kinds, with one request
 * definition per method (`method` const + its params) and `$defs` for every params and result.
 */
export function protocolJsonSchema(): Record<string, unknown> {
  const reg = z.registry<{ id: string }>();
  reg.add(RequestIdSchema, { id: "RequestId" });
  reg.add(RpcErrorSchema, { id: "Error" });
  reg.add(ObservabilitySchema, { id: "ObservabilityContext" });
  reg.add(OverridesSchema, { id: "WorkflowOverrides" });
  reg.add(ComponentInfoSchema, { id: "ComponentInfo" });
  reg.add(FlowResultSchema, { id: "FlowResult" });
  reg.add(BatchDetailsSchema, { id: "BatchDetails" });
  reg.add(BatchOutputInfoSchema, { id: "BatchOutputInfo" });
  const entries = Object.entries(METHODS) as [string, MethodSpec][];
  for (const [method, spec] of entries) {
    const name = methodTypeName(method);
    reg.add(spec.params, { id: `${name}Params` });
    if (spec.result) reg.add(spec.result, { id: `${name}Result` });
  }
  const { schemas } = z.toJSONSchema(reg, {
    target: "draft-2020-12",
    unrepresentable: "any",
    uri: (id) => `#/$defs/${id}`,
  });
  const defs: Record<string, unknown> = {};
  for (const [id, s] of Object.entries(schemas)) {
    const { $schema: _s, $id: _i, ...rest } = s as Record<string, unknown>;
    defs[id] = rest;
  }
  const ref = (id: string) => ({ $ref: `#/$defs/${id}` });
  const jsonrpc = { const: "2.0", description: 'Always "2.0".' };
  const oneOf: unknown[] = [];
  const results: unknown[] = [];
  for (const [method, spec] of entries) {
    const name = methodTypeName(method);
    const msgId = spec.notification ? `${name}Notification` : `${name}Request`;
    defs[msgId] = {
      description: `${
        spec.direction === "engine_to_worker" ? "Engine → worker" : "Worker → engine"
      }${spec.notification ? " notification" : " request"} \`${method}\`: ${spec.description}`,
      type: "object",
      properties: {
        jsonrpc,
        ...(spec.notification ? {} : { id: ref("RequestId") }),
        method: { const: method },
        params: ref(`${name}Params`),
      },
      required: spec.notification ? ["jsonrpc", "method"] : ["jsonrpc", "id", "method"],
    };
    oneOf.push(ref(msgId));
    if (spec.result) results.push(ref(`${name}Result`));
  }
  defs.SuccessResponse = {
    description: "The successful result of a request (the shape depends on the request's method).",
    type: "object",
    properties: { jsonrpc, id: ref("RequestId"), result: { anyOf: results } },
    required: ["jsonrpc", "id", "result"],
  };
  defs.ErrorResponse = {
    description: "The error result of a request.",
    type: "object",
    properties: { jsonrpc, id: ref("RequestId"), error: ref("Error") },
    required: ["jsonrpc", "id", "error"],
  };
  oneOf.push(ref("SuccessResponse"), ref("ErrorResponse"));
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://stepflow.org/schemas/v1/protocol.json",
    title: "Message",
    description:
      "The messages of the Stepflow protocol (JSON-RPC 2.0, stepflow 0.8 compatible), sent by the engine and by step services (workers). Generated from src/protocol/*.ts; do not edit.",
    oneOf,
    $defs: defs,
  };
}

/** The text of schemas/protocol.json (2-space indent, trailing newline). */
export function protocolJsonSchemaText(): string {
  return JSON.stringify(protocolJsonSchema(), null, 2) + "\n";
}

if (import.meta.main) {
  const path = new URL("../../schemas/protocol.json", import.meta.url);
  await Deno.writeTextFile(path, protocolJsonSchemaText());
  console.error(`wrote ${path.pathname}`);
}
