// @ts-check
/// <reference lib="dom" />
// The run list (`/ui`): status, flow, started, duration; filters by status and flow name;
// pages of 25, newest first; refreshed every few seconds while visible.
import { api } from "./api.js";
import { announce, badge, between, duration, FINISHED, h, put, shortId, time } from "./dom.js";

const PAGE = 25;
const REFRESH_MS = 3000;
const STATUSES = ["queued", "running", "completed", "failed", "cancelled", "paused"];

/**
 * @typedef {{ status?: string, flow?: string, offset: number, nested: boolean }} Filter
 */

/** @returns {Filter} */
function filterFromUrl() {
  const q = new URLSearchParams(location.search);
  const status = q.get("status") ?? "";
  const offset = Number(q.get("offset") ?? 0);
  return {
    status: STATUSES.includes(status) ? status : undefined,
    flow: q.get("flow") || undefined,
    offset: Number.isSafeInteger(offset) && offset > 0 ? offset : 0,
    nested: q.get("nested") === "true",
  };
}

/** @param {Filter} f */
function urlOf(f) {
  const q = new URLSearchParams();
  if (f.status) q.set("status", f.status);
  if (f.flow) q.set("flow", f.flow);
  if (f.nested) q.set("nested", "true");
  if (f.offset > 0) q.set("offset", String(f.offset));
  const text = q.toString();
  return `/ui${text ? `?${text}` : ""}`;
}

/**
 * Renders the run list into `main`.
 * @param {HTMLElement} main
 * @param {AbortSignal} signal aborted when the page is left
 */
export function runsPage(main, signal) {
  document.title = "Runs · Stepflow";
  let filter = filterFromUrl();

  const statusSelect = h(
    "select",
    { id: "f-status", name: "status" },
    h("option", { value: "", text: "Any status" }),
    STATUSES.map((st) => h("option", { value: st, text: st[0].toUpperCase() + st.slice(1) })),
  );
  const flowInput = h("input", {
    id: "f-flow",
    name: "flow",
    type: "search",
    placeholder: "Flow name",
    autocomplete: "off",
    spellcheck: "false",
  });
  const nestedBox = h("input", { id: "f-nested", name: "nested", type: "checkbox", value: "true" });
  const form = /** @type {HTMLFormElement} */ (h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runs", action: "/ui", method: "get" },
    h("div", { class: "field" }, h("label", { for: "f-status", text: "Status" }), statusSelect),
    h("div", { class: "field grow" }, h("label", { for: "f-flow", text: "Flow" }), flowInput),
    h(
      "div",
      { class: "field check" },
      nestedBox,
      h("label", { for: "f-nested", text: "Nested runs too" }),
    ),
    h("button", { type: "submit", class: "btn", text: "Filter" }),
  ));

  const summary = h("p", { class: "muted count", id: "runs-count" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "runs", "aria-describedby": "runs-count" },
    h("caption", { class: "sr-only", text: "Runs, newest first" }),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Status", "Flow", "Run", "Started", "Duration"].map((t) =>
          h("th", { scope: "col", text: t })
        ),
      ),
    ),
    tbody,
  );
  const newer = h("a", { class: "btn", rel: "prev", text: "← Newer" });
  const older = h("a", { class: "btn", rel: "next", text: "Older →" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" }, newer, older);
  const error = h("div", { class: "notice error", role: "alert", hidden: true });

  put(
    main,
    h("div", { class: "page-head" }, h("h1", { text: "Runs" }), summary),
    form,
    error,
    h("div", { class: "table-wrap" }, table),
    pager,
  );

  const syncForm = () => {
    /** @type {HTMLSelectElement} */ (statusSelect).value = filter.status ?? "";
    /** @type {HTMLInputElement} */ (flowInput).value = filter.flow ?? "";
    /** @type {HTMLInputElement} */ (nestedBox).checked = filter.nested;
  };
  syncForm();

  /** @param {Filter} next */
  const go = (next) => {
    filter = next;
    history.pushState(null, "", urlOf(filter));
    load(true);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go({
      status: /** @type {HTMLSelectElement} */ (statusSelect).value || undefined,
      flow: /** @type {HTMLInputElement} */ (flowInput).value.trim() || undefined,
      nested: /** @type {HTMLInputElement} */ (nestedBox).checked,
      offset: 0,
    });
  });
  statusSelect.addEventListener("change", () => form.requestSubmit());
  nestedBox.addEventListener("change", () => form.requestSubmit());
  for (
    const [link, delta] of /** @type {[HTMLElement, number][]} */ ([[newer, -PAGE], [older, PAGE]])
  ) {
    link.addEventListener("click", (e) => {
      if (link.getAttribute("aria-disabled") === "true") return e.preventDefault();
      e.preventDefault();
      go({ ...filter, offset: Math.max(0, filter.offset + delta) });
    });
  }
  addEventListener("popstate", () => {
    filter = filterFromUrl();
    syncForm();
    load(true);
  }, { signal });

  let loading = false;
  /** @param {boolean} announceCount */
  const load = async (announceCount) => {
    if (loading) return;
    loading = true;
    try {
      const q = new URLSearchParams({ limit: String(PAGE + 1), offset: String(filter.offset) });
      if (filter.status) q.set("status", filter.status);
      if (filter.flow) q.set("flowName", filter.flow);
      if (!filter.nested) q.set("rootOnly", "true");
      const { runs } = await api(`/runs?${q}`, { signal });
      error.hidden = true;
      const more = runs.length > PAGE;
      const shown = runs.slice(0, PAGE);
      render(shown);
      const from = filter.offset + 1;
      const text = shown.length === 0
        ? (filter.offset > 0 ? "No more runs." : "No runs match.")
        : `Runs ${from}–${filter.offset + shown.length}${
          more ? "" : filter.offset > 0 ? " (last page)" : ""
        }`;
      summary.textContent = text;
      if (announceCount) announce(shown.length === 0 ? text : `${shown.length} runs shown.`);
      setLink(newer, filter.offset > 0, { ...filter, offset: Math.max(0, filter.offset - PAGE) });
      setLink(older, more, { ...filter, offset: filter.offset + PAGE });
    } catch (e) {
      if (signal.aborted) return;
      error.hidden = false;
      error.textContent = `Could not load the runs: ${e instanceof Error ? e.message : e}`;
    } finally {
      loading = false;
    }
  };

  /**
   * @param {HTMLElement} link
   * @param {boolean} enabled
   * @param {Filter} target
   */
  const setLink = (link, enabled, target) => {
    if (enabled) {
      link.setAttribute("href", urlOf(target));
      link.removeAttribute("aria-disabled");
    } else {
      link.removeAttribute("href");
      link.setAttribute("aria-disabled", "true");
    }
  };

  /** @param {any[]} runs */
  const render = (runs) => {
    // keep the keyboard focus on the same run's link across refreshes
    const focused = document.activeElement instanceof HTMLElement &&
        tbody.contains(document.activeElement)
      ? document.activeElement.dataset.key
      : undefined;
    const rows = runs.map((r) => {
      const runLink = h(
        "a",
        {
          href: `/ui/runs/${r.runId}`,
          "data-key": `run:${r.runId}`,
          "aria-label": `Run ${r.runId}`,
        },
        shortId(r.runId),
      );
      const flowName = r.flowName ?? "(unnamed flow)";
      const flowLink = h("a", {
        href: `/ui/flows/${r.flowId}`,
        "data-key": `flow:${r.runId}`,
        text: flowName,
      });
      const ms = between(r.createdAt, r.completedAt);
      const row = h(
        "tr",
        { class: `run-row s-${r.status}` },
        h("td", { "data-label": "Status" }, badge(r.status)),
        h("td", { "data-label": "Flow", class: "flow" }, flowLink),
        h("td", { "data-label": "Run" }, runLink),
        h("td", { "data-label": "Started" }, time(r.createdAt)),
        h(
          "td",
          { "data-label": "Duration", class: "num" },
          FINISHED.has(r.status)
            ? duration(ms)
            : h("span", { class: "muted", text: `${duration(ms)} so far` }),
        ),
      );
      // the whole row opens the run (links inside keep their own target)
      row.addEventListener("click", (e) => {
        if (e.target instanceof Element && e.target.closest("a")) return;
        if (getSelection()?.toString()) return;
        location.href = `/ui/runs/${r.runId}`;
      });
      return row;
    });
    put(tbody, rows);
    if (focused) {
      /** @type {HTMLElement | null} */ (tbody.querySelector(`[data-key="${CSS.escape(focused)}"]`))
        ?.focus();
    }
  };

  load(false);
  const t = setInterval(() => {
    if (document.visibilityState === "visible") load(false);
  }, REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(t));
}
