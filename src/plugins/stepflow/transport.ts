/**
 * What the stepflow plugin needs from a transport (stdio or HTTP): start, calls, close.
 * @module
 */
import type { JsonValue } from "../../json/exact_json.ts";
import { TransportError } from "../../errors.ts";
import type { RequestMessage } from "../../protocol/envelope.ts";

/**
 * Room for the JSON-RPC envelope around an output, bytes: an answer may be this much larger than
 * the output size limit before a transport stops reading it.
 */
export const ENVELOPE_BYTES = 64 * 1024;

/** Answers a worker→engine request (`blobs/put`, `flows/evaluate`, ...). */
export type RequestHandler = (request: RequestMessage) => Promise<unknown>;

/** A connection to one step service. */
export interface WorkerTransport {
  /** Connects (spawns the process) and does the `initialize`/`initialized` handshake. */
  start(): Promise<void>;
  /**
   * Sends a request and resolves with its result.
   * @throws {ProtocolError} the worker's JSON-RPC error.
   * @throws {TransportError} the call got no answer (crash, closed pipe, unreachable URL);
   *   {@linkcode WorkerCrashError} when the worker died while the call was open.
   */
  request(method: string, params: unknown, signal?: AbortSignal): Promise<JsonValue>;
  /** Stops: closes the process or connections. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The worker process died while a call was open (stepflow 0.8: in-flight calls fail with
 * -32603 `Process crashed during request execution`; an execute call is then retried once
 * with `attempt: 2` on the restarted worker).
 */
export class WorkerCrashError extends TransportError {
  override name = "WorkerCrashError";
}
