/**
 * The engine's error taxonomy. Every error keeps its `cause`; none carries a JS stack into
 * user-facing output.
 *
 * - {@linkcode FlowLoadError}: a flow/config file could not be read or parsed (with position).
 * - {@linkcode ValidationError}: a flow or config has error-level diagnostics.
 * - {@linkcode ExecutionError}: a run aborted (stepflow 0.8: becomes a FlowResult `failed` with
 *   code 500 and `data.stack`).
 * - {@linkcode PluginError}: a plugin could not execute a component (thrown by plugins; the
 *   executor wraps it in an ExecutionError for the step).
 * - {@linkcode ProtocolError}: a JSON-RPC error (with its code) from a peer.
 * - {@linkcode TransportError}: a worker process or HTTP endpoint failed (spawn, crash, closed pipe,
 *   connection refused).
 * - {@linkcode OutputLimitError}: a worker's answer is over the output size or depth limit.
 * - {@linkcode UsageError}: bad CLI arguments or API options.
 * - {@linkcode PluginStartError}: plugins of an engine could not start (each with its cause).
 *
 * {@linkcode executionError} builds an ExecutionError with 0.8's error stack from its parts.
 *
 * @module
 */

/** A source position, 1-based line and column. */
export interface SourcePosition {
  file?: string;
  line: number;
  col: number;
}

/** Formats a position as `file:line:col` (or `line:col` without a file). */
export function formatPosition(pos: SourcePosition): string {
  return `${pos.file ? pos.file + ":" : ""}${pos.line}:${pos.col}`;
}

/** One frame of an 0.8-style error stack (`FlowError.data.stack[i]`). */
export interface StackFrame {
  error: string;
  attachments?: string[];
}

/** A file could not be read or parsed. `position` says where, when known. */
export class FlowLoadError extends Error {
  override name = "FlowLoadError";
  constructor(
    message: string,
    readonly position?: SourcePosition,
    options?: ErrorOptions,
  ) {
    super(position ? `${formatPosition(position)}: ${message}` : message, options);
  }
}

/** A flow or config failed validation. `diagnostics` holds what was found. */
export class ValidationError extends Error {
  override name = "ValidationError";
  constructor(message: string, readonly diagnostics: unknown[] = [], options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A plugin could not execute a component (stepflow 0.8: a plugin error aborts the run).
 * `attachments` are shown in the FlowError stack, most recent first.
 */
export class PluginError extends Error {
  override name = "PluginError";
  /** True when the plugin already logged this failure as a warning (the CLI then says less). */
  readonly reported: boolean;
  constructor(
    message: string,
    readonly attachments: string[] = [],
    options?: ErrorOptions & { reported?: boolean },
  ) {
    super(message, options);
    this.reported = options?.reported ?? false;
  }
}

/**
 * A run aborted. `frames` is the 0.8 error stack (top frame first); `code` the FlowError code
 * (500 for execution errors, 400 for bad overrides). `stepId` names the step when known.
 */
export class ExecutionError extends Error {
  override name = "ExecutionError";
  constructor(
    message: string,
    readonly frames: StackFrame[] = [{ error: message }],
    readonly code = 500,
    readonly stepId?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The parts of an {@linkcode ExecutionError}; see {@linkcode executionError}. */
export interface ExecutionErrorParts {
  /** Lines attached to the top frame (stepflow 0.8 attachments), e.g. `Step: s`. */
  attachments?: string[];
  /**
   * The text of the frame below the top one (default: the cause, described; `null`: no second
   * frame, the cause is kept only as `cause`).
   */
  detail?: string | null;
  /** What went wrong underneath (kept as `cause`; described in the second frame). */
  cause?: unknown;
  /** The step the error belongs to. */
  stepId?: string;
  /** The FlowError code. @default 500 */
  code?: number;
}

/**
 * An {@linkcode ExecutionError} whose message and top frame are `top` (with `attachments`),
 * followed by a frame for `detail` (or the described `cause`) when there is one: stepflow 0.8's
 * error stack, e.g. `step "s" failed` / `Component execution failed ...`.
 */
export function executionError(top: string, parts: ExecutionErrorParts = {}): ExecutionError {
  const first: StackFrame = parts.attachments && parts.attachments.length > 0
    ? { error: top, attachments: parts.attachments }
    : { error: top };
  const frames: StackFrame[] = [first];
  const detail = parts.detail !== undefined
    ? parts.detail
    : parts.cause !== undefined
    ? describeError(parts.cause)
    : null;
  if (detail !== null) frames.push({ error: detail });
  return new ExecutionError(
    top,
    frames,
    parts.code ?? 500,
    parts.stepId,
    parts.cause !== undefined ? { cause: parts.cause } : undefined,
  );
}

/** One plugin that could not start, and why. */
export interface PluginStartFailure {
  /** The plugin's config name (`plugins.<name>`). */
  plugin: string;
  cause: unknown;
}

/**
 * Plugins of an engine could not start (`Engine.create`): each failure names its plugin and
 * keeps its cause, so a caller can point at the plugin's place in the config without parsing the
 * message. Message: `Failed to start plugins: plugin 'a': <cause>; plugin 'b': <cause>`.
 */
export class PluginStartError extends Error {
  override name = "PluginStartError";
  constructor(readonly failures: PluginStartFailure[]) {
    super(
      `Failed to start plugins: ${
        failures.map((f) => `plugin '${f.plugin}': ${describeError(f.cause)}`).join("; ")
      }`,
      { cause: failures[0]?.cause },
    );
  }
}

/** A JSON-RPC error object received from, or sent to, a peer. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A transport failure: a process that could not start or died, a closed pipe, a refused connection. */
export class TransportError extends Error {
  override name = "TransportError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * An answer from a step service that is over the engine's limits: larger than the output size
 * limit (`limitBytes`; `sizeBytes` is how much was seen, at least) or nested more than the
 * depth limit (`limitDepth`). It was not read (or not kept); the step fails with code 413
 * `OUTPUT_TOO_LARGE`, which is never retried: the same component would answer the same way.
 * `message` says what the transport saw, naming the step service.
 */
export class OutputLimitError extends Error {
  override name = "OutputLimitError";
  constructor(
    message: string,
    readonly limit: { limitBytes: number; sizeBytes: number } | { limitDepth: number },
  ) {
    super(message);
  }
}

/**
 * A run cannot be resumed (`engine.resume`, `stepflow resume`, `POST /runs/{id}/resume`): it is
 * unknown, completed, or being executed by another live engine. `reason` says which.
 */
export class RunNotResumableError extends Error {
  override name = "RunNotResumableError";
  constructor(
    message: string,
    readonly runId: string,
    readonly reason: "unknown" | "completed" | "owned" | "nested",
  ) {
    super(message);
  }
}

/** Bad command-line usage or API options. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A short, stack-free description of any thrown value, with its causes. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    let msg = err.message;
    let c: unknown = err.cause;
    let depth = 0;
    while (c instanceof Error && depth++ < 5) {
      if (!msg.includes(c.message)) msg += `: ${c.message}`;
      c = c.cause;
    }
    return msg;
  }
  // a thrown plain object reads as its JSON, not "[object Object]"; never throws itself
  if (typeof err === "object" && err !== null) {
    try {
      const text = JSON.stringify(err);
      if (text !== undefined && text !== "{}") {
        return text.length > 500 ? text.slice(0, 500) + "…" : text;
      }
    } catch {
      // a cycle or a BigInt: fall through
    }
  }
  try {
    return String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}
