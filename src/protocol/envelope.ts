/**
 * The JSON-RPC 2.0 envelope of the Stepflow protocol (stepflow 0.8 §3.1), defined once as zod
 * schemas (schemas/protocol.json is generated from them), plus {@linkcode classifyMessage}, the
 * hand-written classifier the peer uses on the hot path (same rules as the schemas, no zod cost).
 *
 * Classification by keys (0.8): `id` + `method` = request, `method` only = notification,
 * `id` + `result` or `id` + `error` = response; anything else is invalid. Every message carries
 * `"jsonrpc": "2.0"`.
 * @module
 */
import { z } from "zod";
import { describeError, ProtocolError } from "../errors.ts";
import { INTERNAL_ERROR } from "../core/rpc_error_codes.ts";
import { isJsonObject, isRawNumber, type JsonValue, type RawNumber } from "../json/exact_json.ts";
import { JsonValueSchema } from "../json/schema.ts";

/** The protocol version string every message carries. */
export const JSONRPC_VERSION = "2.0";

/** A request id: a string or an integer (the engine sends UUID strings, as 0.8 does). */
export const RequestIdSchema = z.union([z.string(), z.number().int()]).describe(
  "The identifier of a JSON-RPC request: a string or an integer. Responses carry the id of the request they answer.",
);
/** A request id (an integer beyond 2^53 is kept exact as a raw number). */
export type RequestId = string | number | RawNumber;

/** The JSON-RPC error object `{code, message, data?}`. */
export const RpcErrorSchema = z.object({
  code: z.number().int().describe("A numeric code indicating the error type."),
  message: z.string().describe("Concise, single-sentence description of the error."),
  data: JsonValueSchema.optional().describe("Additional information about the error."),
}).describe("An error returned from a method execution.");
/** The JSON-RPC error object. */
export type RpcError = { code: number; message: string; data?: JsonValue };

const JsonRpc = z.literal(JSONRPC_VERSION).describe('Always "2.0".');

/** A request (has `id` and `method`). */
export const RequestSchema = z.object({
  jsonrpc: JsonRpc,
  id: RequestIdSchema,
  method: z.string(),
  params: JsonValueSchema.optional(),
}).describe("Request to execute a method.");

/** A notification (has `method`, no `id`). */
export const NotificationSchema = z.object({
  jsonrpc: JsonRpc,
  method: z.string(),
  params: JsonValueSchema.optional(),
}).describe("A notification: a method call that gets no response.");

/** A successful response (`id` + `result`). */
export const SuccessResponseSchema = z.object({
  jsonrpc: JsonRpc,
  id: RequestIdSchema,
  result: JsonValueSchema,
}).describe("The successful result of a request.");

/** An error response (`id` + `error`). */
export const ErrorResponseSchema = z.object({
  jsonrpc: JsonRpc,
  id: RequestIdSchema,
  error: RpcErrorSchema,
}).describe("The error result of a request.");

/** An incoming request. */
export interface RequestMessage {
  kind: "request";
  id: RequestId;
  method: string;
  params?: JsonValue;
}
/** An incoming notification. */
export interface NotificationMessage {
  kind: "notification";
  method: string;
  params?: JsonValue;
}
/** An incoming response (exactly one of `result` / `error`). */
export interface ResponseMessage {
  kind: "response";
  id: RequestId;
  result?: JsonValue;
  error?: RpcError;
}
/** A message that is not valid JSON-RPC 2.0; `reason` says why, `id` is kept when readable. */
export interface InvalidMessage {
  kind: "invalid";
  reason: string;
  id?: RequestId;
}
/** Any classified message. */
export type Message = RequestMessage | NotificationMessage | ResponseMessage | InvalidMessage;

/**
 * Classifies a parsed JSON value as a JSON-RPC 2.0 message (stepflow 0.8 §3.1 rules).
 * Never throws; a value that is not a valid message gives `{kind: "invalid", reason}`.
 */
export function classifyMessage(value: JsonValue): Message {
  if (!isJsonObject(value)) return { kind: "invalid", reason: "a message must be a JSON object" };
  const rawId = value.id;
  let id: RequestId | undefined;
  if (typeof rawId === "string" || (typeof rawId === "number" && Number.isInteger(rawId))) {
    id = rawId;
  } else if (isRawNumber(rawId) && /^-?\d+$/.test(rawId.rawJSON)) {
    id = rawId; // an integer id beyond 2^53, kept exact
  } else if (rawId !== undefined && rawId !== null) {
    return { kind: "invalid", reason: "`id` must be a string or an integer" };
  }
  if (value.jsonrpc !== JSONRPC_VERSION) {
    return { kind: "invalid", reason: '`jsonrpc` must be "2.0"', id };
  }
  const method = value.method;
  const hasResult = Object.hasOwn(value, "result");
  const hasError = Object.hasOwn(value, "error");
  if (method !== undefined) {
    if (typeof method !== "string") {
      return { kind: "invalid", reason: "`method` must be a string", id };
    }
    if (hasResult || hasError) {
      return { kind: "invalid", reason: "a request cannot carry `result` or `error`", id };
    }
    return id === undefined
      ? { kind: "notification", method, params: value.params }
      : { kind: "request", id, method, params: value.params };
  }
  if (id === undefined) {
    return { kind: "invalid", reason: "a message needs `method` or an `id` with `result`/`error`" };
  }
  if (hasResult === hasError) {
    return { kind: "invalid", reason: "a response needs exactly one of `result` and `error`", id };
  }
  if (hasResult) return { kind: "response", id, result: value.result };
  const err = value.error;
  if (
    !isJsonObject(err) || typeof err.message !== "string" ||
    !(typeof err.code === "number" && Number.isInteger(err.code))
  ) {
    return { kind: "invalid", reason: "`error` must be {code: integer, message: string}", id };
  }
  const error: RpcError = { code: err.code, message: err.message };
  if (err.data !== undefined) error.data = err.data;
  return { kind: "response", id, error };
}

/** `observability` of {@linkcode ExecuteParams} (stepflow 0.8 §3.3). */
export interface Observability {
  run_id: string;
  flow_id: string;
  step_id: string;
}

/**
 * The params of a `components/execute` request (stepflow 0.8 §3.3), which
 * {@linkcode requestText} writes out field by field: the request of every step of a step service,
 * where one `JSON.stringify` of the whole request, then its encoding, cost 1.65 µs against 0.9 µs
 * (issue 17, wave 11; the input is still written by `JSON.stringify`). Reads, and is written, as
 * the plain object `{component, input, attempt, observability}`.
 */
export class ExecuteParams {
  constructor(
    public component: string,
    public input: JsonValue,
    public attempt: number,
    public observability: Observability,
  ) {}
}

/**
 * Serialises a request. The same text as `JSON.stringify({jsonrpc, id, method, params})`, built
 * piece by piece for {@linkcode ExecuteParams}.
 * @throws what `JSON.stringify` throws for params that are not JSON (a BigInt, a cycle).
 */
export function requestText(id: RequestId, method: string, params: unknown): string {
  if (params instanceof ExecuteParams && params.input !== undefined) {
    const o = params.observability;
    return '{"jsonrpc":"2.0","id":' + JSON.stringify(id) + ',"method":' + JSON.stringify(method) +
      ',"params":{"component":' + JSON.stringify(params.component) + ',"input":' +
      JSON.stringify(params.input) + ',"attempt":' + JSON.stringify(params.attempt) +
      ',"observability":{"run_id":' + JSON.stringify(o.run_id) + ',"flow_id":' +
      JSON.stringify(o.flow_id) + ',"step_id":' + JSON.stringify(o.step_id) + "}}}";
  }
  return JSON.stringify({ jsonrpc: JSONRPC_VERSION, id, method, params });
}

/** Serialises a notification. */
export function notificationText(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: JSONRPC_VERSION, method, params });
}

/**
 * Serialises a success response. A result that is not JSON (a BigInt, a cycle, a throwing
 * `toJSON`) gives a -32603 error response saying so, never an exception: the answer is always
 * sent, and the process that answers does not crash on its own handler's output.
 */
export function resultText(id: RequestId, result: unknown): string {
  try {
    return JSON.stringify({ jsonrpc: JSONRPC_VERSION, id, result });
  } catch (err) {
    return errorText(id, {
      code: INTERNAL_ERROR,
      message: `the result cannot be sent as JSON: ${describeError(err).split("\n")[0]}`,
    });
  }
}

/** Serialises an error response (an error `data` that is not JSON is left out, not thrown). */
export function errorText(id: RequestId | null, error: RpcError): string {
  try {
    return JSON.stringify({ jsonrpc: JSONRPC_VERSION, id, error });
  } catch (err) {
    return JSON.stringify({
      jsonrpc: JSONRPC_VERSION,
      id,
      error: {
        code: error.code,
        message: `${error.message} (error data left out: ${describeError(err).split("\n")[0]})`,
      },
    });
  }
}

/**
 * The JSON-RPC error object to answer with for a thrown value: a {@linkcode ProtocolError} as it
 * is (code, message, data); anything else as -32603 with its description.
 */
export function toRpcError(err: unknown): RpcError {
  if (err instanceof ProtocolError) {
    const e: RpcError = { code: err.code, message: err.message };
    if (err.data !== undefined) e.data = err.data as JsonValue;
    return e;
  }
  return { code: INTERNAL_ERROR, message: describeError(err) };
}

/** Shortens text for a log line or an error message. */
export function clip(text: string, max = 200): string {
  return text.length > max ? text.slice(0, max) + `… (${text.length} chars)` : text;
}
