/// <reference lib="dom" />
/**
 * The web UI end to end (issue 15): a real `stepflow serve` (127.0.0.1, port 0, SQLite store) and
 * Debian's Chromium (`/usr/bin/chromium`, headless) driven by playwright-core. A run held by a
 * step service is seen in the run list, opened, and watched until its held step turns completed
 * without a reload; a second run is started from the flow page, signalled and cancelled from its
 * page; an interrupted run's Resume shows the API's answer; keyboard use and the phone viewport
 * are checked. Screenshots go to `.test-output/ui/` (gitignored).
 *
 * Without Chromium: on CI (`CI` or `STEPFLOW_REQUIRE_CHROMIUM` set; .ci/run installs it with
 * scripts/setup_chromium.sh) the test fails with one line; elsewhere it is skipped with one line.
 * @module
 */
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { assert, assertEquals, assertStringIncludes, REPO_ROOT } from "../_assert.ts";
import { type RunningServer, startServer, storeFlow } from "./_server.ts";

const CHROMIUM = "/usr/bin/chromium";
const OUT = `${REPO_ROOT}/.test-output/ui`;
const WORKER = `${REPO_ROOT}/tests/fixtures/workers/ui_worker.ts`;
/** Longest wait for something the page should show, ms. */
const SHOWN_MS = 20_000;

const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
const required = ["CI", "STEPFLOW_REQUIRE_CHROMIUM"].some((k) => {
  const v = Deno.env.get(k);
  return v !== undefined && v !== "" && v !== "0" && v !== "false";
});
if (!haveChromium && !required) {
  console.error(
    `ui_browser_test: skipped: ${CHROMIUM} is absent (bash scripts/setup_chromium.sh installs it)`,
  );
}

const CONFIG = `plugins:
  builtin: { type: builtin }
  ui:
    type: stepflow
    command: ${JSON.stringify(Deno.execPath())}
    args: [run, --quiet, -A, ${JSON.stringify(WORKER)}]
routes:
  "/builtin/{*component}":
    - plugin: builtin
  "/ui/{*component}":
    - plugin: ui
`;

/** A step id a page must show as text, never as markup. */
const HOSTILE_ID = `review <b>&amp;</b> "x"`;

const FLOW = {
  schema: "https://stepflow.org/schemas/v1/flow.json",
  name: "review-article",
  description: "Drafts an article, waits for a human review, then publishes it.",
  steps: [
    {
      id: "fetch_article",
      component: "/ui/echo",
      input: { value: { $from: { workflow: "input" }, path: "topic" } },
    },
    {
      id: "draft",
      component: "/ui/echo",
      input: {
        value: { title: { $from: { step: "fetch_article" }, path: "value" }, words: 1200 },
      },
    },
    {
      id: HOSTILE_ID,
      component: "/ui/hold",
      input: {
        gate: { $from: { workflow: "input" }, path: "gate" },
        value: { $from: { step: "draft" }, path: "value" },
      },
    },
    {
      id: "notify",
      component: "/ui/echo",
      input: { value: { $from: { step: "fetch_article" }, path: "value" } },
    },
    {
      id: "publish",
      component: "/ui/echo",
      input: {
        value: {
          review: { $from: { step: HOSTILE_ID }, path: "value" },
          notified: { $from: { step: "notify" }, path: "value" },
        },
      },
    },
  ],
  output: { published: { $from: { step: "publish" }, path: "value" } },
};

async function launch(profile: string): Promise<BrowserContext> {
  return await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 800 },
    // screenshots without a half-faded pulse (the pages honour reduced motion)
    reducedMotion: "reduce",
  });
}

/**
 * Collects what must not happen on a page: script errors, console errors (CSP violations).
 */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    problems.push(`console error: ${m.text()}`);
  });
  return problems;
}

async function shot(page: Page, name: string, fullPage = false): Promise<void> {
  await page.screenshot({ path: `${OUT}/${name}.png`, fullPage });
}

/** The step table row of `stepId` (its id cell holds the id as text). */
function stepRow(page: Page, stepId: string) {
  return page.locator("tr.step-row").filter({
    has: page.locator("th.step-id code", { hasText: stepId }),
  });
}

/** No horizontal scrolling: the page fits its viewport's width. */
async function assertFitsWidth(page: Page, what: string): Promise<void> {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: innerWidth,
  }));
  assert(scroll <= width, `${what}: the page is ${scroll} px wide in a ${width} px viewport`);
}

async function startRun(s: RunningServer, flowId: string, gate: string): Promise<string> {
  const r = await s.call("POST", "/api/v1/runs", {
    flowId,
    input: { topic: "Deno", gate },
    wait: false,
  });
  assertEquals(r.status, 202, JSON.stringify(r.body));
  return r.body.runId;
}

Deno.test({
  name: "web UI in Chromium: list, live run page, cancel, signal, resume, keyboard, phone",
  ignore: !haveChromium && !required,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    if (!haveChromium) {
      throw new Error(
        `${CHROMIUM} is absent on CI: install it with 'bash scripts/setup_chromium.sh' (needs root and apt)`,
      );
    }
    await Deno.mkdir(OUT, { recursive: true });
    const dir = await Deno.makeTempDir({ prefix: "stepflow-ui-" });
    let s: RunningServer | undefined;
    let browser: BrowserContext | undefined;
    try {
      await Deno.writeTextFile(`${dir}/stepflow-config.yml`, CONFIG);
      s = await startServer(dir, { config: false, args: ["--store", "sqlite:state.db"] });
      const flowId = await storeFlow(s, FLOW);
      const gateA = `${dir}/gate-a`;
      const runA = await startRun(s, flowId, gateA);

      browser = await launch(`${dir}/profile`);
      const page = browser.pages()[0] ?? await browser.newPage();
      const problems = watch(page);
      const server = s;

      await t.step("the run list shows the run, with its status as text", async () => {
        await page.goto(`${server.url}/ui`);
        const link = page.locator(`a[href="/ui/runs/${runA}"]`);
        await link.waitFor({ timeout: SHOWN_MS });
        const row = page.locator("tr.run-row", { has: link });
        assertStringIncludes(await row.innerText(), "review-article");
        await row.locator(".badge", { hasText: "Running" }).waitFor({ timeout: SHOWN_MS });
        await shot(page, "runs-list");
      });

      await t.step("the run page follows the run live: the held step turns completed", async () => {
        await page.locator(`a[href="/ui/runs/${runA}"]`).click();
        await page.waitForURL(`**/ui/runs/${runA}`);
        await page.locator("h1", { hasText: "review-article" }).waitFor({ timeout: SHOWN_MS });
        const held = stepRow(page, HOSTILE_ID);
        await held.locator(".badge", { hasText: "Running" }).waitFor({ timeout: SHOWN_MS });
        // the graph's node of the held step is running too
        const node = page.locator("svg.flow-graph g.step[data-step-id]").filter({
          has: page.locator("title", { hasText: "review <b>" }),
        });
        await page.waitForFunction(
          () =>
            [...document.querySelectorAll("svg.flow-graph g.step")].some((g) =>
              g.classList.contains("status-running")
            ),
          undefined,
          { timeout: SHOWN_MS },
        );
        assertEquals(await node.count(), 1);
        assertStringIncludes(await node.getAttribute("class") ?? "", "status-running");
        // the hostile step id is text everywhere: no element was made from it
        assertEquals(await page.locator("main b").count(), 0);
        assertStringIncludes(await held.innerText(), HOSTILE_ID);
        // the steps that finished show their input and output
        await stepRow(page, "draft").locator("button.toggle").click();
        const detail = page.locator("tr.step-detail:not([hidden])").first();
        assertStringIncludes(await detail.innerText(), '"words": 1200');
        await page.locator("#live-state", { hasText: "Live" }).waitFor({ timeout: SHOWN_MS });
        await shot(page, "run-running");

        await page.evaluate(() =>
          (globalThis as unknown as { notReloaded: boolean }).notReloaded = true
        );
        await Deno.writeTextFile(gateA, "open");
        await held.locator(".badge", { hasText: "Completed" }).waitFor({ timeout: SHOWN_MS });
        await page.locator(".status-slot .badge", { hasText: "Completed" }).waitFor({
          timeout: SHOWN_MS,
        });
        await stepRow(page, "publish").locator(".badge", { hasText: "Completed" }).waitFor({
          timeout: SHOWN_MS,
        });
        assertStringIncludes(await node.getAttribute("class") ?? "", "status-completed");
        assert(
          await page.evaluate(() =>
            (globalThis as unknown as { notReloaded?: boolean }).notReloaded
          ),
          "the page was not reloaded",
        );
        // the result, and the live region said what changed
        await page.locator("#result-h + div", { hasText: '"published"' }).waitFor({
          timeout: SHOWN_MS,
        });
        await page.waitForFunction(
          () => /completed/i.test(document.getElementById("announcer")?.textContent ?? ""),
          undefined,
          { timeout: SHOWN_MS },
        );
        assertEquals(await page.locator(".actions button", { hasText: "Cancel" }).count(), 0);
        await shot(page, "run-completed");
      });

      let runB = "";
      await t.step("the flow page draws the flow and starts a run", async () => {
        await page.locator(".meta a", { hasText: "review-article" }).click();
        await page.waitForURL(`**/ui/flows/${flowId}`);
        await page.locator(".graph-wrap svg.flow-graph g.step").first().waitFor({
          timeout: SHOWN_MS,
        });
        assertEquals(await page.locator(".graph-wrap svg.flow-graph g.step").count(), 5);
        await page.locator(`a[href="/ui/runs/${runA}"]`).waitFor({ timeout: SHOWN_MS });
        await shot(page, "flow");
        await page.locator("#run-input").fill(
          JSON.stringify({ topic: "Cancel me", gate: `${dir}/gate-never` }),
        );
        await page.locator("button", { hasText: "Start run" }).click();
        await page.waitForURL(/\/ui\/runs\/[0-9a-f-]{36}$/);
        runB = page.url().split("/").pop()!;
        assert(runB !== runA);
        await stepRow(page, HOSTILE_ID).locator(".badge", { hasText: "Running" }).waitFor({
          timeout: SHOWN_MS,
        });
      });

      await t.step("Send a signal, then Cancel, from the run page", async () => {
        await page.locator("summary", { hasText: "Send a signal" }).click();
        await page.locator("#sig-name").fill("approve");
        await page.locator("#sig-data").fill("{not json");
        await page.locator("button", { hasText: "Send signal" }).click();
        assertEquals(await page.locator("#sig-data").getAttribute("aria-invalid"), "true");
        await page.locator("#sig-data").fill('{"approved": true}');
        await page.locator("button", { hasText: "Send signal" }).click();
        await page.locator(".notice", { hasText: "Signal 'approve' sent." }).waitFor({
          timeout: SHOWN_MS,
        });
        await page.locator(".events li", { hasText: "signal received" }).first().waitFor({
          state: "attached",
          timeout: SHOWN_MS,
        });

        await page.locator("button", { hasText: "Cancel run…" }).click();
        const yes = page.locator("button", { hasText: "Yes, cancel the run" });
        assert(await yes.evaluate((b) => b === document.activeElement), "focus on the confirm");
        await yes.click();
        await page.locator(".status-slot .badge", { hasText: "Cancelled" }).waitFor({
          timeout: SHOWN_MS,
        });
        await page.locator(".notice", { hasText: "Run cancelled." }).waitFor({
          timeout: SHOWN_MS,
        });
        const stored = await server.call("GET", `/api/v1/runs/${runB}`);
        assertEquals(stored.body.status, "cancelled");
        await shot(page, "run-cancelled");
      });

      await t.step(
        "keyboard: skip link, the run list's links, graph nodes open steps",
        async () => {
          await page.goto(`${server.url}/ui`);
          await page.locator(`a[href="/ui/runs/${runA}"]`).waitFor({ timeout: SHOWN_MS });
          await page.keyboard.press("Tab");
          assertEquals(
            await page.evaluate(() => document.activeElement?.textContent),
            "Skip to content",
          );
          // Tab reaches the run's link (a visible focus ring), Enter opens it
          let reached = false;
          for (let i = 0; i < 30 && !reached; i++) {
            await page.keyboard.press("Tab");
            reached = await page.evaluate(
              (id) => document.activeElement?.getAttribute("href") === `/ui/runs/${id}`,
              runA,
            );
          }
          assert(reached, "Tab reaches the run's link");
          const ring = await page.evaluate(() =>
            getComputedStyle(document.activeElement!).outlineStyle
          );
          assert(ring !== "none", `a focused link shows a focus ring (outline: ${ring})`);
          await page.keyboard.press("Enter");
          await page.waitForURL(`**/ui/runs/${runA}`);
          await page.locator("svg.flow-graph g.step[tabindex]").first().waitFor({
            timeout: SHOWN_MS,
          });
          // Tab to the graph's node of "notify", Enter: its details open, focus on its row
          reached = false;
          for (let i = 0; i < 40 && !reached; i++) {
            await page.keyboard.press("Tab");
            reached = await page.evaluate(() =>
              document.activeElement?.getAttribute("data-step-id") === "notify"
            );
          }
          assert(reached, "Tab reaches the graph node of step notify");
          const label = await page.evaluate(() =>
            document.activeElement?.getAttribute("aria-label")
          );
          assertEquals(label, "Step notify (/ui/echo): Completed");
          await page.keyboard.press("Enter");
          const toggle = stepRow(page, "notify").locator("button.toggle");
          assertEquals(await toggle.getAttribute("aria-expanded"), "true");
          assert(
            await toggle.evaluate((b) => b === document.activeElement),
            "focus moved to the row",
          );
        },
      );

      await t.step("phone viewport (390x844): no horizontal overflow", async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        await page.goto(`${server.url}/ui`);
        await page.locator(`a[href="/ui/runs/${runA}"]`).waitFor({ timeout: SHOWN_MS });
        await assertFitsWidth(page, "run list");
        await shot(page, "phone-runs-list");
        await page.goto(`${server.url}/ui/runs/${runA}`);
        await stepRow(page, "publish").waitFor({ timeout: SHOWN_MS });
        await page.locator(".graph-wrap svg").waitFor({ timeout: SHOWN_MS });
        await stepRow(page, HOSTILE_ID).locator("button.toggle").click();
        await assertFitsWidth(page, "run page");
        await shot(page, "phone-run", true);
        await page.goto(`${server.url}/ui/flows/${flowId}`);
        await page.locator(".graph-wrap svg").waitFor({ timeout: SHOWN_MS });
        await assertFitsWidth(page, "flow page");
        await page.setViewportSize({ width: 1280, height: 800 });
      });

      await t.step("the run list filters by status and flow, and pages", async () => {
        const tinyId = await storeFlow(server, {
          schema: "https://stepflow.org/schemas/v1/flow.json",
          name: "tiny",
          steps: [],
          output: { $from: { workflow: "input" } },
        });
        const made = await Promise.all(
          Array.from(
            { length: 27 },
            (_, i) => server.call("POST", "/api/v1/runs", { flowId: tinyId, input: { i } }),
          ),
        );
        for (const r of made) assertEquals(r.body.status, "completed");
        await page.goto(`${server.url}/ui`);
        await page.locator("#f-status").selectOption("cancelled");
        await page.waitForURL("**/ui?status=cancelled");
        await page.locator(`a[href="/ui/runs/${runB}"]`).waitFor({ timeout: SHOWN_MS });
        assertEquals(await page.locator("tr.run-row").count(), 1);
        await page.locator("#f-status").selectOption("");
        await page.locator("#f-flow").fill("tiny");
        await page.locator("#f-flow").press("Enter");
        await page.waitForURL("**/ui?flow=tiny");
        await page.locator("#runs-count", { hasText: "Runs 1–25" }).waitFor({ timeout: SHOWN_MS });
        assertEquals(await page.locator("tr.run-row").count(), 25);
        assertEquals(await page.locator("a[rel=prev]").getAttribute("aria-disabled"), "true");
        await page.locator("a[rel=next]").click();
        await page.waitForURL("**/ui?flow=tiny&offset=25");
        await page.locator("#runs-count", { hasText: "Runs 26–27" }).waitFor({ timeout: SHOWN_MS });
        assertEquals(await page.locator("tr.run-row").count(), 2);
        assertEquals(await page.locator("a[rel=next]").getAttribute("aria-disabled"), "true");
        await page.goBack();
        await page.locator("#runs-count", { hasText: "Runs 1–25" }).waitFor({ timeout: SHOWN_MS });
        assertEquals(await page.locator("#f-flow").inputValue(), "tiny");
        await page.locator("#f-flow").fill("no such flow");
        await page.locator("#f-flow").press("Enter");
        await page.locator("#runs-count", { hasText: "No runs match." }).waitFor({
          timeout: SHOWN_MS,
        });
      });

      await t.step("text contrast meets WCAG AA on every page", async () => {
        for (
          const path of [
            "/ui",
            `/ui/runs/${runA}`,
            `/ui/runs/${runB}`,
            `/ui/flows/${flowId}`,
          ]
        ) {
          await page.goto(`${server.url}${path}`);
          await page.locator("main h1").waitFor({ timeout: SHOWN_MS });
          await page.locator("tr").first().waitFor({ timeout: SHOWN_MS });
          await page.evaluate(() => {
            for (const d of document.querySelectorAll("details")) d.open = true;
          });
          assertEquals(await lowContrast(page), [], path);
        }
      });

      await t.step("an interrupted run offers Resume and shows the API's answer", async () => {
        const runD = await startRun(server, flowId, `${dir}/gate-never-d`);
        await waitForStep(server, runD, HOSTILE_ID, "running");
        await server.stop("SIGKILL");
        // not resumed at start (--no-resume): the page offers Resume
        s = await startServer(dir, {
          config: false,
          args: ["--store", "sqlite:state.db", "--no-resume"],
        });
        const again = s;
        await page.goto(`${again.url}/ui/runs/${runD}`);
        await page.locator(".status-slot .badge", { hasText: "Failed" }).waitFor({
          timeout: SHOWN_MS,
        });
        await page.locator("button", { hasText: "Resume run" }).click();
        await page.locator(".notice", { hasText: "Run resumed." }).waitFor({
          timeout: SHOWN_MS,
        });
        await shot(page, "run-interrupted");
      });

      await t.step(
        "a service with a token: the page asks for it, keeps it for the tab",
        async () => {
          const tokenDir = await Deno.makeTempDir({ prefix: "stepflow-ui-token-" });
          const guarded = await startServer(tokenDir, {
            config: false,
            args: ["--store", "memory", "--token", "s3cret"],
          });
          try {
            const other = await browser!.newPage();
            problems.push(...watch(other));
            await other.goto(`${guarded.url}/ui`);
            await other.locator("h1", { hasText: "This service needs a token" }).waitFor({
              timeout: SHOWN_MS,
            });
            await other.locator("#token").fill("wrong");
            await other.locator("button", { hasText: "Use token" }).click();
            await other.locator("p", { hasText: "The token given is not accepted." }).waitFor({
              timeout: SHOWN_MS,
            });
            await other.locator("#token").fill("s3cret");
            await other.locator("button", { hasText: "Use token" }).click();
            await other.locator("h1", { hasText: "Runs" }).waitFor({ timeout: SHOWN_MS });
            await other.locator("#runs-count", { hasText: "No runs match." }).waitFor({
              timeout: SHOWN_MS,
            });
            await other.close();
          } finally {
            await guarded.stop();
            await Deno.remove(tokenDir, { recursive: true });
          }
        },
      );

      assertEquals(problems, [], "no script errors or CSP violations in the pages");
    } finally {
      await browser?.close().catch(() => {});
      await s?.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * Text whose contrast with its background is below WCAG AA (4.5:1; 3:1 for large text), outside
 * the graph and disabled controls.
 */
async function lowContrast(page: Page): Promise<string[]> {
  return await page.evaluate(() => {
    type Rgba = { r: number; g: number; b: number; a: number };
    const parse = (c: string): Rgba | undefined => {
      const m = /rgba?\(([^)]+)\)/.exec(c);
      if (!m) return undefined;
      const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
      return { r: p[0], g: p[1], b: p[2], a: p[3] ?? 1 };
    };
    const lum = ({ r, g, b }: Rgba) => {
      const f = (v: number) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el: Element | null): Rgba => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0.5) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const bad: string[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const text = n.textContent?.trim();
      const el = n.parentElement;
      if (!text || !el || el.closest("svg, [hidden], .sr-only, [aria-disabled=true], [disabled]")) {
        continue;
      }
      if (el.getClientRects().length === 0) continue;
      const style = getComputedStyle(el);
      const fg = parse(style.color);
      if (!fg) continue;
      const l1 = lum(fg);
      const l2 = lum(background(el));
      const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) bad.push(`"${text.slice(0, 40)}": ${ratio.toFixed(2)}:1`);
    }
    return bad;
  });
}

/** Waits (bounded, polling the API) until step `stepId` of the run has `status`. */
async function waitForStep(
  s: RunningServer,
  runId: string,
  stepId: string,
  status: string,
): Promise<void> {
  const end = Date.now() + SHOWN_MS;
  for (;;) {
    const r = await s.call("GET", `/api/v1/runs/${runId}/steps`);
    const now = r.body?.steps?.[stepId]?.status;
    if (now === status) return;
    if (Date.now() > end) {
      throw new Error(`step ${stepId} of run ${runId} is ${now}, not ${status}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
