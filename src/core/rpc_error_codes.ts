/**
 * JSON-RPC error codes used by the Stepflow protocol (stepflow 0.8 §3.3 and §13).
 *
 * The engine never interprets a worker's error code: it is carried into the failed step result
 * unchanged (see docs/protocol.md). These constants name the codes the engine itself produces and
 * the ones the 0.8 Python SDK uses, so that workers in any language can agree on them.
 * @module
 */

/** The message was not valid JSON (JSON-RPC 2.0). */
export const PARSE_ERROR = -32700;
/** The message was JSON but not a valid JSON-RPC request (JSON-RPC 2.0). */
export const INVALID_REQUEST = -32600;
/** The method is not known (JSON-RPC 2.0; stepflow 0.8: `Method not found: '<m>'`). */
export const METHOD_NOT_FOUND = -32601;
/** The params did not match the method (stepflow 0.8: `Invalid parameters for request <id>`). */
export const INVALID_PARAMS = -32602;
/**
 * Internal error. stepflow 0.8 uses it for in-flight calls of a crashed stdio worker
 * (`Process crashed during request execution`); this engine uses it for every transport failure
 * of a call (crash, closed pipe, unreachable URL, HTTP 5xx without a JSON-RPC body).
 */
export const INTERNAL_ERROR = -32603;
/** Engine-side failure of a worker→engine call (stepflow 0.8: `Failed to put blob`, ...). */
export const SERVER_ERROR = -32000;
/** Python SDK: unknown component. */
export const COMPONENT_NOT_FOUND = -32001;
/** Python SDK: validation error. */
export const VALIDATION_ERROR = -32002;
/** Python SDK: the component raised (`Component execution failed: <exc>`). */
export const EXECUTION_ERROR = -32003;
/** stepflow 0.8: `Not found: flow with ID '<id>'` (the docs have -32011/-32012 swapped). */
export const NOT_FOUND = -32011;
/** stepflow 0.8: `Invalid value for field 'batch_id': expected valid UUID`. */
export const INVALID_VALUE = -32012;
/**
 * Engine-made, never sent: stands in for an MCP server's answer longer than the output size limit
 * (the rest of its line is not read); the step fails with 413 `OUTPUT_TOO_LARGE`.
 */
export const ANSWER_TOO_LARGE = -32413;
