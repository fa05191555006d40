/**
 * Writes `docs/dashboard.png`: the dashboard over a demo store of a few hundred entries of every
 * kind, with some traffic for the chart, photographed in Debian's chromium by puppeteer-core.
 *
 * Usage: node_modules/.bin/deno run -A scripts/screenshot_dashboard.ts [OUT.png] [--seconds N]
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Memalloc } from "../mod.ts";
import { serveDashboard } from "../cli/dashboard.ts";
import { CHROMIUM, launchBrowser } from "../tests/_browser.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { seconds: { type: "string", default: "20" } },
  allowPositionals: true,
});
const out = positionals[0] ?? `${root}docs/dashboard.png`;
const seconds = Number(values.seconds);
const name = `demo-dashboard-${Deno.pid}`;

using store = Memalloc.open(name, { maxMemory: 512 << 10 });
const words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
for (let i = 0; i < 400; i++) {
  const word = words[i % words.length]!;
  switch (i % 5) {
    case 0:
      store.write(`session:${1000 + i}`, { user: word, roles: ["reader"], seen: i }, {
        ttl: i % 3 ? 0 : 3_600_000,
      });
      break;
    case 1:
      store.write(`page:/${word}/${i}`, `<html><body>${word.repeat(1 + (i % 40))}</body></html>`);
      break;
    case 2:
      store.write(`counter:${word}:${i}`, i * 7);
      break;
    case 3:
      store.write(`thumb:${i}`, crypto.getRandomValues(new Uint8Array(200 + (i % 13) * 600)));
      break;
    default:
      store.write(`config:${word}:${i}`, `value of ${word} number ${i}`);
  }
}
// Holes in the heap, so that the map shows free blocks between used ones.
for (let i = 3; i < 400; i += 15) store.delete(`thumb:${i}`);

const server = await serveDashboard({ store: name, port: 0 });
// Traffic: reads that hit and miss, writes, at a changing pace, while the chart fills.
let tick = 0;
const traffic = setInterval(() => {
  tick++;
  const reads = 50 + Math.round(40 * Math.sin(tick / 15));
  for (let i = 0; i < reads; i++) store.read(`session:${1000 + ((i * 5) % 600)}`);
  for (let i = 0; i < 5 + (tick % 10); i++) store.write(`counter:live:${(tick + i) % 50}`, tick);
  store.stats(); // adds this process's hits and misses to the shared counters
}, 100);

const browser = await launchBrowser();
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 1200, deviceScaleFactor: 1 });
  page.on("console", (message) => {
    if (message.type() === "error") console.error(`page: ${message.text()}`);
  });
  await page.goto(server.link, { waitUntil: "networkidle2" });
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  await page.click('tbody tr[data-name^="session:"]');
  await new Promise((resolve) => setTimeout(resolve, 500));
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out} (chromium: ${CHROMIUM})`);
} finally {
  clearInterval(traffic);
  await browser.close();
  await server.close();
  store.close();
  Memalloc.unlink(name);
}
