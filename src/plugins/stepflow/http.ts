/**
 * The HTTP transport (stepflow 0.8 §3.5, "streamable HTTP"): every message is a `POST` of one
 * JSON-RPC message to the configured `url` (exactly), with `Accept: application/json,
 * text/event-stream`. The worker answers a request either with a JSON body (the response) or
 * with an SSE stream carrying its own requests (`blobs/put`, ...) and, last, the response. The
 * engine answers each embedded request with a `POST` of the JSON-RPC response to the same URL,
 * adding `Stepflow-Instance-Id` when the stream carried that header (the worker answers 202).
 *
 * Failures name the URL: a connection error, or an HTTP error status whose body is not a
 * JSON-RPC error response, is a {@linkcode TransportError}. A JSON-RPC error (any status) is a
 * {@linkcode ProtocolError} with the worker's code and message.
 *
 * Better than 0.8: when the worker cannot be reached at start-up, the handshake is retried on
 * the first call instead of failing the whole engine, so steps fail (and `onError` applies).
 *
 * One transport on purpose (just over 400 lines): the request, its SSE stream and the answers to
 * the worker's embedded requests share one call's state; reading bodies is in http_body.ts.
 * @module
 */
import { isJsonObject, type JsonValue, MAX_JSON_DEPTH } from "../../json/exact_json.ts";
import { MessageTooDeepError, parseMessage } from "../../protocol/parse_message.ts";
import { describeError, OutputLimitError, ProtocolError, TransportError } from "../../errors.ts";
import { INTERNAL_ERROR, INVALID_PARAMS } from "../../core/rpc_error_codes.ts";
import type { Logger } from "../../log.ts";
import {
  classifyMessage,
  clip,
  errorText,
  notificationText,
  type RequestId,
  type RequestMessage,
  requestText,
  resultText,
  type RpcError,
  toRpcError,
} from "../../protocol/envelope.ts";
import { readSseData, type SseLimits } from "../../protocol/sse.ts";
import { ENVELOPE_BYTES, type RequestHandler, type WorkerTransport } from "./transport.ts";
import { initializeWorker } from "./handshake.ts";
import { abortable } from "../../core/abort.ts";
import { DEFAULT_MAX_BODY_BYTES, readBodyText } from "./http_body.ts";

/** Most 307/308 redirects followed for one message (0.8's HTTP client: 10). */
const MAX_REDIRECTS = 10;

/** The header a worker sets on an SSE response so replies reach the same instance. */
export const INSTANCE_ID_HEADER = "Stepflow-Instance-Id";

const POST_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json",
  "accept": "application/json, text/event-stream",
};

/** Options of an {@linkcode HttpWorker}. */
export interface HttpWorkerOptions {
  /** Plugin name (messages). */
  name: string;
  /** The worker's endpoint; every message is posted here. */
  url: string;
  log: Logger;
  /** Answers the worker's requests embedded in SSE streams. */
  onRequest: RequestHandler;
  /**
   * The engine's output size limit, bytes: a JSON answer body (or an SSE event) passing it
   * (plus the envelope's room) is not read further, and its call fails with 413.
   * @default no limit but {@linkcode DEFAULT_MAX_BODY_BYTES}
   */
  maxOutputBytes?: number;
}

/** A step service reached over HTTP. */
export class HttpWorker implements WorkerTransport {
  readonly #o: HttpWorkerOptions;
  readonly #name: string;
  #handshake?: Promise<void>;
  /** True once the handshake succeeded. */
  #initialized = false;
  #closed = false;
  #ac = new AbortController();

  constructor(options: HttpWorkerOptions) {
    this.#o = options;
    this.#name = `step service '${options.name}' at ${options.url}`;
  }

  /**
   * Does the handshake. A connection failure is logged and the handshake retried at the first
   * call; other failures (an error answer, a notification not accepted) throw.
   */
  async start(): Promise<void> {
    try {
      await this.#ensureHandshake();
    } catch (err) {
      if (!(err instanceof TransportError) || !/cannot reach/.test(err.message)) throw err;
      this.#o.log.warn(`${describeError(err)}; will try again at the first call`);
    }
  }

  /** See {@linkcode WorkerTransport.request}. */
  request(method: string, params: unknown, signal?: AbortSignal): Promise<JsonValue> {
    if (this.#closed) return Promise.reject(new TransportError(`${this.#name} is closed`));
    // the hot path: once the handshake is done, no turn is spent waiting for it
    if (this.#initialized) return this.#call(method, params, signal);
    return this.#ensureHandshake().then(() => this.#call(method, params, signal));
  }

  /** Aborts open calls. */
  close(): Promise<void> {
    this.#closed = true;
    this.#ac.abort(new TransportError(`${this.#name} is closed`));
    return Promise.resolve();
  }

  #ensureHandshake(): Promise<void> {
    this.#handshake ??= initializeWorker(
      { request: (m, p, s) => this.#call(m, p, s), notify: (m, p) => this.#notify(m, p) },
      this.#name,
      this.#ac.signal,
    ).then(() => {
      this.#initialized = true;
    }, (err) => {
      this.#handshake = undefined; // try again next time
      throw err;
    });
    return this.#handshake;
  }

  /**
   * Posts one message and reads the answer's body, unless `stream` is set and the answer is an
   * event stream (then `body` is undefined and the caller reads `res.body`). The caller's signal
   * is not handed to `fetch` (a composite signal per call costs about a fifth of a loopback round
   * trip); the wait is raced against it instead, and `fetch` gets a plain per-call signal that
   * fires when the call is abandoned (aborted, closed): the request or its body is cancelled then,
   * also when the answer's headers only arrive later, so nothing is read for a call nobody waits
   * for (bench/protocol_roundtrip.ts: no measurable cost).
   * A body is read up to {@linkcode #bodyLimit} bytes (an error status: 64 KiB, for the
   * message); a larger answer to a request fails with an {@linkcode OutputLimitError}.
   * @throws {TransportError} naming the URL when the worker cannot be reached or the body not read.
   * @throws {OutputLimitError} when the answer's body is over the limit (it is cancelled).
   * @throws {ProtocolError} when a success answer's body is not UTF-8.
   */
  async #exchange(
    text: string,
    signal: AbortSignal | undefined,
    options: { instanceId?: string; stream?: boolean; method?: string } = {},
  ): Promise<{ res: Response; body?: string }> {
    const { instanceId, stream = false } = options;
    const headers = instanceId
      ? { ...POST_HEADERS, [INSTANCE_ID_HEADER]: instanceId }
      : POST_HEADERS;
    const stop = new AbortController();
    const answered = this.#post(text, headers, stop.signal, options.method).then(
      async (res) => {
        if (stop.signal.aborted) {
          await res.body?.cancel().catch(() => {});
          return { res, body: "" };
        }
        const type = res.headers.get("content-type") ?? "";
        if (stream && res.ok && res.body && type.includes("text/event-stream")) return { res };
        return { res, body: await this.#readBody(res, stop.signal, options.method) };
      },
    );
    try {
      return await this.#abortable(answered, signal, () => {
        stop.abort();
        answered.then(({ res, body }) => {
          if (body === undefined) res.body?.cancel().catch(() => {});
        }, () => {});
      });
    } catch (err) {
      if (
        signal?.aborted || this.#ac.signal.aborted || err instanceof TransportError ||
        err instanceof OutputLimitError || err instanceof ProtocolError
      ) throw err;
      throw new TransportError(`cannot reach ${this.#name}: ${describeError(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * POSTs `text` to the plugin's URL, following 307/308 redirects (the same POST again, at most
   * {@linkcode MAX_REDIRECTS} hops, as 0.8's HTTP client does). A 301/302/303 redirect is an error
   * naming its target: `fetch` (and 0.8) would follow it with a GET that drops the message, and
   * the call failed with "answered with something that is not a JSON-RPC response" quoting
   * whatever the target answered to that GET.
   * @throws {TransportError} for a 301/302/303, a redirect without `Location`, or too many.
   */
  async #post(
    text: string,
    headers: Record<string, string>,
    signal: AbortSignal,
    method: string | undefined,
  ): Promise<Response> {
    let url = this.#o.url;
    for (let hop = 0;; hop++) {
      const res = await fetch(url, {
        method: "POST",
        headers,
        body: text,
        signal,
        redirect: "manual",
      });
      if (res.status < 300 || res.status > 399 || res.status === 304) return res;
      await res.body?.cancel().catch(() => {});
      const what = method === undefined ? "a message" : `'${method}'`;
      const location = res.headers.get("location");
      if (location === null) {
        throw new TransportError(
          `${this.#name} answered ${what} with HTTP ${res.status}, a redirect without a Location header`,
        );
      }
      const target = new URL(location, url).href;
      if (res.status !== 307 && res.status !== 308) {
        throw new TransportError(
          `${this.#name} answered ${what} with HTTP ${res.status}, a redirect to ${target}: ` +
            "following it would turn the POST into a GET and lose the message; " +
            `set the plugin's url to ${target}`,
        );
      }
      if (hop >= MAX_REDIRECTS) {
        throw new TransportError(
          `${this.#name} answered ${what} with more than ${MAX_REDIRECTS} redirects in a row (last to ${target})`,
        );
      }
      url = target;
    }
  }

  /** Largest answer body read, bytes: the output size limit plus the envelope's room. */
  get #bodyLimit(): number {
    const limit = this.#o.maxOutputBytes;
    return limit === undefined ? DEFAULT_MAX_BODY_BYTES : limit + ENVELOPE_BYTES;
  }

  /** Reads a body as text (see {@linkcode readBodyText}) within {@linkcode #bodyLimit}. */
  #readBody(res: Response, stop: AbortSignal, method?: string): Promise<string> {
    return readBodyText(res, stop, {
      name: this.#name,
      limitBytes: this.#bodyLimit,
      maxOutputBytes: this.#o.maxOutputBytes,
      method,
    });
  }

  /**
   * Resolves as `p`, or rejects with the abort reason as soon as `signal` or {@linkcode close}
   * aborts (then `onAbort` runs, to release what `p` holds).
   */
  #abortable<T>(p: Promise<T>, signal: AbortSignal | undefined, onAbort?: () => void): Promise<T> {
    return abortable(p, [signal, this.#ac.signal], onAbort);
  }

  async #notify(method: string, params: unknown): Promise<void> {
    const { res, body } = await this.#exchange(notificationText(method, params), undefined);
    if (res.status !== 202) {
      throw new TransportError(
        `${this.#name} answered the '${method}' notification with HTTP ${res.status} (expected 202): ${
          clip(body ?? "")
        }`,
      );
    }
  }

  async #call(method: string, params: unknown, signal?: AbortSignal): Promise<JsonValue> {
    const id = crypto.randomUUID();
    const { res, body } = await this.#exchange(requestText(id, method, params), signal, {
      stream: true,
      method,
    });
    if (body === undefined) {
      const stop = new AbortController();
      return await this.#abortable(
        this.#readStream(res, id, method, stop.signal),
        signal,
        () => stop.abort(),
      );
    }
    const text = body;
    let value: JsonValue | undefined;
    try {
      value = parseMessage(text);
    } catch (err) {
      if (err instanceof MessageTooDeepError && res.ok) throw this.#tooDeep(method, err);
      value = undefined;
    }
    const msg = value === undefined ? undefined : classifyMessage(value);
    if (msg?.kind === "response" && msg.error) {
      throw new ProtocolError(msg.error.code, msg.error.message, msg.error.data);
    }
    if (!res.ok) {
      throw new TransportError(
        `${this.#name} answered '${method}' with HTTP ${res.status}${
          text ? `: ${clip(text)}` : ""
        }`,
      );
    }
    if (msg?.kind === "response") {
      if (msg.id !== id) {
        throw new TransportError(
          `${this.#name} answered '${method}' with a response to another request (id ${
            JSON.stringify(msg.id)
          }, expected ${JSON.stringify(id)})`,
        );
      }
      return msg.result as JsonValue;
    }
    if (text.trim() === "") {
      throw new TransportError(
        `${this.#name} answered '${method}' with HTTP ${res.status} and an empty body (expected a JSON-RPC response)`,
      );
    }
    throw new TransportError(
      `${this.#name} answered '${method}' with something that is not a JSON-RPC response: ${
        clip(text)
      }`,
    );
  }

  async #readStream(
    res: Response,
    id: string,
    method: string,
    stop: AbortSignal,
  ): Promise<JsonValue> {
    const instanceId = res.headers.get(INSTANCE_ID_HEADER) ?? undefined;
    const replies: Promise<void>[] = [];
    let otherId: RequestId | undefined;
    const limit = this.#o.maxOutputBytes;
    // One limit for every event of the stream, in bytes as they arrive: the body limit (the
    // output size limit plus the envelope's room). Our answer over it is refused for its size
    // (413); anything else (a large blobs/put, an event without end) fails the call naming it.
    // Before: events that were not our answer could take 512 Mi characters (1 GiB of two-byte
    // text held per call).
    const bodyLimit = this.#bodyLimit;
    const ours = new RegExp(`"id"\\s*:\\s*"${id}"(?!\\s*,\\s*"method")`);
    const limits: SseLimits = {
      maxEventBytes: bodyLimit,
      onTooLarge: (head, bytes) =>
        ours.test(head)
          ? new OutputLimitError(
            `${this.#name} answered '${method}' with an event of more than ${bytes} bytes, ` +
              `not read to its end`,
            { limitBytes: limit ?? DEFAULT_MAX_BODY_BYTES, sizeBytes: bytes },
          )
          : new TransportError(
            `${this.#name} sent an event of more than ${bytes} bytes in the stream of ` +
              `'${method}', over the limit of ${bodyLimit} bytes for one message${
                limit === undefined
                  ? ""
                  : ` (maxOutputSize ${limit} + ${ENVELOPE_BYTES}): raise maxOutputSize, or ` +
                    "send less in one message (e.g. several smaller blobs)"
              }; the stream was not read to its end`,
          ),
      onInvalidUtf8: () =>
        new ProtocolError(
          INTERNAL_ERROR,
          `${this.#name} answered '${method}' with an event stream that is not UTF-8 text; its ` +
            `data was not used: send events as UTF-8`,
        ),
    };
    try {
      for await (const data of readSseData(res.body!, stop, limits)) {
        let value: JsonValue;
        try {
          value = parseMessage(data);
        } catch (err) {
          if (err instanceof MessageTooDeepError) {
            if (err.id === id) throw this.#tooDeep(method, err);
            if (err.method !== undefined && err.id !== undefined) {
              replies.push(this.#refuseDeep(err, instanceId));
              continue;
            }
          }
          this.#o.log.warn(`${this.#name}: skipped an SSE event that is not JSON: ${clip(data)}`);
          continue;
        }
        const msg = classifyMessage(value);
        if (msg.kind === "request") {
          replies.push(this.#reply(msg, instanceId));
        } else if (msg.kind === "response" && msg.id === id) {
          if (msg.error) throw new ProtocolError(msg.error.code, msg.error.message, msg.error.data);
          return msg.result as JsonValue;
        } else {
          if (msg.kind === "response" && otherId === undefined) otherId = msg.id;
          this.#o.log.debug(`${this.#name}: ignored an SSE event: ${clip(data)}`);
        }
      }
    } catch (err) {
      if (
        err instanceof ProtocolError || err instanceof TransportError ||
        err instanceof OutputLimitError
      ) throw err;
      throw new TransportError(
        `${this.#name}: the event stream of '${method}' failed: ${describeError(err)}`,
        { cause: err },
      );
    } finally {
      await Promise.allSettled(replies);
    }
    throw new TransportError(
      `${this.#name}: the event stream of '${method}' ended without a response${
        otherId === undefined
          ? ""
          : ` (it carried a response to another request: id ${JSON.stringify(otherId)}, expected ${
            JSON.stringify(id)
          })`
      }`,
    );
  }

  /**
   * The error for an answer nested more than {@linkcode MAX_JSON_DEPTH} levels: an error answer
   * keeps its code and message (its data is left out), a result is an {@linkcode OutputLimitError}.
   */
  #tooDeep(method: string, err: MessageTooDeepError): Error {
    const limit = `nested more than ${MAX_JSON_DEPTH} levels deep`;
    const v = err.value;
    if (isJsonObject(v) && isJsonObject(v.error) && typeof v.error.code === "number") {
      const message = typeof v.error.message === "string" ? v.error.message : "";
      return new ProtocolError(v.error.code, `${message} (error data left out: ${limit})`);
    }
    return new OutputLimitError(`${this.#name} answered '${method}' with a value ${limit}`, {
      limitDepth: MAX_JSON_DEPTH,
    });
  }

  /** Answers a worker's request whose params are nested too deep with -32602. */
  #refuseDeep(err: MessageTooDeepError, instanceId: string | undefined): Promise<void> {
    this.#o.log.warn(
      `${this.#name}: refused '${err.method}': its params are nested more than ${MAX_JSON_DEPTH} levels deep`,
    );
    const req: RequestMessage = { kind: "request", id: err.id!, method: err.method! };
    return this.#reply(req, instanceId, {
      code: INVALID_PARAMS,
      message:
        `Invalid params: nested more than ${MAX_JSON_DEPTH} levels deep (the engine's limit)`,
    });
  }

  async #reply(
    req: RequestMessage,
    instanceId: string | undefined,
    refusal?: RpcError,
  ): Promise<void> {
    let text: string;
    try {
      if (refusal) throw new ProtocolError(refusal.code, refusal.message);
      text = resultText(req.id, (await this.#o.onRequest(req)) ?? null);
    } catch (err) {
      text = errorText(req.id, toRpcError(err));
    }
    try {
      const { res, body } = await this.#exchange(text, undefined, { instanceId });
      if (res.status !== 202) {
        this.#o.log.warn(
          `${this.#name} answered the reply to '${req.method}' with HTTP ${res.status} (expected 202): ${
            clip(body ?? "")
          }`,
        );
      }
    } catch (err) {
      this.#o.log.warn(
        `${this.#name}: could not post the reply to '${req.method}': ${describeError(err)}`,
      );
    }
  }
}
