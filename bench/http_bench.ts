/**
 * The HTTP benchmark: a server of this runtime with two workers on one port, answering one JSON
 * session (the 1 KiB object of the comparison benchmark) per request, from each source in turn:
 * an object in the worker's memory (the ceiling), memalloc `read`, memalloc
 * `read(name, { frozen: true })`, lmdb-js `get`, and Redis `GET` + `JSON.parse`, each ending in
 * the same `JSON.stringify` of the object; and memalloc `readJson`, whose stored JSON text is
 * sent as it is. Load comes from `wrk` (one thread, 50
 * connections, a random session of 1,024 per request); the table gives requests/s and the 99th
 * percentile latency, and the JSON goes to `bench/results/http-<runtime>.json`.
 *
 * The servers run as their users run them (bench/_http_deno.ts, bench/_http_server.ts):
 * `deno serve --parallel`,
 * Bun.serve with `reusePort` in two processes, `node:cluster` with two workers.
 *
 * Usage: `deno task bench http [-- --quick]` (all three runtimes), or this file under one
 * runtime. Needs wrk (`bash bench/install_wrk.sh`); Redis is skipped with the reason when
 * redis-server is not installed (`bash bench/install_redis.sh`).
 *
 * @module
 */
import { type ChildProcess, spawn, type SpawnOptions, spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Memalloc } from "../mod.ts";
import { printTable, runtimeVersion, writeResults } from "./_report.ts";
import { session, sessionKey, SESSIONS } from "./_http_data.ts";
import { benchStoreName } from "./peers/memalloc.ts";
import { startRedisServer } from "./peers/redis.ts";
import { errorMessage, freePort, makeScratchDir, removeScratchDir } from "./peers/types.ts";
import { runtime } from "../ffi/runtime.ts";
import { NODE_FLAGS } from "../tests/_spawn.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const QUICK = args.includes("--quick");
const SECONDS = QUICK ? 3 : 10;
const CONNECTIONS = 50;
const WORKERS = 2;

const ALL_SOURCES = ["object", "memalloc", "frozen", "json", "lmdb", "redis"] as const;
type Source = typeof ALL_SOURCES[number];
/** `--only=memalloc,frozen` runs those sources alone. */
const only = args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",");
const SOURCES = ALL_SOURCES.filter((s) => only === undefined || only.includes(s));
const LABELS: Record<Source, string> = {
  object: "in-process object (ceiling)",
  memalloc: "memalloc read",
  frozen: "memalloc read, frozen",
  json: "memalloc readJson (sent as stored)",
  lmdb: "lmdb-js get",
  redis: "Redis GET + JSON.parse",
};

interface Result {
  source: Source;
  label: string;
  requestsPerSecond?: number;
  p99Ms?: number;
  p50Ms?: number;
  errors?: string;
  skipped?: string;
}

const wrk = spawnSync("wrk", ["--version"], { encoding: "utf8" });
if (wrk.error !== undefined) {
  console.log("Skipping the HTTP benchmark: wrk is not installed (run bash bench/install_wrk.sh)");
  process.exit(0);
}

const bin = (name: string) => `${root}node_modules/.bin/${name}`;

/** Starts this runtime's server for `source` on `port`; returns its processes. */
function startServers(source: Source, port: number, env: Record<string, string>): ChildProcess[] {
  const childEnv = {
    ...process.env,
    ...env,
    MEMALLOC_HTTP_SOURCE: source,
    MEMALLOC_HTTP_PORT: String(port),
    MEMALLOC_HTTP_WORKERS: String(WORKERS),
    DENO_JOBS: String(WORKERS),
    NO_COLOR: "1",
  };
  const script = `${root}bench/${runtime === "deno" ? "_http_deno.ts" : "_http_server.ts"}`;
  const options: SpawnOptions = { cwd: root, env: childEnv, stdio: ["ignore", "ignore", "pipe"] };
  const commands: string[][] = runtime === "deno"
    ? [[
      bin("deno"),
      "serve",
      "--parallel",
      "-A",
      "--quiet",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      script,
    ]]
    : runtime === "bun"
    ? Array.from({ length: WORKERS }, () => [bin("bun"), script])
    : [[process.execPath, ...NODE_FLAGS, script]];
  return commands.map(([command, ...rest]) => {
    const child = spawn(command!, rest, options);
    let stderr = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => stderr = (stderr + chunk).slice(-4000));
    (child as ChildProcess & { lastError: () => string }).lastError = () => stderr;
    return child;
  });
}

function stopServers(children: ChildProcess[]): Promise<void> {
  return Promise.all(children.map((child) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      // process.kill, not child.kill: Deno's child.kill drops a second signal to one child.
      const signal = (name: NodeJS.Signals) => {
        try {
          process.kill(child.pid!, name);
        } catch {
          // gone already
        }
      };
      // deno serve ignores SIGTERM while a worker holds a Redis connection: SIGKILL then.
      const timer = setTimeout(() => signal("SIGKILL"), 3000);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      signal("SIGTERM");
    })
  )).then(() => undefined);
}

/** Waits until the server answers a session (every worker has opened its source by then). */
async function waitReady(port: number, children: ChildProcess[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    for (const child of children) {
      if (child.exitCode !== null) {
        const stderr = (child as ChildProcess & { lastError?: () => string }).lastError?.();
        throw new Error(`the server exited with ${child.exitCode}: ${stderr ?? ""}`);
      }
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/s/1`);
      const body = await response.text();
      if (response.ok && JSON.parse(body).id === 1) return;
      throw new Error(`status ${response.status}: ${body.slice(0, 200)}`);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`no answer in 30 s: ${errorMessage(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** A wrk latency such as `1.23ms`, `850.00us` or `1.02s`, in ms. */
function latencyMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === "us" ? value / 1000 : match[2] === "s" ? value * 1000 : value;
}

function runWrk(port: number, seconds: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", [
      "-t1",
      `-c${CONNECTIONS}`,
      `-d${seconds}s`,
      "--latency",
      "-s",
      `${root}bench/_http_wrk.lua`,
      `http://127.0.0.1:${port}`,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => out += chunk);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => out += chunk);
    child.on("error", reject);
    child.on("close", (code) => code === 0 ? resolve(out) : reject(new Error(`wrk: ${out}`)));
  });
}

// ---------------------------------------------------------------------------------------------
// The data, once for every source

const storeName = benchStoreName("http");
const store = Memalloc.open(storeName, { maxMemory: 16 << 20 });
// Records for read() and frozen reads (the default), JSON text for readJson (objects: "json").
const jsonWriter = Memalloc.open(storeName, { objects: "json" });
for (let i = 0; i < SESSIONS; i++) {
  store.write(sessionKey(i), session(i));
  jsonWriter.write(`json:${sessionKey(i)}`, session(i));
}
jsonWriter.close();

const lmdbDir = makeScratchDir("lmdb-http");
let lmdbSkip: string | undefined;
try {
  const lmdb = await import("lmdb");
  const db = lmdb.open({ path: lmdbDir });
  for (let i = 0; i < SESSIONS; i++) db.putSync(sessionKey(i), session(i));
  await db.close();
} catch (error) {
  lmdbSkip = `lmdb-js cannot run here (${errorMessage(error)})`;
}

let redis: Awaited<ReturnType<typeof startRedisServer>> | undefined;
let redisSkip: string | undefined;
try {
  redis = await startRedisServer();
  const { createClient } = await import("redis");
  const client = createClient({ url: redis.url, disableClientInfo: true });
  await client.connect();
  for (let i = 0; i < SESSIONS; i++) await client.set(sessionKey(i), JSON.stringify(session(i)));
  await client.close();
} catch (error) {
  redisSkip = errorMessage(error);
}

const results: Result[] = [];
try {
  for (const source of SOURCES) {
    const label = LABELS[source];
    const skip = source === "lmdb" ? lmdbSkip : source === "redis" ? redisSkip : undefined;
    if (skip !== undefined) {
      results.push({ source, label, skipped: skip });
      console.error(`skipped ${label}: ${skip}`);
      continue;
    }
    const port = await freePort();
    const children = startServers(source, port, {
      MEMALLOC_HTTP_STORE: storeName,
      MEMALLOC_HTTP_LMDB: lmdbDir,
      ...(redis ? { MEMALLOC_HTTP_REDIS: redis.url } : {}),
    });
    try {
      await waitReady(port, children);
      await runWrk(port, 1); // warm-up: JIT, connections
      const out = await runWrk(port, SECONDS);
      const rate = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
      const p99 = /^\s+99%\s+(\S+)$/m.exec(out)?.[1];
      const p50 = /^\s+50%\s+(\S+)$/m.exec(out)?.[1];
      const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out)?.[0];
      if (rate === undefined || p99 === undefined || p50 === undefined) {
        throw new Error(`cannot read wrk's output:\n${out}`);
      }
      results.push({
        source,
        label,
        requestsPerSecond: Number(rate),
        p99Ms: latencyMs(p99),
        p50Ms: latencyMs(p50),
        ...(errors === undefined ? {} : { errors }),
      });
      console.error(`${label}: ${Math.round(Number(rate))} req/s, p99 ${p99}`);
    } catch (error) {
      results.push({ source, label, skipped: `failed: ${errorMessage(error)}` });
      console.error(`ERROR ${label}: ${errorMessage(error)}`);
    } finally {
      await stopServers(children);
    }
  }
} finally {
  store.close();
  Memalloc.unlink(storeName);
  removeScratchDir(lmdbDir);
  await redis?.stop();
}

const rateOf = (source: Source) => results.find((r) => r.source === source)?.requestsPerSecond;
const ceiling = rateOf("object");
const redisRate = rateOf("redis");
const servers = runtime === "deno"
  ? `deno serve --parallel (DENO_JOBS=${WORKERS})`
  : runtime === "bun"
  ? `${WORKERS} Bun.serve processes with reusePort`
  : `node:cluster, ${WORKERS} workers`;
console.log(
  `\nHTTP, ${runtimeVersion()}: ${servers}; wrk -t1 -c${CONNECTIONS} for ${SECONDS} s, ` +
    `one JSON session of ${SESSIONS.toLocaleString("en-US")} at random per request`,
);
printTable(results.map((r) => ({
  source: r.label,
  "req/s": r.requestsPerSecond === undefined ? "" : Math.round(r.requestsPerSecond),
  "p50 ms": r.p50Ms === undefined ? "" : r.p50Ms.toFixed(2),
  "p99 ms": r.p99Ms === undefined ? "" : r.p99Ms.toFixed(2),
  "÷ in-process": r.requestsPerSecond && ceiling
    ? `${(r.requestsPerSecond / ceiling).toFixed(2)}×`
    : "",
  "÷ Redis": r.requestsPerSecond && redisRate
    ? `${(r.requestsPerSecond / redisRate).toFixed(2)}×`
    : "",
  note: r.skipped ?? r.errors ?? "",
})));
const frozen = rateOf("frozen");
const plain = rateOf("memalloc");
console.log(`\ntargets (${runtimeVersion()})`);
for (
  const [goal, value, want] of [
    ["memalloc frozen read ÷ in-process object", frozen && ceiling && frozen / ceiling, 0.9],
    ["memalloc read ÷ Redis", plain && redisRate && plain / redisRate, 2.5],
  ] as const
) {
  const verdict = typeof value !== "number" ? "NOT MEASURED" : value >= want ? "met" : "NOT MET";
  const figure = typeof value === "number" ? `${value.toFixed(2)}×` : "";
  console.log(`  ${verdict.padEnd(12)} ${goal} >= ${want}×: ${figure}`);
}
const file = writeResults("http", {
  runtime: runtimeVersion(),
  servers,
  load: { tool: wrk.stdout.split("\n")[0]?.trim(), connections: CONNECTIONS, seconds: SECONDS },
  results,
});
console.log(`\nwrote ${file}`);
