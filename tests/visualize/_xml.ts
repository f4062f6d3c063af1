/**
 * Test helper: a strict little XML parser, enough to prove an SVG document well-formed (one root,
 * balanced tags, quoted attributes, no duplicate attribute, known entities only, no `<` or `&`
 * out of place, no control characters) and to query it.
 * @module
 */

/** An element: its name, attributes (entities decoded) and children. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: (XmlElement | string)[];
}

const NAME = /^[A-Za-z_:][A-Za-z0-9_:.-]*/;

/**
 * Parses `text` as an XML document.
 * @throws {Error} naming the offset of the first problem.
 */
export function parseXml(text: string): XmlElement {
  let i = 0;
  const fail = (msg: string): never => {
    throw new Error(`XML: ${msg} at offset ${i}: ${JSON.stringify(text.slice(i, i + 40))}`);
  };
  // deno-lint-ignore no-control-regex
  const bad = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.exec(text);
  if (bad) {
    i = bad.index;
    fail("control character");
  }
  const decode = (s: string): string =>
    s.replace(/&([^;&]*);/g, (_, e: string) => {
      if (e === "amp") return "&";
      if (e === "lt") return "<";
      if (e === "gt") return ">";
      if (e === "quot") return '"';
      if (e === "apos") return "'";
      const m = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(e);
      if (!m) return fail(`unknown entity &${e};`);
      return String.fromCodePoint(m[1] ? parseInt(m[1], 16) : Number(m[2]));
    });
  const checkText = (s: string) => {
    if (s.includes("<")) fail("'<' in text");
    if (/&(?![A-Za-z]+;|#[0-9]+;|#x[0-9a-fA-F]+;)/.test(s)) fail("bare '&'");
    return decode(s);
  };
  const skipMisc = () => {
    for (;;) {
      while (i < text.length && /\s/.test(text[i])) i++;
      if (text.startsWith("<?", i)) {
        const end = text.indexOf("?>", i);
        if (end < 0) fail("unclosed <?");
        i = end + 2;
      } else if (text.startsWith("<!--", i)) {
        const end = text.indexOf("-->", i);
        if (end < 0) fail("unclosed comment");
        i = end + 3;
      } else if (text.startsWith("<!DOCTYPE", i)) {
        const end = text.indexOf(">", i);
        if (end < 0) fail("unclosed DOCTYPE");
        i = end + 1;
      } else {
        return;
      }
    }
  };
  const element = (): XmlElement => {
    if (text[i] !== "<") fail("expected '<'");
    i++;
    const name = NAME.exec(text.slice(i))?.[0] ?? fail("bad element name");
    i += name.length;
    const el: XmlElement = { name, attrs: {}, children: [] };
    for (;;) {
      const ws = /^\s*/.exec(text.slice(i))![0].length;
      i += ws;
      if (text.startsWith("/>", i)) {
        i += 2;
        return el;
      }
      if (text[i] === ">") {
        i++;
        break;
      }
      if (ws === 0) fail("no space before attribute");
      const an = NAME.exec(text.slice(i))?.[0] ?? fail("bad attribute name");
      i += an.length;
      if (text[i] !== "=") fail("expected '='");
      i++;
      const q = text[i];
      if (q !== '"' && q !== "'") fail("unquoted attribute");
      const end = text.indexOf(q, i + 1);
      if (end < 0) fail("unclosed attribute");
      const raw = text.slice(i + 1, end);
      if (Object.hasOwn(el.attrs, an)) fail(`duplicate attribute ${an}`);
      el.attrs[an] = checkText(raw);
      i = end + 1;
    }
    for (;;) {
      const lt = text.indexOf("<", i);
      if (lt < 0) fail(`unclosed <${name}>`);
      if (lt > i) el.children.push(checkText(text.slice(i, lt)));
      i = lt;
      if (text.startsWith("</", i)) {
        i += 2;
        if (!text.startsWith(name, i)) fail(`expected </${name}>`);
        i += name.length;
        while (/\s/.test(text[i])) i++;
        if (text[i] !== ">") fail("expected '>'");
        i++;
        return el;
      }
      if (text.startsWith("<!--", i)) {
        const end = text.indexOf("-->", i);
        if (end < 0) fail("unclosed comment");
        i = end + 3;
        continue;
      }
      el.children.push(element());
    }
  };
  skipMisc();
  const root = element();
  skipMisc();
  if (i !== text.length) fail("content after the root element");
  return root;
}

/** Every element below (and including) `el`, depth first. */
export function allElements(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [el];
  for (const c of el.children) if (typeof c !== "string") out.push(...allElements(c));
  return out;
}

/** The text content of an element. */
export function textOf(el: XmlElement): string {
  return el.children.map((c) => typeof c === "string" ? c : textOf(c)).join("");
}

/** The classes of an element. */
export function classesOf(el: XmlElement): string[] {
  return (el.attrs.class ?? "").split(/\s+/).filter((c) => c !== "");
}
