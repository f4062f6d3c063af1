/**
 * A small client of the REST service for `stepflow submit` and `submit-batch`: JSON with exact
 * numbers both ways, the token, errors as one readable line, and storing a flow with its
 * diagnostics shown at the flow file's positions.
 * @module
 */
import { isJsonObject, type JsonValue, parseJson, stringifyJson } from "../json/exact_json.ts";
import type { LoadedFlow } from "../flow/load.ts";
import { parsePath } from "../flow/template.ts";
import { describeError, formatPosition } from "../errors.ts";
import { writeStderr } from "./output.ts";
import { MAX_READ_FILE_BYTES, readBounded } from "../core/read_bounded.ts";

/** stepflow 0.8's `submit` default URL (its server's default port is 7840: see `--url`). */
export const DEFAULT_SUBMIT_URL = "http://localhost:7837";

/** Where `stepflow serve` listens by default (its `--host` and `--port` defaults). */
export const SERVE_DEFAULT_URL = "http://127.0.0.1:7840";

/** A request the service refused or could not answer. */
export class ServiceError extends Error {
  override name = "ServiceError";
  /**
   * @param status the HTTP status; 0 when there is no answer (the service could not be reached,
   * or its answer was cut).
   * @param reason for status 0: what went wrong in a few words (`connection refused`).
   */
  constructor(message: string, readonly status = 0, readonly reason?: string) {
    super(message);
  }
}

/** A request abandoned because the service did not answer in time once the command was stopped. */
export class GaveUpError extends ServiceError {
  override name = "GaveUpError";
}

/**
 * `err` of a request made while waiting for `what` (`run <id>`, `batch <id>`), which the service
 * had accepted: with no answer (status 0), the service went away after accepting it — stopped,
 * killed, crashed —, and the advice of {@linkcode unreachable} (check `--url`) misleads. The
 * error then says so and where to follow the work (`follow`); other errors are returned as they
 * are.
 */
export function lostWhileWaiting(base: URL, what: string, follow: string, err: unknown): unknown {
  if (!(err instanceof ServiceError) || err.status !== 0) return err;
  if (err instanceof GaveUpError) {
    // the service is there but did not answer after a Ctrl-C / SIGTERM: not lost
    return new GaveUpError(`${err.message}: ${what} may still come; follow it with ${follow}`);
  }
  return new ServiceError(
    `lost the Stepflow service at ${base.origin} while waiting for ${what} ` +
      `(${err.reason ?? err.message}): it stopped after accepting it. A service with a database ` +
      `store resumes its unfinished runs when it starts again: follow it with ${follow}`,
  );
}

/**
 * The longest answer read from the service: 512 MiB ({@linkcode MAX_READ_FILE_BYTES}). A server
 * at `--url` that answered without end (not a Stepflow service, or a broken proxy) made
 * `stepflow submit` hold 23 GB before it was killed.
 */
export const MAX_ANSWER_BYTES = MAX_READ_FILE_BYTES;

/**
 * How long requests may still take once the command was told to stop (Ctrl-C, SIGTERM: the
 * cancel sent to the service, an answer awaited to learn the run's id), ms. A service that did not
 * answer kept `stepflow submit` from ending after SIGTERM, for good.
 */
export const STOP_GRACE_MS = 10_000;

/** Talks to one service. */
export class ServiceClient {
  readonly base: URL;
  #giveUp?: AbortSignal;
  #giveUpWhy = "";

  /**
   * @param url the service, e.g. `http://localhost:7840` (a path such as `/api/v1` is ignored:
   * requests go to `/api/v1/...` as in 0.8).
   * @param options.maxAnswerBytes the longest answer read (default {@linkcode MAX_ANSWER_BYTES}).
   * @throws {ServiceError} for a URL that does not parse.
   */
  /** The longest answer read, in bytes. */
  readonly maxAnswerBytes: number;

  constructor(
    url: string,
    readonly token?: string,
    options: { maxAnswerBytes?: number } = {},
  ) {
    this.maxAnswerBytes = options.maxAnswerBytes ?? MAX_ANSWER_BYTES;
    try {
      this.base = new URL(url);
    } catch {
      throw new ServiceError(`--url '${url}' is not a URL: give one such as http://localhost:7840`);
    }
    if (this.base.protocol !== "http:" && this.base.protocol !== "https:") {
      throw new ServiceError(`--url '${url}' must start with http:// or https://`);
    }
  }

  /**
   * From `graceMs` after `stop` aborts (the command's Ctrl-C / SIGTERM), requests in flight and
   * later ones fail with a {@linkcode ServiceError} (status 0) saying the service did not answer
   * in time, instead of waiting for a service that does not answer.
   */
  giveUpAfter(stop: AbortSignal, graceMs = STOP_GRACE_MS): void {
    const ac = new AbortController();
    this.#giveUp = ac.signal;
    const arm = () => {
      this.#giveUpWhy = `within ${graceMs / 1000} s of being told to stop`;
      const t = setTimeout(() => ac.abort(), graceMs);
      Deno.unrefTimer(t);
    };
    if (stop.aborted) arm();
    else stop.addEventListener("abort", arm, { once: true });
  }

  /**
   * Sends a request; resolves with the parsed JSON answer of a 2xx response.
   * @param options.headers more request headers; `options.signal` abandons the request.
   * @throws {ServiceError} with the service's `message` (and status) for other answers, or
   * naming the URL when the service cannot be reached.
   * @throws the abort reason when `options.signal` aborts.
   */
  async call(
    method: string,
    path: string,
    body?: JsonValue,
    options: { headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<JsonValue> {
    const url = new URL(path, this.base);
    const headers: Record<string, string> = { ...options.headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const giveUp = this.#giveUp;
    const signal = options.signal && giveUp
      ? AbortSignal.any([options.signal, giveUp])
      : options.signal ?? giveUp;
    const gaveUp = () =>
      new GaveUpError(
        `${method} ${url.pathname}: the service at ${this.base.origin} did not answer ` +
          `${this.#giveUpWhy}; gave up`,
        0,
        `no answer ${this.#giveUpWhy}`,
      );
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : stringifyJson(body),
        signal,
      });
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (giveUp?.aborted) throw gaveUp();
      throw unreachable(this.base, e);
    }
    let text: string;
    try {
      const read = res.body
        ? await readBounded(res.body, this.maxAnswerBytes)
        : { bytes: new Uint8Array(0), over: false };
      if (read.over) {
        throw new ServiceError(
          `${method} ${url.pathname}: the answer of ${this.base.origin} has more than ` +
            `${this.maxAnswerBytes} bytes and was not read further: is --url a Stepflow service?`,
          res.status,
        );
      }
      text = new TextDecoder().decode(read.bytes);
    } catch (e) {
      if (e instanceof ServiceError) throw e;
      if (options.signal?.aborted) throw options.signal.reason;
      if (giveUp?.aborted) throw gaveUp();
      throw new ServiceError(
        `${method} ${url.pathname}: reading the answer failed: ${e}`,
        0,
        `its answer was cut: ${describeError(e)}`,
      );
    }
    let value: JsonValue = null;
    if (text.trim() !== "") {
      try {
        value = parseJson(text);
      } catch {
        if (res.ok) {
          throw new ServiceError(
            `${method} ${url.pathname}: the answer is not JSON: ${text.slice(0, 200)}`,
          );
        }
      }
    }
    if (!res.ok) {
      const message = isJsonObject(value) && typeof value.message === "string"
        ? value.message
        : text.slice(0, 500) || res.statusText;
      throw new ServiceError(`${method} ${url.pathname}: ${res.status} ${message}`, res.status);
    }
    return value;
  }

  /**
   * Stores a flow (`POST /api/v1/flows`) and prints its diagnostics on stderr at the flow file's
   * positions: errors always, warnings with `verbose` (else their number). `signal` abandons it.
   * @returns the flow id, or undefined when a diagnostic is fatal (the flow was not stored).
   * @throws {ServiceError} also for an answer with neither a flow id nor a fatal diagnostic.
   */
  async storeFlow(
    loaded: LoadedFlow,
    verbose = false,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const answer = await this.call("POST", "/api/v1/flows", { flow: loaded.raw }, { signal });
    if (!isJsonObject(answer)) throw new ServiceError("POST /api/v1/flows: unexpected answer");
    const diags = isJsonObject(answer.diagnostics) && Array.isArray(answer.diagnostics.diagnostics)
      ? answer.diagnostics.diagnostics
      : [];
    if (
      typeof answer.flowId !== "string" &&
      !diags.some((d) => isJsonObject(d) && d.level === "fatal")
    ) {
      // was: 'the service found the flow invalid (above)', with nothing above
      throw new ServiceError(
        `POST /api/v1/flows: the answer of ${this.base.origin} has neither a flowId nor a fatal ` +
          `diagnostic (is --url a Stepflow service?): ${stringifyJson(answer).slice(0, 200)}`,
      );
    }
    let warnings = 0;
    for (const d of diags) {
      if (!isJsonObject(d)) continue;
      if (d.level === "warning") {
        warnings++;
        if (!verbose) continue;
      }
      const at = positionOf(loaded, String(d.path ?? "$"));
      writeStderr(
        `${at ? `${at}: ` : ""}${String(d.level)}: ${String(d.text)} [${String(d.path)}]${
          d.hint ? ` (${String(d.hint)})` : ""
        }\n`,
      );
    }
    if (warnings > 0 && !verbose) {
      writeStderr(`${warnings} validation warning(s); see them with --verbose\n`);
    }
    return typeof answer.flowId === "string" ? answer.flowId : undefined;
  }
}

function positionOf(loaded: LoadedFlow, path: string): string | undefined {
  if (!loaded.source) return undefined;
  try {
    const pos = loaded.source.positionOf(parsePath(path).segments);
    return pos ? formatPosition(pos) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The error for a service that could not be reached at `base`: what went wrong in a few words
 * (`connection refused`, `cannot resolve host 'x'`, else the cause's own text) and what to do.
 * A refused connection elsewhere than `stepflow serve`'s default address suggests
 * `--url http://127.0.0.1:7840` (submit keeps 0.8's default `http://localhost:7837`).
 */
export function unreachable(base: URL, err: unknown): ServiceError {
  // Deno's fetch says "fetch failed"; its cause "... tcp connect error: Connection refused ..."
  const texts: string[] = [];
  for (let e: unknown = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) {
    texts.push(e.message);
  }
  const all = texts.join(": ");
  const what = `cannot reach the Stepflow service at ${base.origin}`;
  if (/refused/i.test(all)) {
    const atDefault = base.port === "7840" &&
      ["127.0.0.1", "localhost", "[::1]"].includes(base.hostname);
    return new ServiceError(
      atDefault
        ? `${what}: connection refused (nothing listens there: start it with 'stepflow serve')`
        : `${what}: connection refused (nothing listens there). 'stepflow serve' listens on ${SERVE_DEFAULT_URL} by default: pass --url ${SERVE_DEFAULT_URL} (or set STEPFLOW_URL), or the address it printed when it started`,
      0,
      "connection refused",
    );
  }
  if (/dns error|lookup address|name or service not known|no such host/i.test(all)) {
    return new ServiceError(
      `${what}: cannot resolve host '${base.hostname}' (check --url or STEPFLOW_URL)`,
      0,
      `cannot resolve host '${base.hostname}'`,
    );
  }
  // the most specific part: the last cause, without Deno's "error sending request for url (..)"
  const detail = (texts.at(-1) ?? String(err))
    .replace(/^error sending request for url \([^)]*\): /, "");
  return new ServiceError(
    `${what}: ${detail} (is 'stepflow serve' running there? pass its address with --url)`,
    0,
    detail,
  );
}
