/**
 * The MCP SDK pieces this plugin uses, typed in one place.
 *
 * The SDK's wildcard export (`"./*": {types: "./dist/esm/*.d.ts"}`) maps `types.js` to
 * `types.js.d.ts`, which does not exist, so Deno sees `@modelcontextprotocol/sdk/<x>.js` imports
 * as untyped. The named exports (`/client`, `/validation`) are typed; the rest is typed here
 * from them.
 * @module
 */
import { Client } from "@modelcontextprotocol/sdk/client";
import * as sdkTypes from "@modelcontextprotocol/sdk/types.js";
import * as sdkHttp from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export { Client };
export type {
  JsonSchemaType,
  JsonSchemaValidator,
  jsonSchemaValidator,
} from "@modelcontextprotocol/sdk/validation";

/** The SDK transport contract (`start`, `send`, `close`, `onmessage`, `onerror`, `onclose`). */
export type Transport = Parameters<Client["connect"]>[0];
/** One JSON-RPC message as transports carry it. */
export type JSONRPCMessage = Parameters<Transport["send"]>[0];
/** A `tools/call` result. */
export type CallToolResult = Awaited<ReturnType<Client["callTool"]>>;
/** A tool as `tools/list` describes it. */
export type Tool = Awaited<ReturnType<Client["listTools"]>>["tools"][number];

/** An error the SDK raises: a JSON-RPC error from the server, or an SDK condition (`code`). */
export interface McpError extends Error {
  readonly code: number;
  readonly data?: unknown;
}

/** True for the SDK's `McpError`. */
export function isMcpError(err: unknown): err is McpError {
  return err instanceof (sdkTypes.McpError as new (...a: unknown[]) => Error);
}

/**
 * True for the SDK's own request timeout (code -32001 with `data.timeout`), not a server's error
 * that happens to use -32001 (servers may use -32000..-32099 for their own errors).
 */
export function isSdkTimeout(err: unknown): boolean {
  return isMcpError(err) && err.code === ErrorCode.RequestTimeout &&
    typeof (err.data as { timeout?: unknown } | undefined)?.timeout === "number";
}

/** The SDK's reserved error codes this plugin tells apart. */
export const ErrorCode = {
  ConnectionClosed: sdkTypes.ErrorCode.ConnectionClosed as number,
  RequestTimeout: sdkTypes.ErrorCode.RequestTimeout as number,
} as const;

/** The SDK's Streamable HTTP client transport. */
export interface StreamableHttpTransport extends Transport {
  /** Sends `DELETE` for the session (best effort). */
  terminateSession(): Promise<void>;
}

/** Makes a Streamable HTTP client transport for `url` (its requests go through `fetch`). */
export function streamableHttpTransport(
  url: URL,
  fetch?: typeof globalThis.fetch,
): StreamableHttpTransport {
  return new sdkHttp.StreamableHTTPClientTransport(
    url,
    fetch ? { fetch } : undefined,
  ) as StreamableHttpTransport;
}
