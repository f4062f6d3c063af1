/**
 * What `/openai` and `/chat` share (issue 16): where the OpenAI-compatible endpoint is, the API
 * key, one lazily loaded `openai` npm client per endpoint, and how a failed HTTP call becomes a
 * failed FlowResult the step's `onError` (and retry policy) can handle.
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
 * have every occurrence of the key replaced by `***`, base URLs are shown without user info or
 * query, and the client's own logger is off below `--other-log-level debug` (it redacts
 * `Authorization` itself).
 *
 * The npm `openai` module (about 150 ms to import here) is loaded on the first call only, so
 * runs that use no model never pay for it.
 * @module
 */
import type OpenAI from "openai";
import type { OpenAISettings } from "../../config/model.ts";
import { substituteEnv } from "../../config/env.ts";
import { parseDuration } from "../../execution/duration.ts";
import { engineFailure } from "../../execution/error_codes.ts";
import { failed, type FlowFailed } from "../../flow/flow_result.ts";
import type { JsonObject, JsonValue } from "../../json/exact_json.ts";
import { PluginError } from "../../errors.ts";
import { rethrowIfPermission } from "../../permissions/hint.ts";
import { libraryLogLevel, logger } from "../../log.ts";
import { invalidInput } from "./_input.ts";

/** OpenAI's API, the default base URL (as the `openai` client). */
export const DEFAULT_BASE_URL = "https://api.openai.com/v1";
/** The variable holding the key, unless `openai.apiKeyEnv` names another (stepflow 0.8). */
export const DEFAULT_API_KEY_ENV = "OPENAI_API_KEY";
/** The variable read for the base URL when neither the step nor the config gives one. */
export const BASE_URL_ENV = "OPENAI_BASE_URL";
/** Default limit on one HTTP request, ms (the `openai` client's own default: 10 minutes). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 600_000;

const log = logger("openai");

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
export interface Endpoint {
  baseUrl: string;
  /** Undefined: no `Authorization` header (local servers). */
  apiKey?: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

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
// The client

type OpenAIModule = typeof import("openai");
let loading: Promise<OpenAIModule> | undefined;

/** The `openai` module, imported on first use (shared by every plugin instance). */
export function openaiModule(): Promise<OpenAIModule> {
  return loading ??= import("openai").catch((e) => {
    loading = undefined;
    throw e;
  });
}

/** Clients by endpoint (one per base URL + key + headers + timeout); a handful at most. */
export class ClientCache {
  #clients = new Map<string, Promise<OpenAI>>();

  /** The client for `endpoint` (created on first use; the `openai` module is loaded then). */
  get(endpoint: Endpoint): Promise<OpenAI> {
    const key = JSON.stringify([
      endpoint.baseUrl,
      endpoint.apiKey ?? null,
      endpoint.headers,
      endpoint.timeoutMs,
    ]);
    let client = this.#clients.get(key);
    if (!client) {
      if (this.#clients.size >= 32) this.#clients.clear();
      client = openaiModule().then((m) => newClient(m, endpoint));
      client.catch(() => this.#clients.delete(key));
      this.#clients.set(key, client);
    }
    return client;
  }
}

function newClient(m: OpenAIModule, endpoint: Endpoint): OpenAI {
  const level = libraryLogLevel();
  const headers: Record<string, string | null> = { ...endpoint.headers };
  // Without a key the client still wants one; the header it would make is removed instead.
  if (endpoint.apiKey === undefined) headers.Authorization = null;
  return new m.default({
    apiKey: endpoint.apiKey ?? "no-key",
    baseURL: endpoint.baseUrl,
    // Everything the client would otherwise read from the environment is given here, so the
    // only variables it may still look at are OPENAI_CUSTOM_HEADERS and nothing else.
    adminAPIKey: null,
    organization: null,
    project: null,
    webhookSecret: null,
    defaultHeaders: headers,
    timeout: endpoint.timeoutMs,
    maxRetries: 0, // retries belong to the step's retry policy (onError: {action: retry})
    logLevel: level === "trace" ? "debug" : level,
    logger: {
      error: (msg: string, ...rest: unknown[]) => log.error(libraryLine(msg, rest, endpoint)),
      warn: (msg: string, ...rest: unknown[]) => log.warn(libraryLine(msg, rest, endpoint)),
      info: (msg: string, ...rest: unknown[]) => log.info(libraryLine(msg, rest, endpoint)),
      debug: (msg: string, ...rest: unknown[]) => log.debug(libraryLine(msg, rest, endpoint)),
    },
  });
}

function libraryLine(msg: string, rest: unknown[], endpoint: Endpoint): string {
  let text = msg;
  for (const r of rest) {
    try {
      text += " " + (typeof r === "string" ? r : JSON.stringify(r));
    } catch {
      text += " " + String(r);
    }
  }
  return redact(text, endpoint);
}

// ---------------------------------------------------------------------------------------------
// Failures

/** Replaces the endpoint's key (and header values) wherever they appear in `text`. */
export function redact(text: string, endpoint: Pick<Endpoint, "apiKey" | "headers">): string {
  let out = text;
  const secrets = [endpoint.apiKey, ...Object.values(endpoint.headers)]
    .filter((s): s is string => s !== undefined && s.length >= 4);
  for (const s of secrets) out = out.split(s).join("***");
  return out;
}

/**
 * The failed result of a call that threw. HTTP errors keep their status as `error.code` and say
 * in `data.retryable` whether retrying can help (408, 409, 429, 5xx, or the server's
 * `x-should-retry`), with `data.retryAfterMs` from `Retry-After` / `retry-after-ms`;
 * unreachable servers are `TRANSPORT_FAILED`, the request timeout is `TIMEOUT`.
 * @throws {MissingPermissionError} when the cause is a missing Deno permission (e.g. net).
 */
export function failureFromError(
  component: string,
  err: unknown,
  endpoint: Endpoint,
  m: OpenAIModule | undefined,
  signal: AbortSignal,
): FlowFailed {
  rethrowIfPermission(err);
  const where = displayUrl(endpoint.baseUrl);
  const text = (s: string) => redact(s, endpoint);
  if (m && err instanceof m.APIUserAbortError || signal.aborted) {
    return engineFailure("CANCELLED", `${component}: the request to ${where} was aborted`);
  }
  if (m && err instanceof m.APIConnectionTimeoutError) {
    return engineFailure(
      "TIMEOUT",
      `${component}: no answer from ${where} within ${endpoint.timeoutMs} ms`,
      { timeoutMs: endpoint.timeoutMs },
    );
  }
  if (m && err instanceof m.APIConnectionError) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return engineFailure("TRANSPORT_FAILED", text(`${component}: cannot reach ${where}${cause}`));
  }
  if (m && err instanceof m.APIError && typeof err.status === "number") {
    const headers = err.headers as Headers | undefined;
    const data: JsonObject = {
      kind: "HTTP_ERROR",
      status: err.status,
      retryable: retryableStatus(err.status, headers),
    };
    const retryAfterMs = retryAfter(headers);
    if (retryAfterMs !== undefined) data.retryAfterMs = retryAfterMs;
    if (typeof err.type === "string") data.type = text(err.type);
    if (typeof err.code === "string") data.code = text(err.code);
    if (typeof err.param === "string") data.param = text(err.param);
    const requestId = headers?.get("x-request-id");
    if (requestId) data.request_id = requestId;
    const detail = apiMessage(err.error) ?? err.message.replace(/^\d+\s*/, "");
    return failed(
      err.status,
      text(`${component}: ${where} answered HTTP ${err.status}: ${detail}`),
      data,
    );
  }
  const msg = err instanceof Error ? err.message : String(err);
  return failed(500, text(`${component}: the call to ${where} failed: ${msg}`), {
    kind: "MODEL_CALL_FAILED",
  });
}

function apiMessage(error: unknown): string | undefined {
  if (error !== null && typeof error === "object") {
    const m = (error as Record<string, unknown>).message;
    if (typeof m === "string" && m !== "") return m;
  }
  return undefined;
}

/** As the `openai` client decides (its own retries are off): 408, 409, 429, 5xx. */
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

/** Messages as they go on the wire: the step's JSON (raw numbers stay exact). */
export type WireMessage = JsonValue;
