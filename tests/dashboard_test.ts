/**
 * `memalloc dashboard`: its JSON API in this process (`serveDashboard`), the command spawned as
 * a real process, and the page in a real browser (tests/_dashboard_browser.ts).
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Memalloc } from "../mod.ts";
import { type DashboardServer, serveDashboard } from "../cli/dashboard.ts";
import { browserMissing, launchBrowser } from "./_browser.ts";
import { runtime, test } from "./_harness.ts";
import { type ChildRuntime, run, start, uniqueName } from "./_spawn.ts";

const CLI = "../cli/main.ts";
const HERE = runtime as ChildRuntime;
const MiB = 1024 * 1024;

/** A fresh store with `fill` written and closed, and a dashboard over it; both removed after. */
async function withDashboard(
  fill: (store: Memalloc) => void,
  body: (server: DashboardServer, name: string) => Promise<void>,
  maxMemory = 4 * MiB,
): Promise<void> {
  const name = uniqueName("dash");
  let server: DashboardServer | undefined;
  try {
    {
      using store = Memalloc.open(name, { maxMemory });
      fill(store);
    }
    server = await serveDashboard({ store: name, port: 0 });
    await body(server, name);
  } finally {
    await server?.close();
    Memalloc.unlink(name);
  }
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function get(server: DashboardServer, path: string): Promise<Answer> {
  const response = await fetch(new URL(path, server.url));
  return { status: response.status, body: await response.json() };
}

async function post(
  server: DashboardServer,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(new URL(path, server.url), {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

const q = encodeURIComponent;

/** A GET with a Host header of our choosing (fetch sets its own). */
function rawGet(
  server: DashboardServer,
  path: string,
  host: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: "127.0.0.1", port: server.port, path, headers: { host } },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    request.on("error", reject);
    request.end();
  });
}

function statsOf(name: string): ReturnType<Memalloc["stats"]> {
  using store = Memalloc.open(name, { create: false });
  return store.stats();
}

/** The names in a store, read without counting a hit. */
function keysOf(name: string): string[] {
  using store = Memalloc.open(name, { create: false });
  return store.keys();
}

function segmentBytes(name: string): Uint8Array {
  return readFileSync(`/dev/shm/memalloc.${name}`);
}

test("dashboard /api/stats and /api/stores match stats(), and /api/map sums the heap", async () => {
  await withDashboard((store) => {
    for (let i = 0; i < 100; i++) store.write(`k${i}`, i % 2 ? `value ${i}` : i);
    store.read("k1");
    store.read("missing");
    store.delete("k2");
  }, async (server, name) => {
    const expected = statsOf(name);
    const stats = await get(server, `api/stats?store=${q(name)}`);
    assert.equal(stats.status, 200);
    assert.deepEqual(stats.body.stats, expected);
    const stores = await get(server, "api/stores");
    assert.equal(stores.body.selected, name);
    const listed = (stores.body.stores as { name: string; stats: unknown }[]).find((s) =>
      s.name === name
    );
    assert.deepEqual(listed?.stats, expected);
    const map = await get(server, `api/map?store=${q(name)}&cells=64`);
    assert.equal((map.body.cells as unknown[]).length, 64);
    assert.equal(typeof map.body.fragmentation, "number");
    assert.ok(Array.isArray(map.body.freeHistogram));
  });
});

test("dashboard without a store lists every store for the page to pick from", async () => {
  const name = uniqueName("dash-pick");
  const server = await serveDashboard({ port: 0 });
  try {
    Memalloc.open(name, { maxMemory: MiB }).close();
    const stores = await get(server, "api/stores");
    assert.equal(stores.body.selected, null);
    const names = (stores.body.stores as { name: string }[]).map((store) => store.name);
    assert.ok(names.includes(name), names.join());
    assert.equal(server.link, `${server.url}#token=${server.token}`);
    assert.match(server.token, /^[0-9a-f]{32}$/);
    const other = await serveDashboard({ port: 0 });
    assert.notEqual(other.token, server.token);
    await other.close();
  } finally {
    await server.close();
    await server.close(); // twice is fine
    Memalloc.unlink(name);
  }
});

test("dashboard /api/entries pages, sorts and filters by prefix on the server", async () => {
  await withDashboard((store) => {
    for (let i = 0; i < 30; i++) store.write(`a:${String(i).padStart(2, "0")}`, "x".repeat(i));
    for (let i = 0; i < 5; i++) store.write(`b:${i}`, i, i === 3 ? { ttl: 60_000 } : undefined);
  }, async (server, name) => {
    const page = async (query: string) => {
      const answer = await get(server, `api/entries?store=${q(name)}&${query}`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return answer.body as {
        entries: { name: string; size: number; kind: string; expires: number | null }[];
        total: number | null;
        more: boolean;
      };
    };
    // Write order, streamed: the first 10, more to come, no total yet.
    const first = await page("limit=10");
    assert.deepEqual(first.entries.map((e) => e.name), [...Array(10)].map((_, i) => `a:0${i}`));
    assert.equal(first.more, true);
    assert.equal(first.total, null);
    const last = await page("offset=30&limit=10");
    assert.deepEqual(last.entries.map((e) => e.name), ["b:0", "b:1", "b:2", "b:3", "b:4"]);
    assert.equal(last.more, false);
    assert.equal(last.total, 35);
    // Sorted by size, largest first, second page.
    const bySize = await page("sort=size&order=desc&offset=5&limit=5");
    assert.deepEqual(bySize.entries.map((e) => e.name), ["a:24", "a:23", "a:22", "a:21", "a:20"]);
    assert.equal(bySize.total, 35);
    assert.equal(bySize.more, true);
    // By name, descending, under a prefix.
    const byName = await page(`prefix=${q("b:")}&sort=name&order=desc`);
    assert.deepEqual(byName.entries.map((e) => e.name), ["b:4", "b:3", "b:2", "b:1", "b:0"]);
    assert.equal(byName.entries[0]!.kind, "number");
    // Expiring first when ascending by expiry: the one with a TTL, then never-expiring ones.
    const byExpiry = await page("sort=expires&limit=1");
    assert.equal(byExpiry.entries[0]!.name, "b:3");
    assert.ok(byExpiry.entries[0]!.expires! > Date.now());
    for (const sort of ["created", "written", "version"]) {
      const sorted = await page(`sort=${sort}&order=desc&limit=1`);
      assert.equal(sorted.entries[0]!.name, "b:4", sort);
    }
  });
});

test("dashboard /api/value shows strings, JSON, bytes as hex and other values, capped, and counts no hit", async () => {
  await withDashboard((store) => {
    store.write("text", "Foobar");
    store.write("json", { user: "ada", roles: ["admin"] });
    store.write("bytes", new Uint8Array([0, 1, 171, 255]));
    store.write("set", new Set([1, 2]));
    store.write("big", new Uint8Array(100_000).fill(7));
    store.write("text2", "prefix sharer");
  }, async (server, name) => {
    const before = statsOf(name);
    const value = async (key: string) =>
      (await get(server, `api/value?store=${q(name)}&name=${q(key)}`)).body;
    assert.deepEqual(
      [(await value("text")).encoding, (await value("text")).text, (await value("text")).kind],
      ["text", "Foobar", "string"],
    );
    const json = await value("json");
    assert.equal(json.encoding, "json");
    assert.deepEqual(JSON.parse(json.text as string), { user: "ada", roles: ["admin"] });
    assert.deepEqual([(await value("bytes")).encoding, (await value("bytes")).text], [
      "hex",
      "0001abff",
    ]);
    assert.deepEqual([(await value("set")).encoding, (await value("set")).text], [
      "inspect",
      "Set(2) { 1, 2 }",
    ]);
    const big = await value("big");
    assert.equal(big.truncated, true);
    assert.equal(big.size, 100_000);
    assert.ok((big.text as string).length <= 64 * 1024);
    const missing = await get(server, `api/value?store=${q(name)}&name=nothing`);
    assert.equal(missing.status, 404);
    const after = statsOf(name);
    assert.equal(after.hits, before.hits);
    assert.equal(after.misses, before.misses);
  });
});

test("dashboard answers 400 for bad input, 404 for an unknown store or path, 409 for a store it cannot open, as JSON", async () => {
  await withDashboard((store) => store.write("a", 1), async (server, name) => {
    const cases: [string, number, RegExp][] = [
      [`api/entries?store=${q(name)}&sort=colour`, 400, /sort must be one of name, size/],
      [`api/entries?store=${q(name)}&order=up`, 400, /order must be asc or desc/],
      [`api/entries?store=${q(name)}&limit=0`, 400, /limit must be a whole number from 1/],
      [`api/entries?store=${q(name)}&offset=-1`, 400, /offset must be a whole number/],
      [`api/map?store=${q(name)}&cells=x`, 400, /cells must be a whole number/],
      [`api/value?store=${q(name)}`, 400, /Missing name/],
      ["api/stats", 400, /Missing store/],
      [`api/stats?store=${q("a/b")}`, 400, /./],
      [`api/stats?store=${q(uniqueName("none"))}`, 404, /No store "/],
      ["api/nothing", 404, /Nothing at \/api\/nothing/],
    ];
    for (const [path, status, message] of cases) {
      const answer = await get(server, path);
      assert.equal(answer.status, status, `${path}: ${JSON.stringify(answer.body)}`);
      assert.match(String(answer.body.error), message, path);
    }
    // A shared-memory object under a store's name that is not a store: there, but unusable.
    const foreign = uniqueName("dash-foreign");
    writeFileSync(`/dev/shm/memalloc.${foreign}`, new Uint8Array(65536).fill(0x41));
    try {
      const answer = await get(server, `api/stats?store=${q(foreign)}`);
      assert.equal(answer.status, 409, JSON.stringify(answer.body));
      assert.match(String(answer.body.error), new RegExp(foreign));
    } finally {
      rmSync(`/dev/shm/memalloc.${foreign}`);
    }
    const noBody = await post(server, "api/delete", { store: name }, {
      authorization: `Bearer ${server.token}`,
    });
    assert.equal(noBody.status, 400);
    assert.match(String(noBody.body.error), /Missing name/);
  });
});

test("dashboard mutations need the token and the page's own origin: 403 and nothing changed without", async () => {
  await withDashboard((store) => {
    for (let i = 0; i < 10; i++) store.write(`k${i}`, i);
  }, async (server, name) => {
    const before = segmentBytes(name);
    const refusals: [string, Record<string, string>][] = [
      ["none", {}],
      ["wrong", { authorization: "Bearer 0123456789abcdef0123456789abcdef" }],
      ["empty", { "x-memalloc-token": "" }],
      ["cross-origin", { authorization: `Bearer ${server.token}`, origin: "http://evil.test" }],
    ];
    for (const [what, headers] of refusals) {
      for (const action of ["delete", "clean", "purge"]) {
        const answer = await post(server, `api/${action}`, { store: name, name: "k1" }, headers);
        assert.equal(answer.status, 403, `${what} ${action}`);
        assert.match(String(answer.body.error), /token|origin/i);
      }
    }
    // A page served under another name (DNS rebinding) gets nothing, not even the figures.
    const rebound = await rawGet(server, `/api/stats?store=${q(name)}`, `evil.test:${server.port}`);
    assert.equal(rebound.status, 403);
    assert.match(JSON.parse(rebound.body).error, /^Unknown host "evil\.test:\d+"$/);
    assert.deepEqual(segmentBytes(name), before);

    const auth = { authorization: `Bearer ${server.token}` };
    const deleted = await post(server, "api/delete", { store: name, name: "k1" }, auth);
    assert.deepEqual(deleted, { status: 200, body: { deleted: true } });
    const again = await post(server, "api/delete", { store: name, name: "k1" }, {
      "x-memalloc-token": server.token,
      origin: new URL(server.url).origin,
    });
    assert.deepEqual(again.body, { deleted: false });
    assert.deepEqual(await post(server, "api/clean", { store: name }, auth), {
      status: 200,
      body: { evicted: 0 },
    });
    assert.deepEqual(await post(server, "api/purge", { store: name }, auth), {
      status: 200,
      body: { removed: 9 },
    });
    assert.equal(statsOf(name).entries, 0);
  });
});

test("dashboard: a read-only session leaves the store byte for byte unchanged", async () => {
  await withDashboard((store) => {
    for (let i = 0; i < 200; i++) store.write(`item:${i}`, i % 3 ? { i } : `text ${i}`);
    store.write("raw", new Uint8Array([1, 2, 3]));
  }, async (server, name) => {
    const before = segmentBytes(name);
    for (
      const path of [
        "api/stores",
        `api/stats?store=${q(name)}`,
        `api/map?store=${q(name)}&cells=256`,
        `api/entries?store=${q(name)}&prefix=item&sort=size&order=desc`,
        `api/entries?store=${q(name)}&offset=100`,
        `api/value?store=${q(name)}&name=item:7`,
        `api/value?store=${q(name)}&name=raw`,
        `api/value?store=${q(name)}&name=absent`,
        "",
        "assets/uPlot.iife.min.js",
      ]
    ) {
      const response = await fetch(new URL(path, server.url));
      assert.ok(response.status === 200 || response.status === 404, path);
      await response.arrayBuffer();
    }
    // The event stream: one event, then the client goes.
    const controller = new AbortController();
    const events = await fetch(new URL(`api/events?store=${q(name)}`, server.url), {
      signal: controller.signal,
    });
    const reader = events.body!.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /^data: \{"time":\d+,"stats":\{/);
    controller.abort();
    await reader.cancel().catch(() => {});
    await server.close();
    assert.deepEqual(segmentBytes(name), before);
  });
});

test("dashboard serves the page and uPlot's files from the installed package", async () => {
  await withDashboard(() => {}, async (server) => {
    const page = await fetch(server.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await page.text(), /<html/i);
    const js = await fetch(new URL("assets/uPlot.iife.min.js", server.url));
    assert.equal(js.status, 200);
    assert.match(await js.text(), /uPlot/);
    const css = await fetch(new URL("assets/uPlot.min.css", server.url));
    assert.equal(css.status, 200);
    assert.match(await css.text(), /\.uplot/);
  });
});

test("dashboard: a page of a 1,000,000-entry store, sorted, answers in reasonable time", async () => {
  await withDashboard((store) => {
    for (let i = 0; i < 1_000_000; i++) store.write(`key:${i}`, i % 3 ? i : `v${i}`);
  }, async (server, name) => {
    const times: string[] = [];
    for (
      const query of [
        "limit=50",
        "sort=size&order=desc&limit=50",
        "sort=name&offset=100&limit=50",
        `prefix=${q("key:99999")}&sort=name`,
      ]
    ) {
      const started = performance.now();
      const answer = await get(server, `api/entries?store=${q(name)}&${query}`);
      const took = performance.now() - started;
      assert.equal(answer.status, 200);
      assert.equal((answer.body.entries as unknown[]).length > 0, true);
      times.push(`${query}: ${took.toFixed(0)} ms`);
      // Generous: a page is a walk of the store (about 1 s for a million on a busy machine).
      assert.ok(took < 20_000, `${query} took ${took} ms`);
    }
    const started = performance.now();
    const value = await get(server, `api/value?store=${q(name)}&name=key:999999`);
    times.push(`value of key:999999: ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(value.body.text, "v999999");
    console.log(`1,000,000 entries on ${runtime}: ${times.join("; ")}`);
  }, 256 * MiB);
});

test("memalloc dashboard prints its address and token, refuses a missing store, and stops on SIGTERM", async () => {
  const name = uniqueName("dash-cli");
  try {
    Memalloc.open(name, { maxMemory: MiB }).close();
    const missing = await run(HERE, CLI, ["dashboard", uniqueName("none")], { allowFailure: true });
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /^memalloc: Cannot open store ".*": there is no such store/);
    const badPort = await run(HERE, CLI, ["dashboard", "--port", "70000"], { allowFailure: true });
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /^memalloc dashboard: --port must be from 0 to 65535/);
    const shortToken = await run(HERE, CLI, ["dashboard", "--token", "abc"], {
      allowFailure: true,
    });
    assert.equal(shortToken.code, 2);
    const help = await run(HERE, CLI, ["dashboard", "--help"]);
    assert.match(help.stdout, /^Usage: memalloc dashboard \[NAME\]/);

    const child = start(HERE, CLI, ["dashboard", name, "--port", "0"]);
    try {
      const line = await child.waitForLine((l) => l.startsWith("memalloc dashboard: serving"));
      const url = /serving (\S+)/.exec(line)![1]!;
      const tokenLine = await child.waitForLine((l) => l.startsWith("token: "));
      const token = tokenLine.slice("token: ".length);
      assert.match(token, /^[0-9a-f]{32}$/);
      const link = await child.waitForLine((l) => l.startsWith("open: "));
      assert.equal(link, `open: ${url}#token=${token}&store=${q(name)}`);
      const stats = await (await fetch(`${url}api/stats?store=${q(name)}`)).json();
      assert.equal(stats.stats.name, name);
      child.kill("SIGTERM");
      const exited = await child.exited;
      assert.equal(exited.code, 0, exited.stderr);
    } finally {
      child.kill();
    }
    // Another run gets another token.
    const json = start(HERE, CLI, ["dashboard", "--port", "0", "--json"]);
    try {
      await json.waitForLine((l) => l === "}");
      json.kill("SIGTERM");
      const out = JSON.parse((await json.exited).stdout);
      assert.match(out.token, /^[0-9a-f]{32}$/);
      assert.match(out.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    } finally {
      json.kill();
    }
  } finally {
    Memalloc.unlink(name);
  }
});

const missingBrowser = browserMissing();

test(
  `dashboard in chromium: no console error, figures match stats(), another process's entry shows within 2 s, search, delete with the token only${
    missingBrowser === undefined ? "" : ` (skipped: ${missingBrowser})`
  }`,
  async () => {
    await withDashboard((store) => {
      for (let i = 0; i < 12; i++) store.write(`item:${i}`, i % 2 ? { i } : `text ${i}`);
      store.read("item:1");
      store.read("nothing");
    }, async (server, name) => {
      const origin = new URL(server.url).origin;
      const browser = await launchBrowser();
      const problems: string[] = [];
      try {
        const page = await browser.newPage();
        page.on("console", (message) => {
          if (message.type() === "error" || message.type() === "warn") {
            problems.push(`console ${message.type()}: ${message.text()}`);
          }
        });
        page.on("pageerror", (error) => problems.push(`page error: ${error}`));
        page.on("requestfailed", (request) => problems.push(`failed: ${request.url()}`));
        page.on("request", (request) => {
          const url = request.url();
          if (!url.startsWith(origin) && !url.startsWith("data:")) {
            problems.push(`external request: ${url}`);
          }
        });
        await page.setViewport({ width: 1280, height: 1000 });
        // Without the token: the buttons are there, and disabled.
        await page.goto(`${server.url}#store=${q(name)}`, { waitUntil: "networkidle2" });
        await page.waitForSelector('tr[data-name="item:11"]', { timeout: 10_000 });
        const figure = (id: string) =>
          page.$eval(`[data-figure="${id}"]`, (node) => node.textContent ?? "");
        await page.waitForFunction(
          `document.querySelector('[data-figure="entries"]')?.textContent === "12"`,
          { timeout: 5_000 },
        );
        const stats = statsOf(name);
        const count = (n: number) => n.toLocaleString("en-US");
        assert.equal(await figure("entries"), count(stats.entries));
        assert.equal(await figure("hits"), count(stats.hits));
        assert.equal(await figure("misses"), count(stats.misses));
        assert.equal(await figure("writes"), count(stats.writes));
        assert.equal(await figure("lockKind"), stats.lockKind);
        assert.equal(
          await figure("hitRatio"),
          `${(100 * stats.hits / (stats.hits + stats.misses)).toFixed(1)} %`,
        );
        assert.equal(
          await page.$eval(
            'button[data-delete="item:3"]',
            (b) => (b as unknown as { disabled: boolean }).disabled,
          ),
          true,
        );

        // Written by another process: on the page within 2 s.
        await run(HERE, CLI, ["set", name, "from-another-process", "hello"]);
        const written = performance.now();
        await page.waitForSelector('tr[data-name="from-another-process"]', { timeout: 2_000 });
        const shownAfter = performance.now() - written;

        // The search finds it, and only it.
        await page.type("#search", "from-an");
        await page.waitForFunction(
          `[...document.querySelectorAll("#entries-body tr[data-name]")]
            .map((row) => row.getAttribute("data-name")).join() === "from-another-process"`,
          { timeout: 5_000 },
        );

        // Without the token the server refuses, and the entry stays.
        const refused = await fetch(`${server.url}api/delete`, {
          method: "POST",
          headers: { "content-type": "application/json", origin },
          body: JSON.stringify({ store: name, name: "from-another-process" }),
        });
        assert.equal(refused.status, 403);
        await refused.body?.cancel();
        assert.equal(keysOf(name).includes("from-another-process"), true);

        // With the token typed in, the button deletes it.
        await page.type("#token", server.token);
        await page.waitForFunction(
          `document.querySelector('button[data-delete="from-another-process"]')?.disabled === false`,
          { timeout: 5_000 },
        );
        // Clicked inside the page, in one task: the list re-renders its rows every second, and a
        // button found by one call may be gone by the next (puppeteer's click is several calls).
        await page.$eval(
          'button[data-delete="from-another-process"]',
          (button) => (button as unknown as { click(): void }).click(),
        );
        await page.waitForFunction(
          `document.querySelector('tr[data-name="from-another-process"]') === null`,
          { timeout: 5_000 },
        );
        assert.equal(keysOf(name).includes("from-another-process"), false);

        const shot = join(tmpdir(), `memalloc-dashboard-${runtime}-${process.pid}.png`);
        await page.screenshot({ path: shot, fullPage: true });
        console.log(
          `dashboard in chromium on ${runtime}: another process's entry shown after ${
            shownAfter.toFixed(0)
          } ms; screenshot ${shot}`,
        );
        assert.deepEqual(problems, []);
      } finally {
        await browser.close();
      }
    });
  },
  { ignore: missingBrowser !== undefined },
);
