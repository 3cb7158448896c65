// Opens a `cuvae report` page in headless Chromium: it must render every image, request nothing
// beyond the file itself (data: URLs only) and log no console error.
// Usage: node tests/browser/report.test.mjs REPORT.html SCREENSHOT.png
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";

const [report, shot] = process.argv.slice(2);
const url = pathToFileURL(report).href;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
let failed = false;
const fail = (msg) => { console.log(`FAIL ${msg}`); failed = true; };
try {
  const page = await browser.newPage();
  const external = [];
  page.on("request", (r) => { if (r.url() !== url && !r.url().startsWith("data:")) external.push(r.url()); });
  page.on("console", (m) => { if (m.type() === "error") fail(`console error: ${m.text()}`); });
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  await page.goto(url, { waitUntil: "load" });
  const imgs = await page.$$eval("img", (els) => els.map((e) => ({ alt: e.alt, w: e.naturalWidth, done: e.complete })));
  if (imgs.length === 0) fail("the report shows no image");
  for (const i of imgs) if (!i.done || i.w === 0) fail(`image ${i.alt} did not render`);
  const tables = await page.$$eval("table", (els) => els.length);
  if (tables === 0) fail("the report shows no table");
  if (external.length) fail(`external requests: ${external.join(", ")}`);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`${failed ? "FAIL" : "ok  "}  report renders ${imgs.length} images and ${tables} tables, ` +
              `${external.length} external requests; screenshot ${shot}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
