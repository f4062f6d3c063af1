/**
 * The web UI's files and the API it needs, without a browser (ui_browser_test.ts drives one):
 * `/ui` and its static files (content types, caching, Content-Security-Policy, no token needed),
 * the browser modules (type-checked against the DOM types, no HTML built from strings, every
 * import served), `GET /flows/{id}/graph`, `GET /runs/{id}/graph`, and the extensions of
 * `GET /runs/{id}/steps` (input, attempt, times; secrets redacted).
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes, REPO_ROOT } from "../_assert.ts";
import { type RunningServer, SCHEMA, withServer } from "./_server.ts";
import { UI_CSP, UI_FILES, UI_VERSION } from "../../src/server/routes_ui.ts";
import { MAX_SVG_NODES } from "../../src/server/routes_graph.ts";

const UI_DIR = `${REPO_ROOT}/src/server/ui`;
const WORKER = `${REPO_ROOT}/tests/fixtures/workers/ui_worker.ts`;

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

Deno.test("UI files: every file of src/server/ui is served, and every module import is one of them", async () => {
  const names: string[] = [];
  for await (const e of Deno.readDir(UI_DIR)) if (e.isFile) names.push(e.name);
  const served = new Set([...Object.keys(UI_FILES), "index.html"]);
  assertEquals(names.sort(), [...served].sort());
  for (const [name, file] of Object.entries(UI_FILES)) {
    if (!name.endsWith(".js")) continue;
    for (const m of file.body.matchAll(/^import .* from "(.+)";$/gm)) {
      assert(m[1].startsWith("./"), `${name}: import ${m[1]} is not a sibling module`);
      assert(m[1].slice(2) in UI_FILES, `${name}: imports ${m[1]}, which is not served`);
    }
  }
});

Deno.test("UI files: no HTML is built from strings, no eval, no inline script or style", () => {
  const banned =
    /\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setAttribute\("on/;
  for (const [name, file] of Object.entries(UI_FILES)) {
    if (!name.endsWith(".js")) continue;
    const m = banned.exec(file.body);
    assert(m === null, `${name} uses ${m?.[0]}`);
    // the bundle test refuses `import(` in the bundle's text, where these files are strings
    assert(!/\bimport\(/.test(file.body), `${name}: no import() (a JSDoc type import counts)`);
  }
  const html = Deno.readTextFileSync(`${UI_DIR}/index.html`);
  assert(!/<script(?![^>]*\bsrc=)/.test(html), "index.html has an inline script");
  assert(!/<style|\sstyle=/.test(html), "index.html has inline style");
});

Deno.test("UI files: the browser modules type-check against the DOM types", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "check",
      ...Object.keys(UI_FILES).filter((n) => n.endsWith(".js")).map((n) => `${UI_DIR}/${n}`),
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  for (const [name, file] of Object.entries(UI_FILES)) {
    if (name.endsWith(".js")) {
      assert(file.body.startsWith("// @ts-check\n"), `${name}: // @ts-check`);
    }
  }
});

/** A flow whose middle step waits for a file, with a secret variable and a hostile step id. */
function heldFlow(): unknown {
  return {
    schema: SCHEMA,
    name: "held",
    variables: {
      type: "object",
      properties: { api_key: { type: "string", is_secret: true } },
    },
    steps: [
      {
        id: "first",
        component: "/ui/echo",
        input: { value: { q: { $from: { workflow: "input" }, path: "q" }, n: "EXACT" } },
      },
      {
        id: '<held & "x">',
        component: "/ui/hold",
        input: {
          gate: { $from: { workflow: "input" }, path: "gate" },
          value: { key: { $from: { variable: "api_key" } }, first: { $from: { step: "first" } } },
        },
      },
      {
        id: "last",
        component: "/ui/echo",
        input: { value: { $from: { step: '<held & "x">' }, path: "value" } },
      },
    ],
    output: { $from: { step: "last" } },
  };
}

async function text(
  s: RunningServer,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(`${s.url}${path}`, { headers, redirect: "manual" });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

Deno.test("GET /ui and its files: types, caching, CSP; /ui needs no token, the API does", () =>
  withServer({ config: CONFIG, args: ["--store", "memory", "--token", "s3cret"] }, async (s) => {
    const page = await text(s, "/ui");
    assertEquals(page.status, 200);
    assertEquals(page.headers.get("content-type"), "text/html; charset=utf-8");
    assertEquals(page.headers.get("content-security-policy"), UI_CSP);
    assertEquals(page.headers.get("x-content-type-options"), "nosniff");
    assertEquals(page.headers.get("cache-control"), "no-cache");
    assertStringIncludes(page.body, `src="/ui/static/${UI_VERSION}/app.js"`);
    assert(!page.body.includes("__UI_VERSION__"));
    const etag = page.headers.get("etag")!;
    assertEquals((await text(s, "/ui", { "if-none-match": etag })).status, 304);
    for (const path of ["/ui/", "/ui/runs/0190f1a2-7c3e-7d10-8a4b-3f2e1d0c9b8a", "/ui/flows/x"]) {
      const p = await text(s, path);
      assertEquals(p.status, 200, path);
      assertEquals(p.body, page.body);
    }
    assertEquals((await text(s, "/ui/nowhere")).status, 404);
    assertEquals(
      (await text(s, "/ui/nowhere")).headers.get("content-type"),
      "text/html; charset=utf-8",
    );

    const js = await text(s, `/ui/static/${UI_VERSION}/app.js`);
    assertEquals(js.status, 200);
    assertEquals(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assertEquals(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assertEquals(js.body, UI_FILES["app.js"].body);
    const css = await text(s, `/ui/static/${UI_VERSION}/app.css`);
    assertEquals(css.headers.get("content-type"), "text/css; charset=utf-8");
    const icon = await text(s, `/ui/static/${UI_VERSION}/icon.svg`);
    assertEquals(icon.headers.get("content-type"), "image/svg+xml; charset=utf-8");
    // another version's URL (an older page's, a made-up one) was answered with this file (and
    // cached under it): now redirected to this version's, and the redirect is not stored
    for (
      const version of ["0000", "ffffffffffffffff", UI_VERSION.toUpperCase(), `${UI_VERSION}x`]
    ) {
      const old = await text(s, `/ui/static/${version}/app.js`, {
        "if-none-match": `"${UI_VERSION}"`,
      });
      assertEquals(old.status, 307, version);
      assertEquals(old.headers.get("location"), `/ui/static/${UI_VERSION}/app.js`);
      assertEquals(old.headers.get("cache-control"), "no-store");
      assertEquals(old.headers.get("content-security-policy"), UI_CSP);
      assertEquals(old.body, "");
    }
    assertEquals((await text(s, "/ui/static/0000/nope.js")).status, 404);
    assertEquals((await text(s, `/ui/static/${UI_VERSION}/nope.js`)).status, 404);
    assertEquals((await text(s, `/ui/static/${UI_VERSION}/constructor`)).status, 404);
    // nothing under /ui/static but this version's files is cached as immutable: the directories
    // themselves, a version that does not exist, paths deeper or emptier than <version>/<file>
    for (
      const path of [
        "/ui/static",
        "/ui/static/",
        `/ui/static/${UI_VERSION}`,
        `/ui/static/${UI_VERSION}/`,
        "/ui/static/0000",
        "/ui/static/0000/",
        "/ui/static//app.js",
        `/ui/static/${UI_VERSION}//app.js`,
        `/ui/static/${UI_VERSION}/app.js/`,
        `/ui/static/${UI_VERSION}/x/app.js`,
        "/ui/static/0000/x/app.js",
        `/ui/static/${UI_VERSION}/..`,
        `/ui/static/${UI_VERSION}/%2e%2e/app.js`,
        `/ui/static/${UI_VERSION}/app.js%2f`,
      ]
    ) {
      for (const method of ["GET", "HEAD"]) {
        const res = await fetch(`${s.url}${path}`, { method, redirect: "manual" });
        await res.body?.cancel();
        const cache = res.headers.get("cache-control") ?? "";
        assert(res.status === 404 || res.status === 307, `${method} ${path}: ${res.status}`);
        assert(!cache.includes("immutable") && !cache.includes("max-age"), `${method} ${path}`);
      }
    }

    // the token: the API refuses without it; the page's files do not need it
    assertEquals((await text(s, "/api/v1/runs")).status, 401);
    const root = await text(s, "/");
    assertEquals(root.status, 401); // everything but /ui and /health needs the token
    const rootOk = await text(s, "/", { authorization: "Bearer s3cret" });
    assertEquals(rootOk.status, 302);
    assertEquals(rootOk.headers.get("location"), "/ui");
  }));

Deno.test("GET /flows/{id}/graph and /runs/{id}/graph; GET /runs/{id}/steps: input, attempt, times, secrets redacted", () =>
  withServer({ config: CONFIG, args: ["--store", "sqlite:state.db"] }, async (s, dir) => {
    // a number JavaScript cannot hold, sent as JSON text
    const stored = await s.call(
      "POST",
      "/api/v1/flows",
      JSON.stringify({ flow: heldFlow() }).replace('"EXACT"', "9007199254740993"),
    );
    const flowId: string = stored.body.flowId;
    assertEquals(typeof flowId, "string", JSON.stringify(stored.body));
    const gate = `${dir}/gate`;

    // the flow's picture
    const svg = await text(s, `/api/v1/flows/${flowId}/graph`);
    assertEquals(svg.status, 200);
    assertEquals(svg.headers.get("content-type"), "image/svg+xml; charset=utf-8");
    assert(svg.body.startsWith("<svg "), svg.body.slice(0, 40));
    assert(svg.body.trimEnd().endsWith("</svg>"));
    for (const id of ["first", "last"]) assertStringIncludes(svg.body, `data-step-id="${id}"`);
    assertStringIncludes(svg.body, `data-step-id="&lt;held &amp; &quot;x&quot;&gt;"`);
    assert(!svg.body.includes("<held"), "the hostile id is escaped");
    const etag = svg.headers.get("etag")!;
    assertMatch(etag, /^"[0-9a-f]{24}"$/);
    assertEquals(
      (await text(s, `/api/v1/flows/${flowId}/graph`, { "if-none-match": etag })).status,
      304,
    );
    const mmd = await text(s, `/api/v1/flows/${flowId}/graph?format=mermaid`);
    assertEquals(mmd.headers.get("content-type"), "text/vnd.mermaid; charset=utf-8");
    assertMatch(mmd.body, /^flowchart TD$/m);
    const dot = await text(s, `/api/v1/flows/${flowId}/graph?format=dot&details=false`);
    assertEquals(dot.headers.get("content-type"), "text/vnd.graphviz; charset=utf-8");
    assertMatch(dot.body, /^digraph /m);
    const bad = await s.call("GET", `/api/v1/flows/${flowId}/graph?format=png`);
    assertEquals(bad.status, 400);
    assertStringIncludes(bad.body.message, "format");
    assertEquals((await s.call("GET", `/api/v1/flows/${"0".repeat(64)}/graph`)).status, 404);

    // a run held on its middle step
    const started = await s.call("POST", "/api/v1/runs", {
      flowId,
      input: { q: "hi", gate },
      variables: { api_key: "sk-very-secret-key" },
      wait: false,
    });
    assertEquals(started.status, 202);
    const runId = started.body.runId;
    let steps = await waitForSteps(s, runId, (st) => st['<held & "x">'].status === "running");
    const first = steps.first;
    assertEquals(first.status, "completed");
    assertEquals(first.attempt, 1);
    assertEquals(first.input, { value: { q: "hi", n: 9007199254740993 } });
    assertEquals(typeof first.durationMs, "number");
    assertEquals(typeof first.startedAt, "string");
    assertEquals(typeof first.completedAt, "string");
    // real times (journaled, or the stored result's time less the recorded duration): they
    // agree with the duration within the clock reads between them
    assertEquals(first.durationEstimated, undefined, "the start is known, not estimated");
    const span = Date.parse(first.completedAt) - Date.parse(first.startedAt);
    assert(Math.abs(span - first.durationMs) <= 5, `${span} ms vs ${first.durationMs} ms`);
    const held = steps['<held & "x">'];
    assertEquals(held.input.value.key, "[REDACTED]", "a secret variable is redacted in the input");
    assertEquals(held.input.value.first, { value: { q: "hi", n: 9007199254740993 } });
    assertEquals(held.input.gate, gate);
    assertEquals(typeof held.durationMs, "number");
    assertEquals(held.durationEstimated, undefined, "a running step's start is known");
    assertEquals(held.result, undefined);
    assertEquals(steps.last.status, "blocked");
    assertEquals(steps.last.input, undefined);
    assertEquals(steps.last.attempt, undefined);
    // exact numbers survive: the answer's text has the number as written
    const raw = await text(s, `/api/v1/runs/${runId}/steps`);
    assertStringIncludes(raw.body, "9007199254740993", raw.body);

    const runSvg = await text(s, `/api/v1/runs/${runId}/graph`);
    assertEquals(runSvg.status, 200);
    assertEquals(runSvg.headers.get("cache-control"), "no-store");
    assertMatch(runSvg.body, /class="node step step-first status-completed"/);
    assertMatch(
      runSvg.body,
      /class="node step step-_3c_held_20__26__20__22_x_22__3e_ status-running"/,
    );
    assertMatch(runSvg.body, /class="node step step-last status-blocked"/);

    await Deno.writeTextFile(gate, "open");
    steps = await waitForSteps(s, runId, (st) => st.last.status === "completed");
    // the held step echoed the secret: its stored output keeps it (outputs are never changed),
    // the input the next step was given shows it redacted
    assertEquals(steps.last.input.value.key, "[REDACTED]");
    assertEquals(steps.last.input.value.first, { value: { q: "hi", n: 9007199254740993 } });

    const doc = (await s.call("GET", "/api/v1/openapi.json")).body;
    assert(doc.paths["/api/v1/flows/{flowId}/graph"]?.get, "the flow graph route is documented");
    assert(doc.paths["/api/v1/runs/{runId}/graph"]?.get, "the run graph route is documented");
    const stepSchema = doc.components.schemas.StepRunResponse.properties;
    for (const k of ["attempt", "startedAt", "completedAt", "durationMs", "input"]) {
      assert(k in stepSchema, `StepRunResponse documents ${k}`);
    }
  }));

/** Polls `GET /runs/{id}/steps` (bounded) until `ok` says so; returns the steps. */
async function waitForSteps(
  s: RunningServer,
  runId: string,
  // deno-lint-ignore no-explicit-any
  ok: (steps: Record<string, any>) => boolean,
  // deno-lint-ignore no-explicit-any
): Promise<Record<string, any>> {
  const end = Date.now() + 20_000;
  for (;;) {
    const r = await s.call("GET", `/api/v1/runs/${runId}/steps`);
    assertEquals(r.status, 200, JSON.stringify(r.body));
    if (ok(r.body.steps)) return r.body.steps;
    if (Date.now() > end) throw new Error(`steps never got there: ${JSON.stringify(r.body.steps)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("a flow too large to lay out as SVG is a 422 saying what to get instead, not seconds of a stalled service", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    // was: GET /runs/{id}/graph of a 20,000-step flow laid it out on the event loop for 6 s
    // (11 s the first time), and /health, every run and every request waited behind it
    const n = MAX_SVG_NODES + 1;
    const steps = Array.from({ length: n }, (_, i) => ({
      id: `s${i}`,
      component: "/builtin/create_messages",
      input: { user_prompt: `x${i}` },
    }));
    const flow = { schema: SCHEMA, name: "wide", steps, output: { $from: { step: "s0" } } };
    const stored = await s.call("POST", "/api/v1/flows", { flow });
    const flowId: string = stored.body.flowId;
    assertEquals(typeof flowId, "string", JSON.stringify(stored.body).slice(0, 500));
    const svg = await s.call("GET", `/api/v1/flows/${flowId}/graph`);
    assertEquals(svg.status, 422);
    assertEquals(svg.body.code, 422);
    assertStringIncludes(svg.body.message, `more than the ${MAX_SVG_NODES} the service lays out`);
    assertStringIncludes(svg.body.message, "?format=mermaid");
    // the text formats are drawn whatever the size
    const mmd = await text(s, `/api/v1/flows/${flowId}/graph?format=mermaid`);
    assertEquals(mmd.status, 200);
    assertStringIncludes(mmd.body, "n_step_s2000");
    const run = await s.call("POST", "/api/v1/runs", { flowId, input: {} });
    const runSvg = await s.call("GET", `/api/v1/runs/${run.body.runId}/graph`);
    assertEquals(runSvg.status, 422);
    assertStringIncludes(runSvg.body.message, `/api/v1/runs/${run.body.runId}/steps`);
    // a flow at the limit is drawn
    const small = await s.call("POST", "/api/v1/flows", {
      flow: { ...flow, steps: steps.slice(0, 10) },
    });
    assertEquals((await text(s, `/api/v1/flows/${small.body.flowId}/graph`)).status, 200);
  }));

Deno.test("a flow whose edges are too many to lay out as SVG is a 422 at once, not 46 s of a stalled service", () =>
  withServer({ args: ["--store", "memory"] }, async (s) => {
    // was: 300 steps (well under MAX_SVG_NODES), each reading every earlier step: GET
    // /flows/{id}/graph laid out 45,000 edges for 46 s and answered a 97 MB SVG (kept in the
    // service's cache of drawn graphs)
    const n = 300;
    const steps = Array.from({ length: n }, (_, i) => ({
      id: `s${i}`,
      component: "/builtin/create_messages",
      input: {
        user_prompt: "x",
        refs: Array.from(
          { length: i },
          (_, j) => ({ $from: { step: `s${j}` }, path: "$.messages" }),
        ),
      },
    }));
    const flow = { schema: SCHEMA, name: "dense", steps, output: { $from: { step: `s${n - 1}` } } };
    const stored = await s.call("POST", "/api/v1/flows", { flow });
    const flowId: string = stored.body.flowId;
    const svg = await s.call("GET", `/api/v1/flows/${flowId}/graph`);
    assertEquals(svg.status, 422, String(svg.body).slice(0, 200));
    assertStringIncludes(svg.body.message, "too large to lay out as SVG");
    assertStringIncludes(svg.body.message, "?format=mermaid");
    const run = await s.call("POST", "/api/v1/runs", { flowId, input: {} });
    assertEquals((await s.call("GET", `/api/v1/runs/${run.body.runId}/graph`)).status, 422);
    const dot = await text(s, `/api/v1/flows/${flowId}/graph?format=dot`);
    assertEquals(dot.status, 200);
  }));
