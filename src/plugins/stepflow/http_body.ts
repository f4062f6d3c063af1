/**
 * Reading the body of a step service's HTTP answer (stepflow 0.8 §3.5) within a size limit: the
 * output size limit for a success answer (a larger one fails its call with 413, never retried),
 * 64 KiB of an error status's body (its text only goes into a message).
 * @module
 */
import { OutputLimitError, ProtocolError, TransportError } from "../../errors.ts";
import { INTERNAL_ERROR } from "../../core/rpc_error_codes.ts";
import { invalidUtf8Offset } from "../../core/utf8.ts";
import { type BoundedRead, readBounded } from "../../core/read_bounded.ts";

/**
 * Largest answer body (or SSE event) read when the engine has no output size limit, bytes
 * (about the longest string V8 can hold, as the stdio line cap).
 */
export const DEFAULT_MAX_BODY_BYTES = 512 * 1024 * 1024;

/** Most of an error status's body read for the error message, bytes. */
const ERROR_BODY_BYTES = 64 * 1024;

/** What {@linkcode readBodyText} needs to know. */
export interface BodyLimits {
  /** Names the step service in messages, e.g. `step service 'python'`. */
  name: string;
  /** Most bytes of a success answer's body read. */
  limitBytes: number;
  /** The engine's output size limit (reported in the 413 error), bytes. */
  maxOutputBytes: number | undefined;
  /** The method the body answers (in messages). */
  method?: string;
}

/**
 * Reads a body as text, at most `limits.limitBytes` bytes (64 KiB for an error status, whose text
 * only goes into a message: the rest is cut off). Stops and cancels the body when `stop` aborts.
 * @throws {OutputLimitError} for a success answer over the limit.
 * @throws {ProtocolError} (-32603) for a success answer that is not UTF-8 (its data would change).
 * @throws {TransportError} when the body cannot be read.
 */
export async function readBodyText(
  res: Response,
  stop: AbortSignal,
  limits: BodyLimits,
): Promise<string> {
  if (!res.body) return "";
  const { name, method } = limits;
  const limit = res.ok ? limits.limitBytes : ERROR_BODY_BYTES;
  // The common answer has a Content-Length within the limit: read it in one go (a reader loop
  // costs two more op round trips per call, a fifth of a loopback call); a stalled one is
  // cut off by fetch's signal.
  const length = res.headers.get("content-length");
  if (length !== null && /^\d+$/.test(length) && Number(length) <= limit) {
    let bytes: Uint8Array;
    try {
      bytes = await res.bytes();
    } catch (err) {
      throw new TransportError(`${name}: reading its answer failed`, { cause: err });
    }
    return decodeBody(bytes, res.ok, limits);
  }
  let read: BoundedRead;
  try {
    // an error status's text is cut at its limit (it only goes into a message)
    read = await readBounded(res.body, limit, { stop, keepCut: !res.ok });
  } catch (err) {
    throw new TransportError(`${name}: reading its answer failed`, { cause: err });
  }
  if (read.over && res.ok) {
    throw new OutputLimitError(
      `${name} answered${
        method ? ` '${method}'` : ""
      } with a body of more than ${read.size} bytes, not read to its end`,
      { limitBytes: limits.maxOutputBytes ?? DEFAULT_MAX_BODY_BYTES, sizeBytes: read.size },
    );
  }
  return decodeBody(read.bytes, res.ok, limits);
}

const strict = new TextDecoder("utf-8", { fatal: true });

/**
 * A body as text: an error status's leniently (it only goes into a message), a success answer's
 * strictly — bytes that are not UTF-8 fail the call rather than reach the step changed.
 */
function decodeBody(bytes: Uint8Array, ok: boolean, limits: BodyLimits): string {
  if (!ok) return new TextDecoder().decode(bytes);
  try {
    return strict.decode(bytes);
  } catch {
    throw new ProtocolError(
      INTERNAL_ERROR,
      `${limits.name} answered${limits.method ? ` '${limits.method}'` : ""} with a body that ` +
        `is not UTF-8 text (an invalid byte at offset ${invalidUtf8Offset(bytes)}); its data ` +
        `was not used: send JSON as UTF-8`,
    );
  }
}
