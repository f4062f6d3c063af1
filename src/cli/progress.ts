/**
 * The progress line of `stepflow run` and `stepflow test` on stderr: a run observer
 * (`engine.observe`, src/execution/observers.ts) that counts what happens in the run and shows it.
 *
 * - On a terminal (stderr is a TTY): one line redrawn in place at most 10 times a second,
 *   `- 12.3s | steps 3/7 done, 2 running, 1 failed | nested runs 40 done, 8 running | slowest:
 *   review 9.8s`, cut to the terminal's width, cleared before anything else is written to stdout
 *   or stderr (the result, a log line, a test report line) and redrawn after it. Colour (failed
 *   counts in red, the clock dim) unless `NO_COLOR` is set or `TERM=dumb`.
 * - Not on a terminal (CI logs, a pipe): a plain line `progress: 10.0s | steps ...` every
 *   `STEPFLOW_PROGRESS_INTERVAL` (default 5 s), so a run shorter than that prints nothing; a JSON
 *   log record (`target: "progress"`) with `--log-format json`.
 * - `--quiet`: nothing.
 *
 * What is counted: the steps of the top-level run (done = completed; failed; skipped; running),
 * out of the flow's steps (steps the output does not need never run, so a finished run may stop
 * below the total). Nested runs (`map` items, `eval`, `iterate`, `flows/evaluate`), at any depth,
 * are counted as runs — done, running, failed — not as steps. The slowest step is the top-level
 * step running longest (its first attempt's start).
 *
 * Cost: a comparison and an array write or two per event (by step index: no hashing), and a
 * timer; nothing is formatted between redraws, which scan the running steps for the slowest.
 * @module
 */
import type {
  RunFinishedEvent,
  RunObserver,
  RunStartedEvent,
  StepFinishedEvent,
  StepStartedEvent,
} from "../execution/observers.ts";
import { formatLogLine, logFormat, setLogSink } from "../log.ts";
import { setBeforeWrite } from "./output.ts";
import { parseDuration } from "../core/duration.ts";
import { terminalSafe } from "../core/terminal_text.ts";
import { cliSettings } from "./global_flags.ts";

/** `tty`: a line redrawn in place; `plain`: a line every few seconds; `off`: nothing. */
export type ProgressMode = "tty" | "plain" | "off";

/** Options of a {@linkcode RunProgress}; tests give their own clock and writer. */
export interface ProgressOptions {
  mode: ProgressMode;
  /** Where the text goes; default: stderr, written directly. */
  write?: (text: string) => void;
  /** Clock, ms since the epoch (default `Date.now`; event times use the same clock). */
  now?: () => number;
  /** Colour on a terminal (default: unless NO_COLOR or TERM=dumb). */
  color?: boolean;
  /** Terminal width in columns (default: the console's, else 80). */
  columns?: () => number;
  /** ms between redraws on a terminal (default 100). */
  redrawMs?: number;
  /** ms between plain lines (default `STEPFLOW_PROGRESS_INTERVAL`, else 5000). */
  intervalMs?: number;
  /** Plain lines as JSON log records (default: with `--log-format json`). */
  json?: boolean;
  /** Clear the line before other stdout/stderr writes and log lines (default: true). */
  hook?: boolean;
}

/** Help text of `--quiet`. */
export const QUIET_HELP =
  "no progress line on stderr (shown: redrawn on a terminal, else every 5 s)";

/** Default ms between two plain lines (not on a terminal). */
export const DEFAULT_PLAIN_INTERVAL_MS = 5000;
/** ms between two redraws of the terminal line (10 a second). */
export const TTY_REDRAW_MS = 100;

const SPINNER = ["-", "\\", "|", "/"];
const encoder = new TextEncoder();

/**
 * The mode for this process: `off` with `quiet`, `tty` when stderr is a terminal, else `plain`.
 */
export function progressMode(quiet: boolean | undefined): ProgressMode {
  if (quiet) return "off";
  try {
    return Deno.stderr.isTerminal() ? "tty" : "plain";
  } catch {
    return "plain";
  }
}

/**
 * Counts the events of one top-level run at a time (the first to start after
 * {@linkcode RunProgress.begin}) and its nested runs, and shows them. Register it with
 * `engine.observe(progress)`; call `begin()` before the run and `end()` before printing its
 * result.
 */
export class RunProgress implements RunObserver {
  readonly mode: ProgressMode;
  #write: (text: string) => void;
  #now: () => number;
  #color: boolean;
  #columns: () => number;
  #redrawMs: number;
  #intervalMs: number;
  #json: boolean;
  #hook: boolean;

  #label = "";
  #total: number | undefined;
  #root: string | undefined;
  #startedAt = 0;
  /** When each running top-level step started (by step index; -1: not running), and its id. */
  #startAt: number[] = [];
  #ids: string[] = [];
  #running = 0;
  #done = 0;
  #failed = 0;
  #skipped = 0;
  /** Nested runs of the current top-level run, running. */
  #nested = new Set<string>();
  #nestedDone = 0;
  #nestedFailed = 0;

  #timer: ReturnType<typeof setInterval> | undefined;
  #tick = 0;
  /** Text on the terminal now ("" when the line is clear). */
  #shown = "";
  #undo: (() => void) | undefined;

  constructor(options: ProgressOptions) {
    this.mode = options.mode;
    this.#write = options.write ?? writeRawStderr;
    this.#now = options.now ?? Date.now;
    this.#color = options.color ?? colorAllowed();
    this.#columns = options.columns ?? consoleColumns;
    this.#redrawMs = options.redrawMs ?? TTY_REDRAW_MS;
    this.#intervalMs = options.intervalMs ?? plainIntervalMs();
    this.#json = options.json ?? logFormat() === "json";
    this.#hook = options.hook ?? true;
  }

  /**
   * Starts following the next top-level run: `label` starts the line (e.g. `case greet`),
   * `totalSteps` is the number of steps of its flow. Starts the timer; does nothing when off.
   */
  begin(options: { label?: string; totalSteps?: number } = {}): void {
    if (this.mode === "off") return;
    this.#label = options.label ?? "";
    this.#total = options.totalSteps;
    this.#reset();
    this.#startedAt = this.#now();
    // (re)started: a plain line comes one interval after the run began
    if (this.#timer !== undefined) clearInterval(this.#timer);
    const period = this.mode === "tty" ? this.#redrawMs : this.#intervalMs;
    const timer = this.#timer = setInterval(() => this.#onTimer(), period);
    try {
      Deno.unrefTimer(timer); // never keeps the process alive
    } catch {
      // not Deno
    }
    if (this.mode === "tty" && this.#hook) this.#undo ??= hookWrites(() => this.clear());
  }

  /** Stops the timer and clears the line (before the result is printed). Idempotent. */
  end(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.clear();
    this.#undo?.();
    this.#undo = undefined;
  }

  /** Erases the line on the terminal, if shown; the next redraw shows it again. */
  clear(): void {
    if (this.#shown === "") return;
    this.#shown = "";
    this.#write("\r\x1b[K");
  }

  // ---- the observer (called on the engine's hot path: counting only) ----

  runStarted(e: RunStartedEvent): void {
    if (e.parentRunId === undefined) {
      if (this.#root === undefined && this.mode !== "off") {
        this.#root = e.runId;
        this.#startedAt = e.at;
      }
      return;
    }
    if (e.parentRunId === this.#root || this.#nested.has(e.parentRunId)) {
      this.#nested.add(e.runId);
    }
  }

  stepStarted(e: StepStartedEvent): void {
    if (e.runId !== this.#root) return;
    const i = e.stepIndex;
    const at = this.#startAt[i];
    if (at !== undefined && at >= 0) return; // a retry keeps the step's first start
    this.#startAt[i] = e.at;
    this.#ids[i] = e.stepId;
    this.#running++;
  }

  stepFinished(e: StepFinishedEvent): void {
    if (e.runId !== this.#root) return;
    const i = e.stepIndex;
    const at = this.#startAt[i];
    if (at !== undefined && at >= 0) {
      this.#startAt[i] = -1;
      this.#running--;
    }
    if (e.outcome === "success") this.#done++;
    else if (e.outcome === "failed") this.#failed++;
    else this.#skipped++;
  }

  runFinished(e: RunFinishedEvent): void {
    if (!this.#nested.delete(e.runId)) return;
    if (e.status === "completed") this.#nestedDone++;
    else this.#nestedFailed++;
  }

  // ---- what is shown ----

  /** The text of the line at time `now` (without spinner, colour or prefix). */
  text(now = this.#now()): string {
    const [head, rest] = this.#parts(now);
    return head + rest;
  }

  /** The line in two parts: the label and elapsed time, and the counts. */
  #parts(now: number): [string, string] {
    const head = (this.#label ? `${this.#label} | ` : "") + formatMs(now - this.#startedAt);
    const total = this.#total !== undefined ? `/${this.#total}` : "";
    let rest = ` | steps ${this.#done}${total} done, ${this.#running} running`;
    if (this.#failed > 0) rest += `, ${this.#failed} failed`;
    if (this.#skipped > 0) rest += `, ${this.#skipped} skipped`;
    const nestedRunning = this.#nested.size;
    if (nestedRunning + this.#nestedDone + this.#nestedFailed > 0) {
      rest += ` | nested runs ${this.#nestedDone} done, ${nestedRunning} running`;
      if (this.#nestedFailed > 0) rest += `, ${this.#nestedFailed} failed`;
    }
    if (this.#running > 0) {
      // the running step that started first (a scan per redraw, none per event)
      let first = -1;
      let min = Infinity;
      const startAt = this.#startAt;
      for (let i = 0; i < startAt.length; i++) {
        const at = startAt[i];
        if (at !== undefined && at >= 0 && at < min) {
          min = at;
          first = i;
        }
      }
      if (first >= 0) {
        rest += ` | slowest: ${terminalSafe(this.#ids[first])} ${formatMs(now - min)}`;
      }
    }
    return [head, rest];
  }

  #onTimer(): void {
    const now = this.#now();
    if (this.mode === "tty") {
      const [head, rest] = this.#parts(now);
      const spin = SPINNER[this.#tick++ % SPINNER.length];
      const line = cut(`${spin} ${head}${rest}`, Math.max(20, this.#columns() - 1));
      if (line === this.#shown) return;
      this.#shown = line;
      this.#write(`\r${this.#color ? paint(line, spin.length + 1 + head.length) : line}\x1b[K`);
      return;
    }
    const text = this.text(now);
    this.#write(
      (this.#json ? formatLogLine("info", "progress", text) : `progress: ${text}`) + "\n",
    );
  }

  #reset(): void {
    this.#root = undefined;
    this.#startAt = new Array(this.#total ?? 0).fill(-1);
    this.#ids = new Array(this.#total ?? 0);
    this.#running = 0;
    this.#nested.clear();
    this.#done = this.#failed = this.#skipped = 0;
    this.#nestedDone = this.#nestedFailed = 0;
    this.#tick = 0;
  }
}

/** `0.8s`, `12.3s`, `2m05s`, `1h02m` (cut, not rounded). */
export function formatMs(ms: number): string {
  const t = Math.max(0, ms);
  if (t < 60_000) return `${(Math.floor(t / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(t / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

/** `text` cut to `width` characters (code points), with `…` when cut. */
function cut(text: string, width: number): string {
  const chars = Array.from(text);
  return chars.length <= width ? text : chars.slice(0, width - 1).join("") + "…";
}

/** `line` with its first `headLength` characters (spinner, label, clock) dim, failed counts red. */
function paint(line: string, headLength: number): string {
  const chars = Array.from(line);
  const head = chars.slice(0, headLength).join("");
  const rest = chars.slice(headLength).join("").replace(/(\d+ failed)/g, "\x1b[31m$1\x1b[39m");
  return `\x1b[2m${head}\x1b[22m${rest}`;
}

/**
 * Runs `clear` before anything else is written to stdout or stderr: the CLI's writes
 * (src/cli/output.ts) and log lines (unless they go to `--log-file`). Returns the function that
 * removes the hook.
 */
export function hookWrites(clear: () => void): () => void {
  const prevBefore = setBeforeWrite(() => {
    clear();
    prevBefore?.();
  });
  let prevSink: ((line: string) => void) | undefined;
  if (cliSettings.logFile === undefined) {
    prevSink = setLogSink((line) => {
      clear();
      prevSink!(line);
    });
  }
  return () => {
    setBeforeWrite(prevBefore);
    if (prevSink) setLogSink(prevSink);
  };
}

/** Writes to stderr directly (not through the hook), all of it; a closed stderr is ignored. */
export function writeRawStderr(text: string): void {
  try {
    const bytes = encoder.encode(text);
    let off = 0;
    while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
  } catch {
    // stderr closed: nothing to show
  }
}

function consoleColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/** Colour unless NO_COLOR (Deno reads it without a permission) or TERM=dumb (when readable). */
function colorAllowed(): boolean {
  if (Deno.noColor) return false;
  return readEnv("TERM") !== "dumb";
}

/** `STEPFLOW_PROGRESS_INTERVAL` (a duration: `30s`, `500ms`, or ms), else 5000. */
export function plainIntervalMs(): number {
  const v = readEnv("STEPFLOW_PROGRESS_INTERVAL")?.trim();
  if (!v) return DEFAULT_PLAIN_INTERVAL_MS;
  try {
    const ms = parseDuration(/^\d+$/.test(v) ? Number(v) : v, {
      what: "STEPFLOW_PROGRESS_INTERVAL",
    });
    return ms > 0 ? ms : DEFAULT_PLAIN_INTERVAL_MS;
  } catch {
    return DEFAULT_PLAIN_INTERVAL_MS;
  }
}

/** A variable's value when the env permission for it is granted; never prompts. */
function readEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
