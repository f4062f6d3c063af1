/**
 * What `run-batch` and `submit-batch` share: reading JSONL inputs, writing JSONL outputs
 * (`{index, status, result}` per input, in input order), and a progress line on stderr.
 * @module
 */
import type { Command } from "commander";
import { type JsonValue, parseJson, stringifyJson } from "../json/exact_json.ts";
import { UsageError } from "../errors.ts";
import { decodeUtf8 } from "../core/utf8.ts";
import { readFileBounded } from "../core/read_bounded.ts";
import { stdoutReaderGone, writeStderr, writeStdout } from "./output.ts";
import {
  DEFAULT_PLAIN_INTERVAL_MS,
  hookWrites,
  plainIntervalMs,
  type ProgressMode,
  progressMode,
  QUIET_HELP,
  TTY_REDRAW_MS,
  writeRawStderr,
} from "./progress.ts";

/**
 * A batch command with the flags `run-batch` and `submit-batch` share: `--flow`, `--inputs`,
 * `--max-concurrent` (described by `concurrency`), `--output`.
 */
export function batchCommand(
  program: Command,
  name: string,
  description: string,
  concurrency: string,
): Command {
  return program.command(name)
    .description(description)
    .requiredOption("--flow <file>", "the flow file")
    .requiredOption("--inputs <file>", "inputs, one JSON value per line (JSONL)")
    .option("--max-concurrent <n>", concurrency)
    .option("--output <file>", "write {index, status, result} lines here (default: stdout)")
    .option("-q, --quiet", QUIET_HELP);
}

/**
 * `--max-concurrent`: a positive integer, or undefined when not given.
 * @throws {UsageError} for anything else.
 */
export function parseMaxConcurrent(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < 1) {
    throw new UsageError(`--max-concurrent must be a positive integer, got '${text}'`);
  }
  return n;
}

/**
 * The inputs of a JSONL file: one JSON value per line, numbers kept exactly. Blank lines are
 * skipped (0.8 failed on a blank line in the middle).
 * @throws {UsageError} naming `file:line` for a line that is not JSON, or when there is no input.
 */
export async function readJsonlInputs(path: string): Promise<JsonValue[]> {
  let bytes: Uint8Array;
  try {
    bytes = await readFileBounded(path);
  } catch (e) {
    throw new UsageError(
      `cannot read --inputs '${path}': ${
        e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message
      }`,
    );
  }
  let text: string;
  try {
    // not read with U+FFFD in place of bytes that are not UTF-8: the inputs would change
    text = decodeUtf8(bytes, path);
  } catch (e) {
    // the message starts with file:line:col
    throw new UsageError(`--inputs: ${(e as Error).message}`);
  }
  const inputs: JsonValue[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    try {
      inputs.push(parseJson(line));
    } catch (e) {
      throw new UsageError(
        `${path}:${i + 1}: not a JSON value (${
          (e as Error).message
        }); --inputs takes one JSON value per line (JSONL)`,
      );
    }
  }
  if (inputs.length === 0) throw new UsageError(`--inputs '${path}' has no input lines`);
  return inputs;
}

/** One output line. `status` is the run's status (`completed`, `failed`, `cancelled`). */
export interface BatchOutputLine {
  index: number;
  status: string;
  result: JsonValue | null;
}

/**
 * Writes output lines in input order as soon as every earlier one is known, to `--output` or
 * stdout. A write that fails (disk full, a closed file) is not thrown: the writer keeps the first
 * error ({@linkcode OrderedJsonlWriter.error}), writes nothing more and aborts
 * {@linkcode OrderedJsonlWriter.failed}, so the command stops its runs and says which lines were
 * lost instead of dying with a bare OS error.
 */
export class OrderedJsonlWriter {
  #pending = new Map<number, BatchOutputLine>();
  #next = 0;
  #file?: Deno.FsFile;
  #name: string;
  #enc = new TextEncoder();
  #failed = new AbortController();
  #error: string | undefined;
  #written = 0;
  #readerGone = false;

  private constructor(name: string, file?: Deno.FsFile) {
    this.#name = name;
    this.#file = file;
  }

  /** Opens `output` (truncated) or stdout. */
  static async open(output?: string): Promise<OrderedJsonlWriter> {
    if (output === undefined) return new OrderedJsonlWriter("stdout");
    try {
      return new OrderedJsonlWriter(
        `--output '${output}'`,
        await Deno.open(output, { write: true, create: true, truncate: true }),
      );
    } catch (e) {
      throw new UsageError(`cannot write --output '${output}': ${(e as Error).message}`);
    }
  }

  /** Aborted when a write failed. */
  get failed(): AbortSignal {
    return this.#failed.signal;
  }

  /**
   * The first write failure, e.g. `cannot write to --output 'out.jsonl' after 3 lines: No space
   * left on device (os error 28)`; undefined while every write worked.
   */
  get error(): string | undefined {
    return this.#error;
  }

  /** True when the failed write found stdout's reader gone (a closed pipe). */
  get readerGone(): boolean {
    return this.#readerGone;
  }

  /** Lines written so far. */
  get written(): number {
    return this.#written;
  }

  /** Adds the line of input `line.index` (nothing is written once a write failed). */
  add(line: BatchOutputLine): void {
    this.#pending.set(line.index, line);
    if (this.#error !== undefined) return;
    let out = "";
    let n = 0;
    while (this.#pending.has(this.#next)) {
      out += stringifyJson(this.#pending.get(this.#next)) + "\n";
      this.#pending.delete(this.#next++);
      n++;
    }
    if (out === "") return;
    try {
      if (this.#file) {
        const bytes = this.#enc.encode(out);
        let off = 0;
        while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
      } else {
        writeStdout(out);
        if (stdoutReaderGone()) {
          // the rest of a batch whose results go nowhere is not run (it ran on to its end, for
          // minutes, after `| head -1` had what it wanted)
          this.#readerGone = true;
          throw new Error("its reader went away (a closed pipe)");
        }
      }
      this.#written += n;
    } catch (e) {
      this.#error = `cannot write to ${this.#name} after ${this.#written} line(s): ${
        (e as Error).message
      }`;
      this.#failed.abort(new Error(this.#error));
    }
  }

  close(): void {
    try {
      this.#file?.close();
    } catch {
      // already closed
    }
  }
}

/**
 * A progress line on stderr: redrawn in place on a terminal (erased before anything else is
 * written to stdout or stderr, and drawn again at the next update), else printed every few
 * seconds; nothing with `quiet` (`--quiet`).
 */
export class ProgressLine {
  #mode: ProgressMode;
  #last = 0;
  #interval = DEFAULT_PLAIN_INTERVAL_MS;
  #shown = "";
  #drawn = false;
  #undo: (() => void) | undefined;

  constructor(readonly total: number, readonly label = "runs", quiet = false) {
    this.#mode = progressMode(quiet);
    if (this.#mode === "plain") {
      // as `stepflow run`'s line: the first plain line one interval after the start, so a short
      // batch prints only its final counts
      this.#interval = plainIntervalMs();
      this.#last = Date.now();
    }
  }

  /**
   * Shows the counts (throttled: at most 10 redraws a second; when not a TTY a line at most every
   * `STEPFLOW_PROGRESS_INTERVAL`, default 5 s, the first one that long after the start). `force`
   * shows them at once (the final counts).
   */
  update(
    c: { completed: number; failed: number; running: number; cancelled?: number },
    force = false,
  ): void {
    if (this.#mode === "off") return;
    const tty = this.#mode === "tty";
    const done = c.completed + c.failed + (c.cancelled ?? 0);
    const width = 30;
    const filled = this.total === 0 ? width : Math.floor((done / this.total) * width);
    const text = `[${"=".repeat(filled)}${filled < width ? ">" : ""}${
      " ".repeat(Math.max(0, width - filled - 1))
    }] ${done}/${this.total} ${this.label}: ${c.completed} completed, ${c.failed} failed, ${c.running} running${
      c.cancelled ? `, ${c.cancelled} cancelled` : ""
    }`;
    const now = Date.now();
    if (text === this.#shown && (this.#drawn || !tty) && !force) return;
    if (!force && now - this.#last < (tty ? TTY_REDRAW_MS : this.#interval)) return;
    this.#last = now;
    this.#shown = text;
    if (!tty) {
      writeStderr(`progress: ${text}\n`);
      return;
    }
    this.#drawn = true;
    // stdout lines (results) and log lines do not end up behind the line
    this.#undo ??= hookWrites(() => {
      if (!this.#drawn) return;
      this.#drawn = false;
      writeRawStderr("\r\x1b[K");
    });
    writeRawStderr(`\r${text}\x1b[K`);
  }

  /** Ends the line (a newline on a terminal, the last counts staying visible). */
  end(): void {
    this.#undo?.();
    this.#undo = undefined;
    if (this.#drawn) writeRawStderr("\n");
    this.#drawn = false;
  }
}
