/**
 * `RedisStore` against the plain commands it is built on, on one redis-server: a RedisStore
 * write (one Lua script: the value, its metadata, the write order, the byte counter, eviction
 * past maxMemory, a publish for watchers) against a plain `SET`, and a RedisStore read (one
 * `HMGET` and a decode) against a plain `GET`, both with node-redis, and under Bun with Bun's
 * own `RedisClient` too. 100-byte strings over 1,000 names in turn; one awaited request at a
 * time (a request handler's cache call), and 100 requests in flight on the connection
 * ("pipelined"). The figure is the median of the rounds; the ratio is against the plain command
 * of the same client library in the same mode. Timings are reported, never asserted.
 *
 * Usage:
 *   deno run -A bench/redis_store_bench.ts [--quick]
 *   bun bench/redis_store_bench.ts [--quick]
 *   deno task bench redis_store -- --quick     (Deno, Bun and Node, one after the other)
 *
 * Results go to `bench/results/redis-store-<runtime>.json`.
 *
 * @module
 */
import process from "node:process";
import { runtime } from "../ffi/runtime.ts";
import { printTable, runtimeVersion, writeResults } from "./_report.ts";
import { openRedisPeer, startRedisServer } from "./peers/redis.ts";
import { openRedisStorePeer } from "./peers/redis_store.ts";
import type { AsyncPeer } from "./peers/types.ts";

const QUICK = process.argv.includes("--quick");
const ROUNDS = QUICK ? 3 : 7;
const OPS = QUICK ? 5_000 : 20_000;
const NAMES = Array.from({ length: 1_000 }, (_, i) => `bench:${i}`);
const VALUE = "v".repeat(100);

type Mode = "awaited" | "pipelined";

/** ops/s of `op` over OPS calls: one at a time, or 100 in flight. */
async function rate(op: (i: number) => Promise<unknown>, mode: Mode): Promise<number> {
  const round = async () => {
    const started = performance.now();
    if (mode === "awaited") {
      for (let i = 0; i < OPS; i++) await op(i);
    } else {
      for (let i = 0; i < OPS; i += 100) {
        const batch: Promise<unknown>[] = [];
        for (let j = i; j < i + 100 && j < OPS; j++) batch.push(op(j));
        await Promise.all(batch);
      }
    }
    return OPS / ((performance.now() - started) / 1000);
  };
  await round(); // warm-up
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) rates.push(await round());
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)]!;
}

const server = await startRedisServer();
const rows: Array<Record<string, string | number>> = [];
const results: Array<Record<string, unknown>> = [];
try {
  const plain: AsyncPeer[] = [];
  for (
    const client of runtime === "bun" ? ["node-redis", "bun"] as const : ["node-redis"] as const
  ) {
    const peer = await openRedisPeer({ client, url: server.url });
    if (peer) plain.push(peer);
  }
  const store = (await openRedisStorePeer({ url: server.url }))!;
  console.log(`${runtimeVersion()}, redis-server ${server.version}, ${OPS} ops x ${ROUNDS} rounds`);
  for (const peer of plain) await Promise.all(NAMES.map((name) => peer.setString(name, VALUE)));
  await Promise.all(NAMES.map((name) => store.setString(name, VALUE)));
  for (const mode of ["awaited", "pipelined"] as const) {
    const base = plain[0]!;
    const set = await rate((i) => base.setString(NAMES[i % 1000]!, VALUE), mode);
    const write = await rate((i) => store.setString(NAMES[i % 1000]!, VALUE), mode);
    const get = await rate((i) => base.getString(NAMES[i % 1000]!), mode);
    const read = await rate((i) => store.getString(NAMES[i % 1000]!), mode);
    rows.push(
      { mode, operation: "SET (node-redis)", "ops/s": Math.round(set), "time vs SET": "1.00" },
      {
        mode,
        operation: "RedisStore.write",
        "ops/s": Math.round(write),
        "time vs SET": (set / write).toFixed(2),
      },
      { mode, operation: "GET (node-redis)", "ops/s": Math.round(get), "time vs SET": "" },
      {
        mode,
        operation: "RedisStore.read",
        "ops/s": Math.round(read),
        "time vs SET": `${(get / read).toFixed(2)} vs GET`,
      },
    );
    results.push({ mode, set, write, get, read, writeVsSet: set / write, readVsGet: get / read });
    const bun = plain[1];
    if (bun !== undefined) {
      const bunSet = await rate((i) => bun.setString(NAMES[i % 1000]!, VALUE), mode);
      const bunGet = await rate((i) => bun.getString(NAMES[i % 1000]!), mode);
      rows.push(
        {
          mode,
          operation: "SET (Bun RedisClient)",
          "ops/s": Math.round(bunSet),
          "time vs SET": (set / bunSet).toFixed(2),
        },
        {
          mode,
          operation: "GET (Bun RedisClient)",
          "ops/s": Math.round(bunGet),
          "time vs SET": "",
        },
      );
      results.push({ mode, client: "bun", set: bunSet, get: bunGet });
    }
  }
  printTable(rows);
  console.log(`results: ${writeResults("redis-store", { server: server.version, results })}`);
  for (const peer of plain) await peer.close();
  await store.close();
} finally {
  await server.stop();
}
