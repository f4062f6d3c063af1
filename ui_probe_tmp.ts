import { chromium } from "playwright-core";
const base = Deno.args[0];
const paths = Deno.args.slice(1);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage();
const errors: string[] = [];
page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
page.on("console", (m) => { if (m.type() === "error") errors.push("console: " + m.text()); });
page.on("dialog", (d) => { errors.push("DIALOG: " + d.message()); d.dismiss(); });
for (const p of paths) {
  errors.length = 0;
  await page.goto(base + p);
  await page.waitForTimeout(2500);
  const text = (await page.locator("main").innerText()).slice(0, 300).replace(/\n/g, " | ");
  console.log(p.slice(0, 80), "=>", text, errors.length ? JSON.stringify(errors) : "");
}
await browser.close();
