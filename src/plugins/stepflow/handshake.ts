/**
 * The `initialize` / `initialized` handshake (stepflow 0.8 §3.2): the engine sends
 * `initialize {runtime_protocol_version: 1}`, awaits the result (the version is not compared,
 * as in 0.8), then sends the `initialized` notification.
 * @module
 */
import { TransportError } from "../../errors.ts";
import { deadline } from "../../core/abort.ts";

/** The protocol version the engine announces. */
export const RUNTIME_PROTOCOL_VERSION = 1;

/** How long a worker may take to answer `initialize`, ms. */
export const INITIALIZE_TIMEOUT_MS = 30_000;

/** The part of a peer or transport the handshake needs. */
export interface HandshakePeer {
  request(method: string, params: unknown, signal?: AbortSignal): Promise<unknown>;
  notify(method: string, params: unknown): Promise<void>;
}

/**
 * Does the handshake.
 * @throws {ProtocolError} / {TransportError} from the peer; a {@linkcode TransportError}
 *   after {@linkcode INITIALIZE_TIMEOUT_MS} without an answer.
 */
export async function initializeWorker(
  peer: HandshakePeer,
  name: string,
  signal?: AbortSignal,
): Promise<void> {
  const limit = deadline(
    INITIALIZE_TIMEOUT_MS,
    () =>
      new TransportError(`${name} did not answer 'initialize' within ${INITIALIZE_TIMEOUT_MS} ms`),
    signal,
  );
  try {
    await peer.request(
      "initialize",
      { runtime_protocol_version: RUNTIME_PROTOCOL_VERSION },
      limit.signal,
    );
  } finally {
    limit.dispose();
  }
  await peer.notify("initialized", {});
}
