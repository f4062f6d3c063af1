/**
 * `stepflow runs list|show|prune`: the run history of a persistent state store (issue 12).
 *
 * The store is the one `--store` names (`sqlite:runs.db`, or a file path), else the config's
 * `stateStore` (`--config`, or discovered in the current directory).
 *
 * - `runs list [--status S] [--flow NAME] [--since 1h|2024-05-01T00:00:00Z] [--limit N]
 *   [--all] [--format table|json]`: runs newest first (top-level runs unless `--all`).
 * - `runs show RUN_ID [--format table|json]`: the run, and each step with status, attempts,
 *   duration and result or error; nested runs.
 * - `runs prune --older-than 30d`: deletes finished top-level runs that finished before then, with
 *   their step results, statuses, events, signals and nested runs.
 *
 * Exit codes: 0; 1 when the run is unknown or the store cannot be read; 2 for bad usage.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./output.ts";
import { EXIT_FAILED, EXIT_OK } from "./exit_codes.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { guarded, openStoreFromFlags, type StoreFlags } from "./store_option.ts";
import { UsageError } from "../errors.ts";
import { type JsonValue, stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import {
  normalizeInstant,
  RUN_STATUSES,
  type RunRecord,
  type RunStatus,
  type StateStore,
} from "../state/store.ts";

/** Options of `runs list`. */
interface ListFlags extends StoreFlags {
  status?: string;
  flow?: string;
  since?: string;
  limit?: string;
  all?: boolean;
  format?: string;
}

/** Options of `runs show` and `runs prune`. */
interface ShowFlags extends StoreFlags {
  format?: string;
}
interface PruneFlags extends StoreFlags {
  olderThan: string;
}

/** Adds `runs` and its subcommands to `program`. */
export function register(program: Command, setExit: SetExit): void {
  const runs = program.command("runs")
    .description("Run history of a persistent state store: list, show, prune");
  const storeOptions = (c: Command) =>
    c.option(
      "--store <url>",
      "the database: sqlite:FILE, a file path or postgres://... (default: the config's)",
    )
      .option("--config <file>", "config whose stateStore to read (default: discovered in cwd)");
  storeOptions(
    runs.command("list")
      .description("List runs, newest first")
      .option("--status <status>", `only runs with this status (${RUN_STATUSES.join(", ")})`)
      .option("--flow <name>", "only runs of the flow with this name")
      .option("--since <when>", "only runs created since: a duration ago (1h, 7d) or RFC 3339")
      .option("--limit <n>", "most runs listed", "50")
      .option("--all", "include nested runs (eval, map, iterate items)")
      .option("--format <format>", "table or json", "table"),
  ).action(async (flags: ListFlags) => setExit(await guarded(() => listCommand(flags))));
  storeOptions(
    runs.command("show")
      .description("Show a run: its steps with status, attempts, duration and result")
      .argument("<run-id>", "the run id")
      .option("--format <format>", "table or json", "table"),
  ).action(async (runId: string, flags: ShowFlags) =>
    setExit(await guarded(() => showCommand(runId, flags)))
  );
  storeOptions(
    runs.command("prune")
      .description("Delete finished runs older than a duration, with their nested runs")
      .requiredOption("--older-than <duration>", "e.g. 30d, 12h, 2w"),
  ).action(async (flags: PruneFlags) => setExit(await guarded(() => pruneCommand(flags))));
}

async function withStore<T>(flags: StoreFlags, fn: (s: StateStore) => Promise<T>): Promise<T> {
  const store = await openStoreFromFlags(flags);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function checkFormat(format: string | undefined): "table" | "json" {
  if (format === undefined || format === "table" || format === "json") return format ?? "table";
  throw new UsageError(`--format must be table or json, got '${format}'`);
}

/** `runs list`. */
export async function listCommand(flags: ListFlags): Promise<number> {
  const format = checkFormat(flags.format);
  if (flags.status !== undefined && !RUN_STATUSES.includes(flags.status as RunStatus)) {
    throw new UsageError(
      `--status must be one of ${RUN_STATUSES.join(", ")}, got '${flags.status}'`,
    );
  }
  const limit = Number(flags.limit ?? "50");
  if (!/^\d+$/.test(String(flags.limit ?? "50")) || limit < 1) {
    throw new UsageError(`--limit must be a positive integer, got '${flags.limit}'`);
  }
  const since = flags.since === undefined ? undefined : parseSince(flags.since, Date.now());
  const runs = await withStore(flags, (s) =>
    s.listRuns({
      status: flags.status as RunStatus | undefined,
      flowName: flags.flow,
      since,
      limit,
      rootOnly: !flags.all,
    }));
  if (format === "json") {
    writeStdout(stringifyJson(runs.map(summary)) + "\n");
    return EXIT_OK;
  }
  if (runs.length === 0) {
    writeStderr("no runs\n");
    return EXIT_OK;
  }
  const rows = runs.map((r) => [
    r.runId,
    r.status,
    r.flowName ?? r.flowId.slice(0, 12),
    r.createdAt,
    duration(r),
    outcomeText(r.result),
  ]);
  writeStdout(table(["RUN ID", "STATUS", "FLOW", "CREATED", "DURATION", "RESULT"], rows));
  return EXIT_OK;
}

/** `runs show RUN_ID`. */
export async function showCommand(runId: string, flags: ShowFlags): Promise<number> {
  const format = checkFormat(flags.format);
  const found = await withStore(flags, async (s) => {
    const run = await s.getRun(runId);
    if (!run) return undefined;
    const [info, results, nested] = await Promise.all([
      s.getStepInfo(runId),
      s.getStepResults(runId),
      s.listRuns({ parentRunId: runId }),
    ]);
    return { run, info, results, nested };
  });
  if (!found) {
    writeStderr(`error: no run '${runId}' in this store (see 'stepflow runs list')\n`);
    return EXIT_FAILED;
  }
  const { run, info, results, nested } = found;
  const resultByIndex = new Map(results.map((r) => [r.stepIndex, r]));
  const infoByIndex = new Map(info.map((i) => [i.stepIndex, i]));
  const indices = [...new Set([...infoByIndex.keys(), ...resultByIndex.keys()])].sort((a, b) =>
    a - b
  );
  const steps = indices.map((i) => {
    const si = infoByIndex.get(i);
    const r = resultByIndex.get(i);
    const step: Record<string, JsonValue> = {
      stepIndex: i,
      stepId: si?.stepId ?? r?.stepId ?? "",
      component: si?.component ?? "",
      status: si?.status ?? (r ? statusOfResult(r.result) : "running"),
      attempts: si?.attempt ?? 1,
    };
    if (si?.durationMs !== undefined) step.durationMs = si.durationMs;
    if (r) step.result = r.result as unknown as JsonValue;
    return step;
  });
  if (format === "json") {
    writeStdout(
      stringifyJson({ run: run as unknown as JsonValue, steps, nestedRuns: nested.map(summary) }) +
        "\n",
    );
    return EXIT_OK;
  }
  let out = "";
  out += `run:       ${run.runId}\n`;
  out += `flow:      ${run.flowName ? `${run.flowName} ` : ""}(${run.flowId})\n`;
  out += `status:    ${run.status}\n`;
  out += `created:   ${run.createdAt}\n`;
  if (run.completedAt) out += `finished:  ${run.completedAt} (${duration(run)})\n`;
  if (run.parentRunId) out += `parent:    ${run.parentRunId}\n`;
  if (run.rootRunId && run.rootRunId !== run.runId && run.rootRunId !== run.parentRunId) {
    out += `root:      ${run.rootRunId}\n`;
  }
  if (run.runKey) out += `key:       ${run.runKey}\n`;
  out += `input:     ${clip(stringifyJson(run.input), 100)}\n`;
  if (run.variables) out += `variables: ${clip(stringifyJson(run.variables), 100)}\n`;
  if (run.result) out += `result:    ${resultText(run.result, 100)}\n`;
  out += "\n";
  if (steps.length === 0) {
    // built-ins and mocks are recorded only when they finish (docs/durability.md): a run
    // interrupted in a /map step has no step row, but has nested runs
    out += "no step recorded yet (steps without side effects, such as built-ins, are recorded " +
      "when they finish)\n";
  } else {
    out += table(
      ["#", "STEP", "COMPONENT", "STATUS", "ATTEMPTS", "DURATION", "RESULT"],
      steps.map((s) => [
        String(s.stepIndex),
        String(s.stepId),
        String(s.component),
        String(s.status),
        String(s.attempts),
        typeof s.durationMs === "number" ? formatMs(s.durationMs) : "",
        s.result ? resultText(s.result as unknown as FlowResult, 60) : s.status === "failed"
          // a step the engine was running when it stopped (marked failed when found dead), or
          // when its run was cancelled (0.8 has no `cancelled` step status)
          ? run.status === "cancelled"
            ? "no result: running when the run was cancelled"
            : "no result: interrupted while running"
          : "",
      ]),
    );
  }
  if (nested.length > 0) {
    out += `\nnested runs: ${nested.length} (stepflow runs show <id>)\n`;
    for (const n of nested.slice(0, 20)) {
      out += `  ${n.runId}  ${n.status}  ${n.flowName ?? ""}\n`;
    }
    if (nested.length > 20) out += `  ... ${nested.length - 20} more\n`;
  }
  writeStdout(out);
  return EXIT_OK;
}

/** `runs prune --older-than D`. */
export async function pruneCommand(flags: PruneFlags): Promise<number> {
  const before = instantAgo(Date.now(), parseAge(flags.olderThan, "--older-than"));
  const n = await withStore(flags, (s) => s.pruneRuns({ before }));
  writeStderr(
    `deleted ${n} run${n === 1 ? "" : "s"} (nested runs included) that finished before ${before}\n`,
  );
  return EXIT_OK;
}

const AGE_UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * A duration such as `30d`, `12h`, `90m`, `2w`, `500ms` in ms.
 * @throws {UsageError} naming `what` for anything else.
 */
export function parseAge(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(text);
  if (!m) {
    throw new UsageError(`${what} must be a duration such as 30d, 12h, 90m or 2w, got '${text}'`);
  }
  return Math.round(Number(m[1]) * AGE_UNITS[m[2]]);
}

/** 0000-01-01T00:00:00.000Z, the earliest instant of an RFC 3339 date (ms since the epoch). */
const EARLIEST_MS = -62_167_219_200_000;

/**
 * The instant `ageMs` before `nowMs`, as RFC 3339; an age reaching before year 0000 gives
 * 0000-01-01 (before: `--older-than 99999999999w` failed with "Invalid time value", exit 1).
 */
export function instantAgo(nowMs: number, ageMs: number): string {
  return new Date(Math.max(nowMs - ageMs, EARLIEST_MS)).toISOString();
}

/** `--since`: a duration ago (`1h`) or an RFC 3339 instant; returns the instant. */
export function parseSince(text: string, nowMs: number): string {
  if (/^\s*\d+(?:\.\d+)?\s*(ms|s|m|h|d|w)\s*$/.test(text)) {
    return instantAgo(nowMs, parseAge(text, "--since"));
  }
  try {
    return normalizeInstant(text);
  } catch {
    throw new UsageError(
      `--since must be a duration ago (1h, 7d) or an RFC 3339 date-time, got '${text}'`,
    );
  }
}

function summary(r: RunRecord): Record<string, JsonValue> {
  const s: Record<string, JsonValue> = {
    runId: r.runId,
    flowId: r.flowId,
    status: r.status,
    createdAt: r.createdAt,
  };
  if (r.flowName !== undefined) s.flowName = r.flowName;
  if (r.completedAt !== undefined) s.completedAt = r.completedAt;
  if (r.parentRunId !== undefined) s.parentRunId = r.parentRunId;
  if (r.rootRunId !== undefined) s.rootRunId = r.rootRunId;
  if (r.result !== undefined) s.outcome = r.result.outcome;
  if (r.result?.outcome === "failed") {
    s.error = { code: r.result.error.code, message: r.result.error.message };
  }
  return s;
}

function statusOfResult(r: FlowResult): string {
  return r.outcome === "success" ? "completed" : r.outcome;
}

function duration(r: RunRecord): string {
  if (!r.completedAt) return "";
  const ms = Date.parse(r.completedAt) - Date.parse(r.createdAt);
  return Number.isNaN(ms) ? "" : formatMs(ms);
}

/** `850ms`, `12.3s`, `4m05s`, `2h03m`. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms * 10) / 10}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function outcomeText(r: FlowResult | undefined): string {
  if (!r) return "";
  return r.outcome === "failed"
    ? `failed ${r.error.code}: ${clip(r.error.message, 50)}`
    : r.outcome;
}

function resultText(r: FlowResult, width: number): string {
  if (r.outcome === "success") return clip(stringifyJson(r.result), width);
  if (r.outcome === "failed") return clip(`error ${r.error.code}: ${r.error.message}`, width);
  return r.reason ? `skipped: ${r.reason}` : "skipped";
}

function clip(text: string, width: number): string {
  const one = text.replace(/\s+/g, " ");
  return one.length > width ? one.slice(0, width - 1) + "…" : one;
}

/** A plain text table: a header row and rows, columns padded to their widest cell. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join("  ").trimEnd() +
    "\n";
  return line(header) + rows.map(line).join("");
}
