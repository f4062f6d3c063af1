/**
 * What `/openai` and `/chat` share (issue 16): where the OpenAI-compatible endpoint is, the API
 * key, and how a failed call (src/plugins/builtin/model_http.ts) becomes a failed FlowResult the
 * step's `onError` (and retry policy) can handle.
 *
 * Endpoint precedence, first found wins:
 * - base URL: step input `base_url` > config `plugins.<builtin>.openai.baseUrl` >
 *   `OPENAI_BASE_URL` > `https://api.openai.com/v1`;
 * - API key: step input `api_key` > the variable named by config `openai.apiKeyEnv` (default
 *   `OPENAI_API_KEY`). Only OpenAI itself (`api.openai.com`) requires a key (stepflow 0.8's
 *   error `missing value ("api_key") or environment variable ("OPENAI_API_KEY")`); other servers
 *   (Ollama, vLLM, llama.cpp) get no `Authorization` header when no key is set.
 *
 * Keys never leave this module except in the `Authorization` header: error messages and data
 * have every occurrence of the key (and of configured header values) replaced by `[REDACTED]` (as secrets are), and base
 * URLs are shown without user info or query.
 * @module
 */
import type { OpenAISettings } from "../../config/model.ts";
import { substituteEnv } from "../../config/env.ts";
import { parseDuration } from "../../core/duration.ts";
import { engineFailure, outputTooLarge } from "../../core/error_codes.ts";
import { failed, type FlowFailed } from "../../core/flow_result.ts";
import type { JsonObject } from "../../json/exact_json.ts";
import { PluginError } from "../../errors.ts";
import { rethrowIfPermission } from "../../core/permission_hint.ts";
import { invalidInput } from "./_input.ts";
import {
  ModelAbortError,
  ModelAnswerError,
  ModelAnswerTooLargeError,
  ModelApiError,
  ModelConnectionError,
  ModelCutOffError,
  type ModelEndpoint,
  ModelTimeoutError,
} from "./model_http.ts";
import { ANSWER_ENVELOPE_BYTES } from "./model_http.ts";

/** OpenAI's API, the default base URL (as the `openai` client). */
export const DEFAULT_BASE_URL = "https://api.openai.com/v1";
/** The variable holding the key, unless `openai.apiKeyEnv` names another (stepflow 0.8). */
export const DEFAULT_API_KEY_ENV = "OPENAI_API_KEY";
/** The variable read for the base URL when neither the step nor the config gives one. */
export const BASE_URL_ENV = "OPENAI_BASE_URL";
/** Default limit on one HTTP request, ms (10 minutes, as the `openai` clients). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 600_000;

/** The config's `openai` settings after `${VAR}` substitution and defaults. */
export interface OpenAIDefaults {
  baseUrl?: string;
  apiKeyEnv: string;
  model?: string;
  timeoutMs: number;
  headers: Record<string, string>;
}

/**
 * Resolves config `openai` settings: substitutes `${VAR}` references from the environment,
 * checks `baseUrl` and `timeout`.
 * @throws {Error} naming the setting for an unset variable, a base URL that is not http(s), or
 *   a bad timeout; a missing Deno env permission is rethrown as such (the CLI prints its hint).
 */
export function resolveOpenAIDefaults(
  settings: OpenAISettings | undefined,
  env: (name: string) => string | undefined = readEnv,
): OpenAIDefaults {
  const sub = (what: string, text: string) => {
    try {
      return substituteEnv(text, env);
    } catch (e) {
      rethrowIfPermission(e);
      throw new Error(`openai.${what}: ${(e as Error).message}`, { cause: e });
    }
  };
  const baseUrl = settings?.baseUrl !== undefined ? sub("baseUrl", settings.baseUrl) : undefined;
  if (baseUrl !== undefined && baseUrl !== "") checkBaseUrl(baseUrl, "openai.baseUrl");
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(settings?.headers ?? {})) headers[k] = sub(`headers.${k}`, v);
  const model = settings?.model !== undefined ? sub("model", settings.model) : undefined;
  return {
    baseUrl: baseUrl || undefined,
    apiKeyEnv: settings?.apiKeyEnv ?? DEFAULT_API_KEY_ENV,
    model: model || undefined,
    timeoutMs: settings?.timeout !== undefined
      ? parseDuration(settings.timeout, { what: "openai.timeout" })
      : DEFAULT_REQUEST_TIMEOUT_MS,
    headers,
  };
}

/** Where one call goes and with which key. */
export type Endpoint = ModelEndpoint;

/**
 * The endpoint of one call (see the module doc for the precedence).
 * @throws {PluginError} `missing value ("api_key") or environment variable ("<VAR>")` (stepflow
 *   0.8) when OpenAI's own API is called without a key; `invalid input` for a `base_url` that is
 *   not an http(s) URL. A missing Deno env permission is rethrown (the CLI names the flag).
 */
export function resolveEndpoint(
  component: string,
  input: { api_key?: string; base_url?: string },
  defaults: OpenAIDefaults,
  env: (name: string) => string | undefined = readEnv,
): Endpoint {
  let baseUrl = input.base_url;
  if (baseUrl !== undefined) {
    try {
      checkBaseUrl(baseUrl, "`base_url`");
    } catch (e) {
      throw invalidInput(component, (e as Error).message);
    }
  } else {
    baseUrl = defaults.baseUrl ?? envValue(BASE_URL_ENV, env) ?? DEFAULT_BASE_URL;
  }
  const apiKey = input.api_key || envValue(defaults.apiKeyEnv, env);
  if (apiKey === undefined && isOpenAI(baseUrl)) {
    throw new PluginError(
      `missing value ("api_key") or environment variable (${JSON.stringify(defaults.apiKeyEnv)})`,
      [
        `${component} calls ${displayUrl(baseUrl)}, which needs an API key: set ` +
        `${defaults.apiKeyEnv}, give the step an api_key, or point base_url at another server`,
      ],
    );
  }
  return { baseUrl, apiKey, headers: defaults.headers, timeoutMs: defaults.timeoutMs };
}

/**
 * `endpoint` with its answers bounded by the engine's output size limit (bytes; + 64 KiB for the
 * envelope), as step services' answers are.
 */
export function boundAnswers(endpoint: Endpoint, maxOutputBytes: number | undefined): Endpoint {
  if (maxOutputBytes !== undefined) endpoint.maxBodyBytes = maxOutputBytes + ANSWER_ENVELOPE_BYTES;
  return endpoint;
}

/** True for OpenAI's own API host (the only one that needs a key to be set). */
export function isOpenAI(baseUrl: string): boolean {
  try {
    return new URL(baseUrl).hostname === "api.openai.com";
  } catch {
    return false;
  }
}

/** A URL as shown in messages: no user info, query or fragment. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/$/, "")}`;
  } catch {
    return "(invalid URL)";
  }
}

function checkBaseUrl(url: string, what: string): void {
  let ok = false;
  try {
    ok = ["http:", "https:"].includes(new URL(url).protocol);
  } catch {
    // not a URL
  }
  if (!ok) {
    throw new Error(
      `${what} ${JSON.stringify(url)} is not an http(s) URL (e.g. http://127.0.0.1:11434/v1)`,
    );
  }
}

function readEnv(name: string): string | undefined {
  return Deno.env.get(name);
}

function envValue(name: string, env: (name: string) => string | undefined): string | undefined {
  let v: string | undefined;
  try {
    v = env(name);
  } catch (e) {
    rethrowIfPermission(e);
    throw e;
  }
  v = v?.trim();
  return v ? v : undefined;
}

// ---------------------------------------------------------------------------------------------
// Failures

/** Replaces the endpoint's key (and header values) wherever they appear in `text`. */
export function redact(text: string, endpoint: Pick<Endpoint, "apiKey" | "headers">): string {
  let out = text;
  const secrets = [endpoint.apiKey, ...Object.values(endpoint.headers)]
    .filter((s): s is string => s !== undefined && s.length >= 4);
  for (const s of secrets) out = out.split(s).join("[REDACTED]");
  return out;
}

/**
 * The failed result of a call that threw (src/plugins/builtin/model_http.ts). HTTP errors keep
 * their status as `error.code` and say in `data.retryable` whether retrying can help (408, 409,
 * 429, 5xx, or the server's `x-should-retry`), with `data.retryAfterMs` from `Retry-After` /
 * `retry-after-ms`; unreachable servers are `TRANSPORT_FAILED`, the request timeout `TIMEOUT`,
 * an answer that is not a chat completion code 502 (retryable), an answer over the output size
 * limit 413 `OUTPUT_TOO_LARGE` (never retried).
 * @param stepId names the step in an `OUTPUT_TOO_LARGE` message.
 * @throws {MissingPermissionError} when the cause is a missing Deno permission (e.g. net).
 */
export function failureFromError(
  component: string,
  err: unknown,
  endpoint: Endpoint,
  stepId = "?",
): FlowFailed {
  rethrowIfPermission(err);
  const where = displayUrl(endpoint.baseUrl);
  const text = (s: string) => redact(s, endpoint);
  if (err instanceof ModelAbortError) {
    return engineFailure("CANCELLED", `${component}: the request to ${where} was aborted`);
  }
  if (err instanceof ModelTimeoutError) {
    return engineFailure(
      "TIMEOUT",
      `${component}: no answer from ${where} within ${endpoint.timeoutMs} ms`,
      { timeoutMs: endpoint.timeoutMs },
    );
  }
  if (err instanceof ModelAnswerTooLargeError) {
    return outputTooLarge(stepId, {
      sizeBytes: err.sizeBytes,
      limitBytes: Math.max(0, err.limitBytes - ANSWER_ENVELOPE_BYTES),
      atLeast: true,
      via: `${component}: ${where} sent an answer of more than ${err.sizeBytes} bytes, ` +
        `not read to its end`,
    });
  }
  if (err instanceof ModelCutOffError) {
    // the server was reached: say what broke, not "cannot reach"
    return engineFailure("TRANSPORT_FAILED", text(`${component}: ${where}: ${err.message}`));
  }
  if (err instanceof ModelConnectionError) {
    return engineFailure(
      "TRANSPORT_FAILED",
      text(`${component}: cannot reach ${where}: ${err.message}`),
    );
  }
  if (err instanceof ModelApiError) {
    const data: JsonObject = {
      kind: "HTTP_ERROR",
      status: err.status,
      retryable: retryableStatus(err.status, err.headers),
    };
    const retryAfterMs = retryAfter(err.headers);
    if (retryAfterMs !== undefined) data.retryAfterMs = retryAfterMs;
    if (err.body.type !== undefined) data.type = text(err.body.type);
    if (err.body.code !== undefined) {
      data.code = typeof err.body.code === "string" ? text(err.body.code) : err.body.code;
    }
    if (err.body.param !== undefined) data.param = text(err.body.param);
    const requestId = err.headers.get("x-request-id");
    if (requestId) data.request_id = requestId;
    return failed(
      err.status,
      text(`${component}: ${where} answered HTTP ${err.status}: ${err.message}`),
      data,
    );
  }
  if (err instanceof ModelAnswerError) {
    return failed(502, text(`${component}: ${where}: ${err.message}`), {
      kind: "INVALID_ANSWER",
      retryable: true,
    });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return failed(500, text(`${component}: the call to ${where} failed: ${msg}`), {
    kind: "MODEL_CALL_FAILED",
  });
}

/** As the `openai` clients decide: 408, 409, 429, 5xx, unless `x-should-retry` says. */
export function retryableStatus(status: number, headers?: Headers): boolean {
  const says = headers?.get("x-should-retry");
  if (says === "true") return true;
  if (says === "false") return false;
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * The wait a response asks for, ms: `retry-after-ms`, else `Retry-After` in seconds or as an
 * HTTP date; undefined when absent or unreadable.
 */
export function retryAfter(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = headers?.get("retry-after-ms");
  if (ms) {
    const n = parseFloat(ms);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  }
  const ra = headers?.get("retry-after");
  if (!ra) return undefined;
  const s = Number(ra.trim());
  if (ra.trim() !== "" && Number.isFinite(s) && s >= 0) return Math.ceil(s * 1000);
  const at = Date.parse(ra);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}
