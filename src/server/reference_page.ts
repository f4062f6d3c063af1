/**
 * The API reference page (`/swagger-ui`): one self-contained HTML page rendered from the OpenAPI
 * document — no CDN, no external script or style, so it works offline. Each operation lists its
 * parameters, request body and responses (schemas resolved from `components`), with a small form
 * that sends the request from the browser.
 * @module
 */

type Obj = Record<string, unknown>;

function esc(s: unknown): string {
  return String(s).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** A compact, readable rendering of a JSON Schema: refs by name (the top one expanded). */
function schemaText(schema: unknown, doc: Obj, depth = 0, expand = true): string {
  if (!schema || typeof schema !== "object") return "any";
  const s = schema as Obj;
  const named = (ref: string) => {
    const name = ref.split("/").pop()!;
    return { name, target: ((doc.components as Obj)?.schemas as Obj)?.[name] };
  };
  if (typeof s.$ref === "string") {
    const { name, target } = named(s.$ref);
    if (!expand) return name;
    const body = schemaText(target, doc, depth, false);
    return body === "any" ? name : `${name} ${body}`;
  }
  if (Array.isArray(s.allOf)) {
    // an extended object: the properties of every part
    const merged: Obj = { type: "object", properties: {}, required: [] };
    for (const part of s.allOf as Obj[]) {
      const p = typeof part.$ref === "string" ? named(part.$ref).target as Obj : part;
      Object.assign(merged.properties as Obj, (p?.properties ?? {}) as Obj);
      (merged.required as string[]).push(...((p?.required as string[] | undefined) ?? []));
    }
    return schemaText(merged, doc, depth, false);
  }
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (Array.isArray(s.anyOf)) {
    return s.anyOf.map((x) => schemaText(x, doc, depth, false)).join(" | ");
  }
  if (Array.isArray(s.oneOf)) {
    return s.oneOf.map((x) => schemaText(x, doc, depth, false)).join(" | ");
  }
  const type = Array.isArray(s.type) ? s.type.join(" | ") : s.type;
  if (type === "object" || s.properties) {
    const props = (s.properties ?? {}) as Obj;
    const req = new Set((s.required as string[] | undefined) ?? []);
    const keys = Object.keys(props);
    if (keys.length === 0) {
      return s.additionalProperties && typeof s.additionalProperties === "object"
        ? `{ [key]: ${schemaText(s.additionalProperties, doc, depth + 1, false)} }`
        : "object";
    }
    if (depth > 2) return "{…}";
    const pad = "  ".repeat(depth + 1);
    return `{\n${
      keys.map((k) =>
        `${pad}${k}${req.has(k) ? "" : "?"}: ${schemaText(props[k], doc, depth + 1, false)}`
      ).join(",\n")
    }\n${"  ".repeat(depth)}}`;
  }
  if (type === "array") return `${schemaText(s.items, doc, depth + 1, false)}[]`;
  return type ? String(type) : "any";
}

/** The HTML page for `doc` (an OpenAPI 3.1 document). */
export function referencePage(doc: Obj): string {
  const info = (doc.info ?? {}) as Obj;
  const paths = (doc.paths ?? {}) as Record<string, Obj>;
  const byTag = new Map<string, string[]>();
  let n = 0;
  for (const [path, item] of Object.entries(paths)) {
    for (const method of ["get", "post", "put", "delete", "patch"]) {
      const op = item[method] as Obj | undefined;
      if (!op) continue;
      const id = `op${n++}`;
      const tag = ((op.tags as string[] | undefined) ?? ["Other"])[0];
      const params = ((op.parameters as Obj[] | undefined) ?? []).map((p) =>
        `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${
          p.required ? "required" : ""
        }</td><td>${
          esc((p.description as string) ?? schemaText(p.schema, doc, 1, false))
        }</td></tr>`
      ).join("");
      const body = ((op.requestBody as Obj | undefined)?.content as Obj | undefined)?.[
        "application/json"
      ] as Obj | undefined;
      const responses = Object.entries((op.responses ?? {}) as Record<string, Obj>).map((
        [code, r],
      ) => {
        const sch = ((r.content as Obj | undefined)?.["application/json"] as Obj | undefined)
          ?.schema;
        return `<tr><td><b>${esc(code)}</b></td><td>${esc(r.description ?? "")}${
          sch && code.startsWith("2") ? `<pre>${esc(schemaText(sch, doc))}</pre>` : ""
        }</td></tr>`;
      }).join("");
      const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const html =
        `<details class="op" id="${id}"><summary><span class="m ${method}">${method.toUpperCase()}</span> <code>${
          esc(path)
        }</code> <span class="s">${esc(op.summary ?? "")}</span></summary>
<div class="body">${op.description ? `<p>${esc(op.description)}</p>` : ""}
${params ? `<h4>Parameters</h4><table>${params}</table>` : ""}
${body ? `<h4>Request body</h4><pre>${esc(schemaText(body.schema, doc))}</pre>` : ""}
<h4>Responses</h4><table>${responses}</table>
<form class="try" data-method="${method.toUpperCase()}" data-path="${esc(path)}">
<h4>Try it</h4>${
          pathParams.map((p) => `<label>${esc(p)} <input name="${esc(p)}"></label>`).join(" ")
        }
<label>query <input name="__query" placeholder="a=1&amp;b=2"></label>
${body ? `<textarea name="__body" rows="6">{}</textarea>` : ""}
<button>Send</button><pre class="out"></pre></form></div></details>`;
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push(html);
    }
  }
  const sections = [...byTag].map(([tag, ops]) => `<h2>${esc(tag)}</h2>${ops.join("\n")}`).join(
    "\n",
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${esc(info.title ?? "API")} — reference</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.6em;overflow:auto;white-space:pre-wrap}
.op{border:1px solid #ddd;border-radius:6px;margin:.4em 0}.op summary{padding:.5em;cursor:pointer}
.body{padding:0 1em 1em}.m{display:inline-block;min-width:4.5em;font-weight:700}
.get{color:#0a6}.post{color:#06c}.delete{color:#c30}.s{color:#666}
table{border-collapse:collapse}td{border-top:1px solid #eee;padding:.3em .6em;vertical-align:top}
textarea{width:100%;font:13px ui-monospace,monospace}label{margin-right:1em}
</style></head><body>
<h1>${esc(info.title ?? "API")} <small>${esc(info.version ?? "")}</small></h1>
<p>${esc(info.description ?? "")}</p>
<p>OpenAPI document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>. With a token,
set it here for "Try it": <input id="token" placeholder="token" size="30"></p>
${sections}
<script>
for (const f of document.querySelectorAll("form.try")) f.addEventListener("submit", async (e) => {
  e.preventDefault();
  const out = f.querySelector(".out");
  let path = f.dataset.path;
  for (const i of f.querySelectorAll("input")) if (!i.name.startsWith("__")) path = path.replace("{" + i.name + "}", encodeURIComponent(i.value));
  const q = f.querySelector("[name=__query]").value;
  const headers = {};
  const t = document.getElementById("token").value;
  if (t) headers.authorization = "Bearer " + t;
  const b = f.querySelector("[name=__body]");
  if (b) headers["content-type"] = "application/json";
  out.textContent = "…";
  try {
    const r = await fetch(path + (q ? "?" + q : ""), { method: f.dataset.method, headers, body: b ? b.value : undefined });
    const text = await r.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch {}
    out.textContent = r.status + " " + r.statusText + "\\n" + shown;
  } catch (err) { out.textContent = String(err); }
});
</script></body></html>`;
}
