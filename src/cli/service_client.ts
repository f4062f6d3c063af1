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

/**
 * `err` of a request made while waiting for `what` (`run <id>`, `batch <id>`), which the service
 * had accepted: with no answer (status 0), the service went away after accepting it — stopped,
 * killed, crashed —, and the advice of {@linkcode unreachable} (check `--url`) misleads. The
 * error then says so and where to follow the work (`follow`); other errors are returned as they
 * are.
 */
export function lostWhileWaiting(base: URL, what: string, follow: string, err: unknown): unknown {
  if (!(err instanceof ServiceError) || err.status !== 0) return err;
  return new ServiceError(
    `lost the Stepflow service at ${base.origin} while waiting for ${what} ` +
      `(${err.reason ?? err.message}): it stopped after accepting it. A service with a database ` +
      `store resumes its unfinished runs when it starts again: follow it with ${follow}`,
  );
}

/** Talks to one service. */
export class ServiceClient {
  readonly base: URL;

  /**
   * @param url the service, e.g. `http://localhost:7840` (a path such as `/api/v1` is ignored:
   * requests go to `/api/v1/...` as in 0.8).
   * @throws {ServiceError} for a URL that does not parse.
   */
  constructor(url: string, readonly token?: string) {
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
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : stringifyJson(body),
        signal: options.signal,
      });
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw unreachable(this.base, e);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason;
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
   * positions: errors always, warnings with `verbose` (else their number).
   * @returns the flow id, or undefined when a diagnostic is fatal (the flow was not stored).
   */
  async storeFlow(loaded: LoadedFlow, verbose = false): Promise<string | undefined> {
    const answer = await this.call("POST", "/api/v1/flows", { flow: loaded.raw });
    if (!isJsonObject(answer)) throw new ServiceError("POST /api/v1/flows: unexpected answer");
    const diags = isJsonObject(answer.diagnostics) && Array.isArray(answer.diagnostics.diagnostics)
      ? answer.diagnostics.diagnostics
      : [];
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
