/**
 * The service's metrics in the Prometheus text format (version 0.0.4), served at `GET /metrics`.
 * Counters and histograms are plain numbers updated in place: recording costs a map lookup.
 * @module
 */

/** Histogram buckets of durations, in seconds. */
const DURATION_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

class Histogram {
  counts = new Float64Array(DURATION_BUCKETS.length);
  sum = 0;
  count = 0;
  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      if (seconds <= DURATION_BUCKETS[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}

/** Label values → `{a="x",b="y"}`, escaped as the format says. */
function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${
    names.map((n, i) =>
      `${n}="${values[i].replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"')}"`
    ).join(",")
  }}`;
}

/** The HTTP methods counted by name in the metrics (RFC 9110 and PATCH). */
const STANDARD_METHODS = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "OPTIONS",
  "TRACE",
  "CONNECT",
]);

/** The counters, gauges and histograms of one service. */
export class ServiceMetrics {
  readonly startedAt = Date.now();
  runsStarted = 0;
  runsFinished = new Map<string, number>();
  runsRejected = new Map<string, number>();
  runDuration = new Histogram();
  httpRequests = new Map<string, number>();
  httpDuration = new Map<string, Histogram>();
  /** Read at scrape time. */
  gauges: { active: () => number; queued: () => number; batches: () => number } = {
    active: () => 0,
    queued: () => 0,
    batches: () => 0,
  };

  /** A run finished with `status` after `ms` milliseconds of running. */
  runFinished(status: string, ms: number): void {
    this.runsFinished.set(status, (this.runsFinished.get(status) ?? 0) + 1);
    if (ms >= 0) this.runDuration.observe(ms / 1000);
  }

  /** A run was refused: `reason` is `queue_full` or `shutting_down`. */
  runRejected(reason: string): void {
    this.runsRejected.set(reason, (this.runsRejected.get(reason) ?? 0) + 1);
  }

  /**
   * One HTTP request answered. `route` is the route pattern (`/api/v1/runs/:runId`). A method
   * other than the standard ones counts as `OTHER`: a client sending `M1`, `M2`, ... (any token
   * is a valid HTTP method) added series without bound (1,000 such requests: 1.7 MB more
   * /metrics and memory kept for the process's life).
   */
  request(method: string, route: string, status: number, ms: number): void {
    const m = STANDARD_METHODS.has(method) ? method : "OTHER";
    const hk = `${m} ${route}`;
    const key = `${hk} ${status}`;
    this.httpRequests.set(key, (this.httpRequests.get(key) ?? 0) + 1);
    let h = this.httpDuration.get(hk);
    if (!h) this.httpDuration.set(hk, h = new Histogram());
    h.observe(ms / 1000);
  }

  /** The Prometheus text of every metric. */
  text(version: string): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    head("stepflow_info", "gauge", "Stepflow version of this service.");
    out.push(`stepflow_info${labelText(["version"], [version])} 1`);
    head("stepflow_uptime_seconds", "gauge", "Seconds since the service started.");
    out.push(`stepflow_uptime_seconds ${(Date.now() - this.startedAt) / 1000}`);
    head("stepflow_runs_started_total", "counter", "Runs started by this service.");
    out.push(`stepflow_runs_started_total ${this.runsStarted}`);
    head("stepflow_runs_finished_total", "counter", "Runs finished, by final status.");
    for (const status of ["completed", "failed", "cancelled"]) {
      out.push(
        `stepflow_runs_finished_total${labelText(["status"], [status])} ${
          this.runsFinished.get(status) ?? 0
        }`,
      );
    }
    head("stepflow_runs_rejected_total", "counter", "Runs refused (queue full, shutting down).");
    for (const reason of ["queue_full", "shutting_down"]) {
      out.push(
        `stepflow_runs_rejected_total${labelText(["reason"], [reason])} ${
          this.runsRejected.get(reason) ?? 0
        }`,
      );
    }
    head("stepflow_runs_active", "gauge", "Runs running now.");
    out.push(`stepflow_runs_active ${this.gauges.active()}`);
    head("stepflow_runs_queued", "gauge", "Runs waiting for a slot (--max-concurrent-runs).");
    out.push(`stepflow_runs_queued ${this.gauges.queued()}`);
    head("stepflow_batches_active", "gauge", "Batches with runs still to finish.");
    out.push(`stepflow_batches_active ${this.gauges.batches()}`);
    head("stepflow_run_duration_seconds", "histogram", "Time from a run's start to its end.");
    histogramLines(out, "stepflow_run_duration_seconds", [], [], this.runDuration);
    head("stepflow_http_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (const [key, n] of [...this.httpRequests].sort()) {
      const [method, route, status] = key.split(" ");
      out.push(
        `stepflow_http_requests_total${
          labelText(["method", "route", "status"], [method, route, status])
        } ${n}`,
      );
    }
    head(
      "stepflow_http_request_duration_seconds",
      "histogram",
      "Time to answer an HTTP request, by route.",
    );
    for (const [key, h] of [...this.httpDuration].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const [method, route] = key.split(" ");
      histogramLines(out, "stepflow_http_request_duration_seconds", ["method", "route"], [
        method,
        route,
      ], h);
    }
    const mem = Deno.memoryUsage();
    head("process_resident_memory_bytes", "gauge", "Resident memory of the service process.");
    out.push(`process_resident_memory_bytes ${mem.rss}`);
    head("stepflow_heap_used_bytes", "gauge", "JavaScript heap in use.");
    out.push(`stepflow_heap_used_bytes ${mem.heapUsed}`);
    return out.join("\n") + "\n";
  }
}

function histogramLines(
  out: string[],
  name: string,
  names: string[],
  values: string[],
  h: Histogram,
): void {
  let cumulative = 0;
  for (let i = 0; i < DURATION_BUCKETS.length; i++) {
    cumulative += h.counts[i];
    out.push(
      `${name}_bucket${
        labelText([...names, "le"], [...values, String(DURATION_BUCKETS[i])])
      } ${cumulative}`,
    );
  }
  out.push(`${name}_bucket${labelText([...names, "le"], [...values, "+Inf"])} ${h.count}`);
  out.push(`${name}_sum${labelText(names, values)} ${h.sum}`);
  out.push(`${name}_count${labelText(names, values)} ${h.count}`);
}
