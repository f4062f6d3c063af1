// @ts-check
/// <reference lib="dom" />
// The run page's small views: breadcrumbs, the colour legend, a result (output, error or skip
// reason) and one journal entry.
import { badge, duration, h, shortId, STATUS_TEXT, time } from "./dom.js";
import { jsonView } from "./json.js";

/** @param {string} status */
export const said = (status) =>
  STATUS_TEXT[/** @type {keyof typeof STATUS_TEXT} */ (status)] ?? status;

/**
 * @param {unknown} e
 * @returns {string}
 */
export const messageOf = (e) => (e instanceof Error ? e.message : String(e));

/** @param {string} runId */
export function crumbs(runId) {
  return h(
    "nav",
    { class: "crumbs", "aria-label": "Breadcrumb" },
    h("a", { href: "/ui", text: "Runs" }),
    h("span", { "aria-hidden": "true", text: " / " }),
    h(
      "span",
      { "aria-current": "page" },
      "Run ",
      h("code", { text: runId.replaceAll("-", "").slice(0, 8) }),
    ),
  );
}

export function legend() {
  return h(
    "ul",
    { class: "legend", "aria-label": "Step colours" },
    ["running", "completed", "failed", "skipped", "blocked", "not-run"].map((st) =>
      h("li", {}, badge(st))
    ),
  );
}

/**
 * The result of a run or step: the output, the error, or why it was skipped.
 * @param {any} result a FlowResult or null
 * @param {string} [status] the run's status (for "no result yet")
 */
export function resultView(result, status) {
  if (!result) {
    return h("p", {
      class: "muted",
      text: status ? `No result yet: the run is ${said(status).toLowerCase()}.` : "No result yet.",
    });
  }
  if (result.outcome === "success") return jsonView(result.result, "Output");
  if (result.outcome === "skipped") {
    return h("p", {
      class: "skipped-note",
      text: `Skipped${result.reason ? `: ${result.reason}` : ""}`,
    });
  }
  const err = result.error ?? {};
  return h(
    "div",
    { class: "error-box" },
    h("p", {}, h("strong", { text: `Error ${err.code ?? ""}` }), " ", err.message ?? ""),
    err.data !== undefined ? jsonView(err.data, "Error data") : null,
  );
}

/**
 * One journal entry.
 * @param {any} d
 * @param {string} runId
 */
export function eventItem(d, runId) {
  const nested = d.runId && d.runId !== runId;
  const extra = [];
  if (d.stepId !== undefined) extra.push(h("code", { text: d.stepId }));
  if (typeof d.attempt === "number" && d.attempt > 1) extra.push(` attempt ${d.attempt}`);
  if (d.data?.durationMs !== undefined) extra.push(` ${duration(Number(d.data.durationMs))}`);
  if (d.data?.error?.message) {
    extra.push(h("span", { class: "err", text: ` ${d.data.error.message}` }));
  }
  if (d.data?.name && d.type === "signal_received") extra.push(h("code", { text: d.data.name }));
  if (d.data?.status && d.type === "run_completed") extra.push(` ${d.data.status}`);
  return h(
    "li",
    {},
    time(d.at),
    " ",
    h("span", { class: "ev-type", text: String(d.type ?? "event").replaceAll("_", " ") }),
    nested
      ? h(
        "span",
        { class: "muted" },
        " in nested run ",
        h("a", { href: `/ui/runs/${d.runId}` }, shortId(d.runId)),
      )
      : null,
    " ",
    extra,
  );
}
